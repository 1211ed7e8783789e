"""From the paths a user gives (files, directories, globs) to the list of inputs to scan.

A directory is walked recursively and only the formats callsweep reads are picked; what it
passes over is counted, so nothing is skipped silently. A file named explicitly must be in a
readable format: anything else is an error for that input.
"""

from __future__ import annotations

import glob
import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath

from callsweep.sources import storage

# Suffix -> format, for files met while walking a directory.
SUFFIX_FORMATS = {".parquet": "parquet", ".parq": "parquet", ".pq": "parquet", ".evtx": "evtx"}
# First bytes -> format, for files named explicitly (their suffix may say anything).
MAGIC_FORMATS = {b"PAR1": "parquet", b"ElfFile\x00": "evtx"}
# JSON lines, plain or compressed or in a zip archive (`sources/ndjson.py`).
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
NDJSON_CONTAINERS = (".gz", ".zst", ".zip")
NDJSON_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"PK\x03\x04")
READABLE = "Parquet, EVTX or NDJSON"


def suffix_format(path: PurePath) -> str | None:
    """The format of a file met while walking, judged by its name."""
    suffix = path.suffix.lower()
    if suffix in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffix]
    if suffix in NDJSON_SUFFIXES or suffix == ".zip":
        return "ndjson"
    if suffix in NDJSON_CONTAINERS and PurePath(path.stem).suffix.lower() in NDJSON_SUFFIXES:
        return "ndjson"
    return None


def _plain_json_is_lines(path: Path) -> bool:
    """A plain `.json` file met while walking is read only if its first line is a whole JSON
    object (a pretty-printed document, such as a report, is not JSON lines)."""
    if path.suffix.lower() not in NDJSON_SUFFIXES:
        return True  # compressed or an archive: judged when read
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    first = head.split(b"\n", 1)[0].strip()
    if not first.startswith(b"{"):
        return False
    if len(first) == len(head.strip()) and len(head) == 1 << 16:
        return True  # a first line longer than the sample: let the reader judge it
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


def _magic_format(head: bytes) -> str | None:
    fmt = next((fmt for magic, fmt in MAGIC_FORMATS.items() if head.startswith(magic)), None)
    if fmt is None and (head.lstrip().startswith(b"{") or head.startswith(NDJSON_MAGIC)):
        return "ndjson"
    return fmt


@dataclass(frozen=True)
class InputFile:
    # A local file; for an object on object storage, its `bucket/key` (the URL is in `url`).
    path: PurePath
    format: str
    size: int
    # The directory the path was found under (a directory argument, or a glob's fixed part);
    # None for a file named explicitly. Conversion mirrors the tree below it.
    root: PurePath | None = None
    url: str = ""
    # Known without another request for objects (from the listing); local files are stat-ed.
    mtime_ns: int | None = None

    @property
    def location(self) -> str:
        """What readers open: the URL of an object, else the local path."""
        return self.url or str(self.path)


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
        head = fh.read(64)
    return _magic_format(head)


def discover(paths: Iterable[str | os.PathLike[str]]) -> Discovery:
    found = Discovery()
    seen: set[Path | str] = set()  # resolved local paths, object URLs

    def add(path: Path, fmt: str, root: Path | None) -> None:
        resolved = path.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        found.files.append(InputFile(path, fmt, path.stat().st_size, root))

    for raw in paths:
        text = os.fspath(raw)
        if storage.is_url(text):
            _visit_remote(text, found, seen)
            continue
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
                    fmt = suffix_format(child)
                    if fmt == "ndjson" and not _plain_json_is_lines(child):
                        fmt = None
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


def _visit_remote(url: str, found: Discovery, seen: set[Path | str]) -> None:
    """An object, a prefix (walked like a directory) or a glob on object storage. Objects met
    under a prefix or a glob are picked by suffix (sniffing each would cost a request); an
    object named explicitly is sniffed like a local file."""

    def add(obj: storage.RemoteObject, fmt: str, root: str | None) -> None:
        if obj.url in seen:
            return
        seen.add(obj.url)
        found.files.append(
            InputFile(_bucket_path(obj.url), fmt, obj.size, root_path(root), obj.url, obj.mtime_ns)
        )

    def root_path(root: str | None) -> PurePath | None:
        return None if root is None else _bucket_path(root)

    def pick(objects, root: str) -> int:
        count = 0
        for obj in objects:
            count += 1
            suffix = PurePosixPath(obj.url).suffix.lower()
            fmt = SUFFIX_FORMATS.get(suffix)
            if fmt is None:  # NDJSON objects are read by local path only, for now
                found.passed_over[suffix or "(no suffix)"] += 1
            else:
                add(obj, fmt, root)
        return count

    try:
        if glob.has_magic(url):
            if not pick(storage.glob(url), storage.glob_root(url)):
                found.errors.append(InputError(url, "no object matches this pattern"))
            return
        obj = storage.stat(url)
        if obj is None:
            pick(storage.walk(url), url.rstrip("/"))
            return
        head = storage.read_head(url, 8)
        fmt = next((f for magic, f in MAGIC_FORMATS.items() if head.startswith(magic)), None)
        if fmt is None:
            found.errors.append(
                InputError(url, f"not a format callsweep reads (expected {READABLE})")
            )
            return
        add(obj, fmt, None)
    except storage.StorageError as exc:
        found.errors.append(InputError(url, str(exc).removeprefix(f"{url}: ")))


def _bucket_path(url: str) -> PurePosixPath:
    """`s3://bucket/a/b.parquet` -> `bucket/a/b.parquet`: what conversion mirrors."""
    return PurePosixPath(url.partition("://")[2])
