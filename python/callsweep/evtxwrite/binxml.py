"""Binary XML (MS-EVEN6) as EVTX chunks hold it: template definitions and substitution values.

A record is a template instance: a reference to a template definition (stored once per chunk,
inline at its first use) plus an array of typed substitution values. This module knows the
tokens and the value encodings; which chunk offset a name or definition lands at is the
chunk's business (`chunk.py`), handed in as `NameTable`.

Format facts relied on (libyal/libevtx "Windows XML Event Log (EVTX)", checked against
Windows-written Sysmon logs):
- Element start: token 0x01 (0x41 with attributes), dependency id (u16, 0xFFFF: none), data size
  (u32: every byte of the element after these first 7), name offset (u32), then, with 0x41, the
  attribute list size (u32, the attributes' bytes). Then 0x02 and the content and 0x04, or 0x03
  (an empty element).
- Attribute: token 0x46 when another attribute follows, 0x06 for the last; name offset; value.
- Value text: 0x05, type 0x01, length in characters (u16), UTF-16LE without a NUL.
- Substitution: 0x0D (normal) or 0x0E (optional: left out when its value is NULL), index (u16),
  value type (u8).
- Name: next name in its hash bucket (u32), hash (u16), length (u16), UTF-16LE, NUL. A name is
  stored inline, right after the offset that refers to it, the first time a chunk uses it.
- Template definition: next definition in its bucket (u32), GUID (16 bytes), data size (u32),
  then data: fragment header 0x0F 01 01 00, the root element, end-of-stream 0x00.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

# Value types (MS-EVEN6 2.2.13 / libevtx "Value types").
NULL = 0x00
STRING = 0x01
UINT8 = 0x04
UINT16 = 0x06
UINT32 = 0x08
UINT64 = 0x0A
BOOL = 0x0D
GUID = 0x0F
FILETIME = 0x11
SYSTEMTIME = 0x12
SID = 0x13
HEX32 = 0x14
HEX64 = 0x15
BINXML = 0x21

FRAGMENT_HEADER = b"\x0f\x01\x01\x00"
END_OF_STREAM = b"\x00"
NO_DEPENDENCY = 0xFFFF

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_ELEMENT_START = struct.Struct("<BHI")  # token, dependency, data size (the name offset follows)
_SUBSTITUTION = struct.Struct("<BHB")
_DEFINITION_HEADER = struct.Struct("<I16sI")


@cache
def name_hash(name: str) -> int:
    """The 16-bit name hash Windows stores with a name: h = h * 65599 + code unit, over the
    UTF-16 code units, kept to its low 16 bits (matches every name of Windows-written logs)."""
    h = 0
    data = name.encode("utf-16-le")
    for (unit,) in struct.iter_unpack("<H", data):
        h = (h * 65599 + unit) & 0xFFFFFFFF
    return h & 0xFFFF


def encode_name(name: str, next_offset: int) -> bytes:
    """A name as stored inline: next offset in its bucket, hash, length in UTF-16 code units,
    the characters, NUL."""
    chars = name.encode("utf-16-le")
    units = len(chars) // 2
    return struct.pack("<IHH", next_offset, name_hash(name), units) + chars + b"\x00\x00"


# ---- template definitions ----


@dataclass(frozen=True)
class Text:
    """Literal text content."""

    value: str


@dataclass(frozen=True)
class Sub:
    """Substitution `index` of the instance, of `type`; optional ones are left out when NULL."""

    index: int
    type: int
    optional: bool = True


Content = Text | Sub


@dataclass(frozen=True)
class Element:
    name: str
    attrs: tuple[tuple[str, Content], ...] = ()
    children: tuple[Element | Content, ...] = ()
    # The substitution whose NULL value leaves this element out (Windows sets it on the System
    # fields that hold one substitution).
    dependency: int | None = None


@dataclass(frozen=True)
class Template:
    """A template definition: its GUID (whose first four bytes are the template id that
    instances carry) and its root element."""

    guid: bytes
    root: Element
    template_id: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "template_id", _U32.unpack_from(self.guid)[0])


class NameTable(Protocol):
    """Where names go in a chunk: the reference to `name` for a name offset field at chunk
    offset `at`, with the name's bytes when they must be stored right there."""

    def name_ref(self, name: str, at: int) -> bytes: ...


def _content(out: bytearray, content: Content) -> None:
    if isinstance(content, Text):
        chars = content.value.encode("utf-16-le")
        out += b"\x05\x01" + _U16.pack(len(chars) // 2) + chars
    else:
        token = 0x0E if content.optional else 0x0D
        out += _SUBSTITUTION.pack(token, content.index, content.type)


def _element(out: bytearray, element: Element, base: int, names: NameTable) -> None:
    """Appends `element` to `out`, whose first byte is at chunk offset `base`."""
    start = len(out)
    token = 0x41 if element.attrs else 0x01
    dependency = NO_DEPENDENCY if element.dependency is None else element.dependency
    out += _ELEMENT_START.pack(token, dependency, 0)
    out += names.name_ref(element.name, base + len(out))
    if element.attrs:
        list_at = len(out)
        out += b"\x00\x00\x00\x00"
        for i, (attr, value) in enumerate(element.attrs):
            out.append(0x46 if i + 1 < len(element.attrs) else 0x06)
            out += names.name_ref(attr, base + len(out))
            _content(out, value)
        _U32.pack_into(out, list_at, len(out) - list_at - 4)
    if element.children:
        out.append(0x02)
        for child in element.children:
            if isinstance(child, Element):
                _element(out, child, base, names)
            else:
                _content(out, child)
        out.append(0x04)
    else:
        out.append(0x03)
    _U32.pack_into(out, start + 3, len(out) - start - 7)


def encode_definition(template: Template, at: int, next_offset: int, names: NameTable) -> bytes:
    """The template's definition as stored at chunk offset `at` (names it introduces go inline)."""
    body = bytearray(FRAGMENT_HEADER)
    _element(body, template.root, at + _DEFINITION_HEADER.size, names)
    body += END_OF_STREAM
    return _DEFINITION_HEADER.pack(next_offset, template.guid, len(body)) + body


# ---- relocatable definitions ----
#
# A definition's bytes depend on its chunk only through offsets: where each name it uses is
# stored (already in the chunk, or inline in the definition itself), the heads of the hash
# buckets its new names and itself join, and where it lands. Which of its names the chunk
# already holds fixes everything else (element sizes count inline names), so a definition is
# encoded once per such set; each chunk then copies it and patches its offsets.


@dataclass(frozen=True)
class Relocatable:
    """A definition encoded at offset 0, with zeros where chunk offsets go."""

    data: bytes
    # Where each name stored inline in the definition starts (its first field, the next name
    # in its bucket, is left to patch), in the order they appear.
    new_names: tuple[tuple[int, str], ...]
    # Where each name offset field is, and the name it refers to.
    refs: tuple[tuple[int, str], ...]


class _Recorder:
    """A `NameTable` that leaves every offset to patch."""

    def __init__(self, known: frozenset[str]) -> None:
        self.known = known
        self.inline: set[str] = set()
        self.new_names: list[tuple[int, str]] = []
        self.refs: list[tuple[int, str]] = []

    def name_ref(self, name: str, at: int) -> bytes:
        self.refs.append((at, name))
        if name in self.known or name in self.inline:
            return b"\x00\x00\x00\x00"
        self.inline.add(name)
        self.new_names.append((at + 4, name))
        return b"\x00\x00\x00\x00" + encode_name(name, 0)


def _names_of(element: Element) -> Iterator[str]:
    yield element.name
    for attr, _ in element.attrs:
        yield attr
    for child in element.children:
        if isinstance(child, Element):
            yield from _names_of(child)


_NAMES: dict[bytes, frozenset[str]] = {}
_RELOCATABLE: dict[tuple[bytes, frozenset[str]], Relocatable] = {}


def template_names(template: Template) -> frozenset[str]:
    """Every element and attribute name of the template."""
    names = _NAMES.get(template.guid)
    if names is None:
        names = _NAMES[template.guid] = frozenset(_names_of(template.root))
    return names


def relocatable(template: Template, known: frozenset[str]) -> Relocatable:
    """The template's definition for a chunk already holding the names `known`."""
    key = (template.guid, known)
    found = _RELOCATABLE.get(key)
    if found is None:
        recorder = _Recorder(known)
        data = encode_definition(template, 0, 0, recorder)
        found = Relocatable(data, tuple(recorder.new_names), tuple(recorder.refs))
        _RELOCATABLE[key] = found
    return found
