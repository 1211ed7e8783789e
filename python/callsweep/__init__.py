"""callsweep: sweep archived Sysmon logs for process access through direct system calls.

>>> import callsweep
>>> alerts = callsweep.scan("logs/")            # a polars DataFrame of alerts
>>> lazy = callsweep.scan_lazy("logs/*.parquet")  # the same, as a LazyFrame
>>> pl.col("process.executable").eql.wildcard("?:\\Users\\*")  # EQL `:` in your own queries
"""

# Before anything imports polars: its allocator reads its configuration when it loads.
from callsweep.allocation import configure_native_allocator, configure_polars_allocator

configure_polars_allocator()
configure_native_allocator()

from callsweep.rules.model import Rule, builtin_rules, default_rule, find_rule, load_rule  # noqa: E402
from callsweep.scan import ScanError, Scanner, ScanSummary, scan, scan_lazy  # noqa: E402
from callsweep.wildcard import match_series, wildcard  # noqa: E402

__all__ = [
    "Rule",
    "ScanError",
    "ScanSummary",
    "Scanner",
    "builtin_rules",
    "default_rule",
    "find_rule",
    "load_rule",
    "match_series",
    "scan",
    "scan_lazy",
    "wildcard",
]
