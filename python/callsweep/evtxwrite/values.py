"""Substitution values, encoded a column at a time.

A template instance holds a descriptor per value (size u16, type u8, one unused byte) and then
the values' bytes (MS-EVEN6 2.2.14; libevtx "Template instance data"). Encoding whole columns
in list comprehensions, each distinct string, GUID or SID once, keeps the per-record work of
the writer to joining bytes.

`None` (and the empty string) is written as a NULL value (type 0x00, size 0), as Windows writes
an absent value: parsers render it as an empty or null field.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache

from callsweep.evtxwrite import binxml

_DESCRIPTOR = struct.Struct("<HBx")
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
MAX_VALUE_SIZE = 0xFFFF  # a descriptor's size is a u16
NULL_DESCRIPTOR = _DESCRIPTOR.pack(0, binxml.NULL)

# Fixed-size types: their width and packer.
_FIXED: dict[int, struct.Struct] = {
    binxml.UINT8: struct.Struct("<B"),
    binxml.UINT16: struct.Struct("<H"),
    binxml.UINT32: struct.Struct("<I"),
    binxml.UINT64: struct.Struct("<Q"),
    binxml.BOOL: struct.Struct("<I"),  # a 32-bit 0 or 1
    binxml.FILETIME: struct.Struct("<Q"),  # 100 ns ticks since 1601-01-01 UTC
    binxml.HEX32: struct.Struct("<I"),
    binxml.HEX64: struct.Struct("<Q"),
}


@cache
def descriptor(size: int, value_type: int) -> bytes:
    if size > MAX_VALUE_SIZE:
        raise ValueError(f"a {size}-byte value is more than a substitution holds")
    return _DESCRIPTOR.pack(size, value_type)


@cache
def _string_descriptor(size: int) -> bytes:
    return descriptor(size, binxml.STRING)


@cache
def guid_bytes(text: str) -> bytes:
    """A GUID (`{xxxxxxxx-...}`) as stored: its first three groups little-endian."""
    return uuid.UUID(text).bytes_le


@cache
def sid_bytes(text: str) -> bytes:
    """A SID (`S-1-5-18`) as stored: revision, sub-authority count, 48-bit big-endian
    authority, then little-endian 32-bit sub-authorities."""
    parts = text.split("-")
    if parts[0] != "S" or len(parts) < 3:
        raise ValueError(f"not a SID: {text!r}")
    revision, authority, subs = int(parts[1]), int(parts[2]), [int(p) for p in parts[3:]]
    return (
        bytes([revision, len(subs)])
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


def filetime(moment: datetime) -> int:
    """100 ns ticks since 1601-01-01 UTC (microsecond precision, as Python keeps time)."""
    delta = moment - FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def systemtime_bytes(moment: datetime) -> bytes:
    """A SYSTEMTIME: year, month, day of week (0 = Sunday), day, hour, minute, second, ms."""
    return struct.pack(
        "<8H",
        moment.year,
        moment.month,
        moment.isoweekday() % 7,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond // 1000,
    )


def _variable(
    column: Sequence, value_type: int, encode: Callable[[object], bytes]
) -> tuple[list[bytes], list[bytes]]:
    values = [b"" if v is None or v == "" else encode(v) for v in column]
    descriptors = [descriptor(len(b), value_type) if b else NULL_DESCRIPTOR for b in values]
    return descriptors, values


def encode_column(value_type: int, column: Sequence) -> tuple[list[bytes], list[bytes]]:
    """The descriptors and the bytes of a column of values of one type."""
    if value_type == binxml.NULL:
        return [NULL_DESCRIPTOR] * len(column), [b""] * len(column)
    if value_type == binxml.STRING:  # the common case, without a call per value
        # Most columns repeat a few values: encode each once.
        known: dict[str, bytes] = {}
        values = [
            known[v] if v in known else known.setdefault(v, v.encode("utf-16-le")) if v else b""
            for v in column
        ]
        return [_string_descriptor(len(b)) if b else NULL_DESCRIPTOR for b in values], values
    if value_type == binxml.GUID:
        return _variable(column, value_type, guid_bytes)
    if value_type == binxml.SID:
        return _variable(column, value_type, sid_bytes)
    if value_type == binxml.SYSTEMTIME:
        return _variable(column, value_type, systemtime_bytes)
    packer = _FIXED.get(value_type)
    if packer is None:
        raise ValueError(f"value type {value_type:#04x} is not written")
    if value_type == binxml.FILETIME:
        column = [None if v is None else filetime(v) for v in column]
    pack, present = packer.pack, descriptor(packer.size, value_type)
    values = [b"" if v is None else pack(v) for v in column]
    descriptors = [present if b else NULL_DESCRIPTOR for b in values]
    return descriptors, values


def encode_value(value_type: int, value: object) -> tuple[bytes, bytes]:
    """One value's descriptor and bytes."""
    descriptors, values = encode_column(value_type, [value])
    return descriptors[0], values[0]
