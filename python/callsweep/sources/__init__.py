"""Readers of the inputs callsweep scans, and the walk that finds them."""

from callsweep.sources.discover import Discovery, InputError, InputFile, discover

__all__ = ["Discovery", "InputError", "InputFile", "discover"]
