"""One 64 KiB EVTX chunk, filled record by record.

Layout (libyal/libevtx "Chunk"; MS-EVEN6 does not cover the file format):
- header, 512 bytes: "ElfChnk\\0", first and last event record number, first and last event
  record identifier (u64 each), header size 128 (u32), offset of the last record, free space
  offset (the end of the records), CRC32 of the records (bytes 512 to the free space offset),
  64 unused bytes, flags (u32, at 120), CRC32 of bytes 0-120 and 128-512 (at 124);
  at 128 the 64 heads of the name hash buckets, at 384 the 32 heads of the template buckets.
- records from offset 512: "**\\0\\0", size (u32), record identifier (u64), FILETIME (u64),
  binary XML, zero padding to a multiple of 8 (as Windows pads), then the size again.

A record's binary XML depends on where it lands: a name or template definition is stored
inline at its first use in the chunk and referred to by chunk offset afterwards. So a record
is built for the free offset; if it does not fit, what it added to the chunk's tables is
undone and it is built again in the next chunk.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

from callsweep.evtxwrite.binxml import (
    Template,
    name_hash,
    relocatable,
    template_names,
)

CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 512
RECORD_HEADER = struct.Struct("<4sIQQ")  # magic, size, record identifier, FILETIME
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
_CHUNK_HEADER = struct.Struct("<8sQQQQIIII")
_INSTANCE = struct.Struct("<BBII")  # token 0x0C, unknown (Windows writes 1), template id, offset
_U32 = struct.Struct("<I")
NAME_BUCKETS = 64
TEMPLATE_BUCKETS = 32

# Builds a record's binary XML for a given chunk offset.
BinXmlBuilder = Callable[["Chunk", int], bytes]


class RecordTooLarge(ValueError):
    """A record that does not fit in an empty chunk."""


class Chunk:
    """A chunk being filled: its bytes, its name and template tables, its records."""

    def __init__(self) -> None:
        self.data = bytearray(CHUNK_SIZE)
        self.free = CHUNK_HEADER_SIZE
        self.records = 0
        self.first_id = 0
        self.last_id = 0
        self.last_offset = 0
        self._names: dict[str, int] = {}
        self._name_heads = [0] * NAME_BUCKETS
        self._templates: dict[bytes, int] = {}
        # The instance token of each defined template (the same bytes for every later use).
        self._references: dict[bytes, bytes] = {}
        self._template_heads = [0] * TEMPLATE_BUCKETS
        # What the record being built added (key, bucket, the bucket's previous head), to take
        # back if it does not fit.
        self._added_names: list[tuple[str, int, int]] = []
        self._added_templates: list[tuple[bytes, int, int]] = []

    # ---- tables ----

    def instance(self, template: Template, at: int) -> bytes:
        """A template instance token at chunk offset `at`: its definition follows it on the
        template's first use in the chunk, later instances refer to that (as Windows writes
        them, and as python-evtx's template table walk expects: a definition 10 bytes after
        its first instance token). Names the definition uses for the first time in the chunk
        are stored inline and join the head of their hash bucket (Windows links the newest
        first)."""
        reference = self._references.get(template.guid)
        if reference is not None:
            return reference
        offset = at + _INSTANCE.size
        names = self._names
        known = frozenset(n for n in template_names(template) if n in names)
        form = relocatable(template, known)
        definition = bytearray(form.data)
        for position, name in form.new_names:
            bucket = name_hash(name) % NAME_BUCKETS
            _U32.pack_into(definition, position, self._name_heads[bucket])
            self._added_names.append((name, bucket, self._name_heads[bucket]))
            names[name] = self._name_heads[bucket] = offset + position
        for position, name in form.refs:
            _U32.pack_into(definition, position, names[name])
        # Readers find definitions by offset; the table is an index whose bucket function
        # Windows does not document: the template id modulo the bucket count serves.
        bucket = template.template_id % TEMPLATE_BUCKETS
        _U32.pack_into(definition, 0, self._template_heads[bucket])
        self._added_templates.append((template.guid, bucket, self._template_heads[bucket]))
        self._templates[template.guid] = self._template_heads[bucket] = offset
        reference = _INSTANCE.pack(0x0C, 1, template.template_id, offset)
        self._references[template.guid] = reference
        return reference + definition

    def _undo(self) -> None:
        for name, bucket, head in reversed(self._added_names):
            del self._names[name]
            self._name_heads[bucket] = head
        for guid, bucket, head in reversed(self._added_templates):
            del self._templates[guid]
            del self._references[guid]
            self._template_heads[bucket] = head
        self._forget_added()

    def _forget_added(self) -> None:
        self._added_names.clear()
        self._added_templates.clear()

    # ---- records ----

    def add(self, record_id: int, filetime: int, build: BinXmlBuilder) -> bool:
        """Adds a record whose binary XML `build` makes; False (the chunk unchanged) when it
        does not fit."""
        at = self.free
        self._forget_added()
        body = build(self, at + RECORD_HEADER.size)
        unpadded = RECORD_HEADER.size + len(body) + 4
        size = unpadded + (-unpadded % 8)
        if at + size > CHUNK_SIZE:
            self._undo()
            if self.records == 0:
                raise RecordTooLarge(f"record {record_id} needs {size} bytes, more than a chunk")
            return False
        self._forget_added()
        data = self.data
        RECORD_HEADER.pack_into(data, at, RECORD_MAGIC, size, record_id, filetime)
        end = at + RECORD_HEADER.size + len(body)
        data[at + RECORD_HEADER.size : end] = body
        _U32.pack_into(data, at + size - 4, size)
        if self.records == 0:
            self.first_id = record_id
        self.records += 1
        self.last_id = record_id
        self.last_offset = at
        self.free = at + size
        return True

    def finish(self) -> bytes:
        """The chunk's bytes, header and checksums filled in."""
        data = self.data
        records_crc = zlib.crc32(data[CHUNK_HEADER_SIZE : self.free])
        # Record numbers and identifiers are the same here, as in a log never cleared.
        _CHUNK_HEADER.pack_into(
            data,
            0,
            b"ElfChnk\x00",
            self.first_id,
            self.last_id,
            self.first_id,
            self.last_id,
            128,
            self.last_offset,
            self.free,
            records_crc,
        )
        struct.pack_into(f"<{NAME_BUCKETS}I", data, 128, *self._name_heads)
        struct.pack_into(f"<{TEMPLATE_BUCKETS}I", data, 384, *self._template_heads)
        _U32.pack_into(data, 120, 0)  # flags: none (not dirty, CRC32s present)
        header_crc = zlib.crc32(data[128:CHUNK_HEADER_SIZE], zlib.crc32(data[:120]))
        _U32.pack_into(data, 124, header_crc)
        return bytes(data)
