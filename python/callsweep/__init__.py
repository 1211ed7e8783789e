"""callsweep: sweep archived Sysmon logs for process access through direct system calls.

>>> import callsweep
>>> alerts = callsweep.scan("logs/")            # a polars DataFrame of alerts
>>> lazy = callsweep.scan_lazy("logs/*.parquet")  # the same, as a LazyFrame
>>> pl.col("process.executable").eql.wildcard("?:\\Users\\*")  # EQL `:` in your own queries
"""

from callsweep.rules.model import Rule, builtin_rules, default_rule, find_rule, load_rule
from callsweep.scan import ScanError, Scanner, ScanSummary, scan, scan_lazy
from callsweep.wildcard import match_series, wildcard

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
