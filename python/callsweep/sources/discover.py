"""From the paths a user gives (files, directories, globs) to the list of inputs to scan.

A directory is walked recursively and only the formats callsweep reads are picked; what it
passes over is counted, so nothing is skipped silently. A file named explicitly must be in a
readable format: anything else is an error for that input.
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Suffix -> format, for files met while walking a directory.
SUFFIX_FORMATS = {".parquet": "parquet", ".parq": "parquet", ".pq": "parquet", ".evtx": "evtx"}
# First bytes -> format, for files named explicitly (their suffix may say anything).
MAGIC_FORMATS = {b"PAR1": "parquet", b"ElfFile\x00": "evtx"}
READABLE = "Parquet or EVTX"


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: str
    size: int
    # The directory the path was found under (a directory argument, or a glob's fixed part);
    # None for a file named explicitly. Conversion mirrors the tree below it.
    root: Path | None = None


@dataclass(frozen=True)
class InputError:
    """An input that could not be read at all; `where` says which part, when known."""

    path: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        place = f" ({self.where})" if self.where else ""
        return f"{self.path}{place}: {self.message}"


@dataclass
class Discovery:
    files: list[InputFile] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    # Files passed over while walking directories, counted by suffix.
    passed_over: Counter[str] = field(default_factory=Counter)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def sniff_format(path: Path) -> str | None:
    """The format of a file judged by its content, or None when callsweep cannot read it."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    return next((fmt for magic, fmt in MAGIC_FORMATS.items() if head.startswith(magic)), None)


def discover(paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    found = Discovery()
    seen: set[Path] = set()

    def add(path: Path, fmt: str, root: Path | None) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        found.files.append(InputFile(path, fmt, path.stat().st_size, root))

    for raw in paths:
        text = os.fspath(raw)
        if not os.path.lexists(text) and glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                found.errors.append(InputError(text, "no file matches this pattern"))
            root = _glob_root(text)
            for match in matches:
                _visit(Path(match), explicit=False, add=add, found=found, root=root)
            continue
        _visit(Path(text), explicit=True, add=add, found=found, root=None)
    return found


def _glob_root(pattern: str) -> Path:
    """The directories of a glob before its first wildcard: `logs/*/x.evtx` -> `logs`."""
    fixed = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _visit(path: Path, explicit: bool, add, found: Discovery, root: Path | None) -> None:
    try:
        if path.is_dir():

            def unreadable(exc: OSError) -> None:
                found.errors.append(InputError(str(exc.filename), exc.strerror or str(exc)))

            for root, dirs, files in os.walk(path, onerror=unreadable):
                dirs.sort()
                for name in sorted(files):
                    child = Path(root, name)
                    fmt = SUFFIX_FORMATS.get(child.suffix.lower())
                    if fmt is None:
                        found.passed_over[child.suffix.lower() or "(no suffix)"] += 1
                    else:
                        add(child, fmt, path)
            return
        if not path.exists():
            found.errors.append(InputError(str(path), "no such file or directory"))
            return
        fmt = sniff_format(path)
        if fmt is None:
            if explicit:
                found.errors.append(
                    InputError(str(path), f"not a format callsweep reads (expected {READABLE})")
                )
            else:
                found.passed_over[path.suffix.lower() or "(no suffix)"] += 1
            return
        add(path, fmt, root)
    except OSError as exc:
        found.errors.append(InputError(str(path), exc.strerror or str(exc)))
