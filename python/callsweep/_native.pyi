"""Type stub of the Rust extension `callsweep._native` (rust/python/src)."""

from typing import Any

__version__: str

class ExportedArray:
    """A boolean Arrow array owned by Rust; hand it to `pyarrow.array` or `polars.Series`."""

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[Any, Any]: ...
    def __len__(self) -> int: ...

class WildcardMatcher:
    """EQL wildcard patterns compiled once; a value matches when any pattern matches it whole."""

    def __init__(self, patterns: list[str]) -> None: ...
    def is_match(self, value: str) -> bool: ...
    def strategies(self) -> list[tuple[str, str]]: ...
    def match_arrow(self, array: object) -> ExportedArray:
        """Match an Arrow array or stream (`__arrow_c_array__` / `__arrow_c_stream__`): string,
        large_string, string_view, dictionaries and lists of those. Nulls give False."""

def is_release_build() -> bool: ...
