"""Inputs on object storage (`s3://bucket/key`): listed, sized and read through pyarrow's
filesystems and polars' object store, each with the credentials of the machine doing the reading.

A location travels between processes as its URL and nothing else: the coordinator lists and
plans with its own credentials, every Dask worker reads with its own (the standard AWS
environment variables, `~/.aws` files or instance roles; `AWS_ENDPOINT_URL` for an S3-compatible
store). No credential is ever put in a task.

Parquet is read in place (polars fetches the byte ranges it needs). An EVTX object is copied to a
local temporary file first, because the decoder reads a file: disk, not memory, holds it.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pyarrow.parquet as pq

# The schemes both pyarrow (listing, metadata) and polars (scanning) read with the same
# credential chain. Others would need their own tests before callsweep claims them.
SCHEMES = ("s3",)
COPY_BLOCK = 8 << 20


class StorageError(OSError):
    """An object or prefix that cannot be listed or read; the message names it."""


@dataclass(frozen=True)
class RemoteObject:
    url: str
    size: int
    mtime_ns: int | None


def is_url(location: str) -> bool:
    """Whether `location` names object storage (`scheme://...`) rather than a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", location) is not None


def check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme not in SCHEMES:
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        raise StorageError(f"{url}: {scheme}:// is not a storage callsweep reads ({supported} is)")


@functools.cache
def _filesystem(scheme: str, bucket: str) -> pafs.FileSystem:
    # One filesystem per bucket and process: resolving a bucket's region is a request.
    fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}")
    return fs


def _split(url: str) -> tuple[pafs.FileSystem, str, str]:
    """The filesystem, the `bucket/key` path pyarrow wants, and the URL's `scheme://` part."""
    check_scheme(url)
    parts = urlsplit(url)
    if not parts.netloc:
        raise StorageError(f"{url}: no bucket named")
    try:
        fs = _filesystem(parts.scheme.lower(), parts.netloc)
    except (OSError, ValueError) as exc:
        raise StorageError(f"{url}: {exc}") from exc
    return fs, f"{parts.netloc}{parts.path}".rstrip("/"), f"{parts.scheme}://"


def _object(info: pafs.FileInfo, prefix: str) -> RemoteObject:
    mtime = info.mtime_ns if info.mtime is not None else None
    return RemoteObject(prefix + info.path, info.size or 0, mtime)


def stat(url: str) -> RemoteObject | None:
    """The object at `url`, or None when it is a prefix holding objects (a "directory")."""
    fs, path, prefix = _split(url)
    try:
        info = fs.get_file_info(path)
    except OSError as exc:
        raise StorageError(f"{url}: {exc}") from exc
    if info.type == pafs.FileType.File:
        return _object(info, prefix)
    if info.type == pafs.FileType.Directory:
        return None
    raise StorageError(f"{url}: no such object or prefix")


def walk(url: str, missing_ok: bool = False) -> Iterator[RemoteObject]:
    """Every object below the prefix `url`, in key order."""
    fs, path, prefix = _split(url)
    try:
        selector = pafs.FileSelector(path, allow_not_found=missing_ok, recursive=True)
        infos = fs.get_file_info(selector)
    except OSError as exc:
        raise StorageError(f"{url}: {exc}") from exc
    files = (i for i in infos if i.type == pafs.FileType.File)
    for info in sorted(files, key=lambda i: i.path):
        yield _object(info, prefix)


def glob(pattern: str) -> Iterator[RemoteObject]:
    """Objects whose URL matches `pattern`: `*` and `?` within one key segment, `**` across
    segments, `[...]` a character class, as local globs with `recursive=True`."""
    fixed, _, _ = _glob_split(pattern)
    matcher = re.compile(_glob_regex(pattern))
    for obj in walk(fixed, missing_ok=True):
        if matcher.fullmatch(obj.url):
            yield obj


def glob_root(pattern: str) -> str:
    """The URL of a glob before its first wildcard segment: `s3://b/logs/*/x` -> `s3://b/logs`."""
    return _glob_split(pattern)[0]


def _glob_split(pattern: str) -> tuple[str, str, str]:
    scheme, _, rest = pattern.partition("://")
    segments = rest.split("/")
    first = next(i for i, s in enumerate(segments) if re.search(r"[*?\[]", s))
    fixed = "/".join(segments[:first])
    return f"{scheme}://{fixed}", "/".join(segments[first:]), scheme


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negated = body.startswith("!")
            body = re.escape(body[1:] if negated else body).replace("\\-", "-")
            out.append(f"[{'^' if negated else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def read_head(url: str, size: int) -> bytes:
    fs, path, _ = _split(url)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read(size)
    except OSError as exc:
        raise StorageError(f"{url}: {exc}") from exc


def read_parquet_metadata(url: str) -> pq.FileMetaData:
    fs, path, _ = _split(url)
    return pq.read_metadata(path, filesystem=fs)


@contextmanager
def local_copy(url: str, suffix: str = "") -> Iterator[str]:
    """A local temporary copy of the object at `url`, streamed in blocks (memory stays flat),
    removed when the block ends."""
    fs, path, _ = _split(url)
    fd, local = tempfile.mkstemp(prefix="callsweep-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with fs.open_input_stream(path) as stream:
                    shutil.copyfileobj(stream, out, COPY_BLOCK)
            except OSError as exc:
                raise StorageError(f"{url}: {exc}") from exc
        yield local
    finally:
        os.unlink(local)
