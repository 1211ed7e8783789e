"""Windows event records in the shape Windows writes them for manifest providers (Sysmon...).

Every record is an instance of one System template (`<Event>` with `<System>`), whose last
substitution but one is a nested binary XML value: an instance of the event's own EventData
template (`<EventData>` of `<Data Name="...">` elements). This is the layout of Windows-written
Sysmon logs, substitution indices included (0 Level, 1 Opcode, 2 Task, 3 EventID, ...,
17 EventData), with one change: Windows stores `<Computer>` as literal text in the template;
here it is substitution 18, so that one template serves every host.

What is constant for an event kind (provider, channel, event id, version, level...) is encoded
once per kind; a record then costs the packing of its time, ids and computer name, and the
joining of its EventData values (encoded a column at a time, see `values.py`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from callsweep.evtxwrite import binxml
from callsweep.evtxwrite.binxml import Element, Sub, Template, Text
from callsweep.evtxwrite.chunk import Chunk
from callsweep.evtxwrite.values import descriptor, encode_value

(
    LEVEL,
    OPCODE,
    TASK,
    EVENT_ID,
    QUALIFIERS,
    KEYWORDS,
    TIME_CREATED,
    ACTIVITY_ID,
    PROCESS_ID,
    THREAD_ID,
    RECORD_ID,
    VERSION,
    USER_ID,
    RELATED_ACTIVITY_ID,
    PROVIDER_NAME,
    PROVIDER_GUID,
    CHANNEL,
    EVENT_DATA,
    COMPUTER,
) = range(19)
SYSTEM_VALUES = 19

EVENT_NAMESPACE = "http://schemas.microsoft.com/win/2004/08/events/event"


def _field(name: str, index: int, value_type: int) -> Element:
    # Windows makes each one-value System element depend on its substitution.
    return Element(name, children=(Sub(index, value_type),), dependency=index)


def system_template(guid: bytes) -> Template:
    """The `<Event>` template: System fields, then the EventData instance."""
    system = Element(
        "System",
        children=(
            Element(
                "Provider",
                attrs=(
                    ("Name", Sub(PROVIDER_NAME, binxml.STRING)),
                    ("Guid", Sub(PROVIDER_GUID, binxml.GUID)),
                ),
            ),
            Element(
                "EventID",
                attrs=(("Qualifiers", Sub(QUALIFIERS, binxml.UINT16)),),
                children=(Sub(EVENT_ID, binxml.UINT16),),
                dependency=EVENT_ID,
            ),
            _field("Version", VERSION, binxml.UINT8),
            _field("Level", LEVEL, binxml.UINT8),
            _field("Task", TASK, binxml.UINT16),
            _field("Opcode", OPCODE, binxml.UINT8),
            _field("Keywords", KEYWORDS, binxml.HEX64),
            Element("TimeCreated", attrs=(("SystemTime", Sub(TIME_CREATED, binxml.FILETIME)),)),
            _field("EventRecordID", RECORD_ID, binxml.UINT64),
            Element(
                "Correlation",
                attrs=(
                    ("ActivityID", Sub(ACTIVITY_ID, binxml.GUID)),
                    ("RelatedActivityID", Sub(RELATED_ACTIVITY_ID, binxml.GUID)),
                ),
            ),
            Element(
                "Execution",
                attrs=(
                    ("ProcessID", Sub(PROCESS_ID, binxml.UINT32)),
                    ("ThreadID", Sub(THREAD_ID, binxml.UINT32)),
                ),
            ),
            _field("Channel", CHANNEL, binxml.STRING),
            Element("Computer", children=(Sub(COMPUTER, binxml.STRING),)),
            Element("Security", attrs=(("UserID", Sub(USER_ID, binxml.SID)),)),
        ),
    )
    root = Element(
        "Event",
        attrs=(("xmlns", Text(EVENT_NAMESPACE)),),
        children=(system, Sub(EVENT_DATA, binxml.BINXML)),
        dependency=EVENT_DATA,
    )
    return Template(guid, root)


def event_data_template(guid: bytes, fields: Sequence[tuple[str, int]]) -> Template:
    """`<EventData>` with a `<Data Name="...">` per field, filled by normal substitutions (as
    Sysmon's templates are: a NULL value gives an empty element, not none)."""
    data = tuple(
        Element("Data", attrs=(("Name", Text(name)),), children=(Sub(i, kind, optional=False),))
        for i, (name, kind) in enumerate(fields)
    )
    return Template(guid, Element("EventData", children=data))


_U32 = struct.Struct("<I")
_SYSTEM_COUNT = _U32.pack(SYSTEM_VALUES)
_VARYING = struct.Struct("<QIIQ")  # TimeCreated, (ActivityID: NULL), ProcessID, ThreadID, RecordID
_FRAGMENT = len(binxml.FRAGMENT_HEADER)


@dataclass(frozen=True)
class EventKind:
    """One event of one provider: its System constants and its EventData fields."""

    provider_name: str
    provider_guid: str
    channel: str
    event_id: int
    version: int
    task: int
    fields: tuple[tuple[str, int], ...]
    system: Template
    event_data: Template
    level: int = 4  # Information
    opcode: int = 0
    keywords: int = 0x8000000000000000  # Classic
    user_sid: str = "S-1-5-18"  # LocalSystem
    _head: bytes = field(init=False, repr=False)
    _descriptors: bytes = field(init=False, repr=False)
    _tail: bytes = field(init=False, repr=False)
    _values_size: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        constant = {
            LEVEL: (binxml.UINT8, self.level),
            OPCODE: (binxml.UINT8, self.opcode),
            TASK: (binxml.UINT16, self.task),
            EVENT_ID: (binxml.UINT16, self.event_id),
            QUALIFIERS: (binxml.NULL, None),
            KEYWORDS: (binxml.HEX64, self.keywords),
            VERSION: (binxml.UINT8, self.version),
            USER_ID: (binxml.SID, self.user_sid),
            RELATED_ACTIVITY_ID: (binxml.NULL, None),
            PROVIDER_NAME: (binxml.STRING, self.provider_name),
            PROVIDER_GUID: (binxml.GUID, self.provider_guid),
            CHANNEL: (binxml.STRING, self.channel),
        }
        encoded = {i: encode_value(t, v) for i, (t, v) in constant.items()}
        varying = {
            TIME_CREATED: descriptor(8, binxml.FILETIME),
            ACTIVITY_ID: descriptor(0, binxml.NULL),
            PROCESS_ID: descriptor(4, binxml.UINT32),
            THREAD_ID: descriptor(4, binxml.UINT32),
            RECORD_ID: descriptor(8, binxml.UINT64),
        }
        descriptors = b"".join(
            varying[i] if i in varying else encoded[i][0] for i in range(EVENT_DATA)
        )
        object.__setattr__(self, "_descriptors", descriptors)
        object.__setattr__(self, "_head", b"".join(encoded[i][1] for i in range(TIME_CREATED)))
        object.__setattr__(
            self, "_tail", b"".join(encoded[i][1] for i in range(VERSION, EVENT_DATA))
        )
        size = len(self._head) + _VARYING.size + len(self._tail)
        object.__setattr__(self, "_values_size", size)

    def binxml(
        self,
        chunk: Chunk,
        at: int,
        filetime: int,
        process_id: int,
        thread_id: int,
        record_id: int,
        computer: bytes,
        event_data: bytes,
    ) -> bytes:
        """The record's binary XML at chunk offset `at`. `computer` is UTF-16LE;
        `event_data` the EventData instance's value count, descriptors and values."""
        outer = chunk.instance(self.system, at + _FRAGMENT)
        nested_at = at + _FRAGMENT + len(outer) + 4 + 4 * SYSTEM_VALUES + self._values_size
        inner = chunk.instance(self.event_data, nested_at + _FRAGMENT)
        nested_size = _FRAGMENT + len(inner) + len(event_data) + 1
        computer_descriptor = (
            descriptor(len(computer), binxml.STRING) if computer else descriptor(0, binxml.NULL)
        )
        return b"".join(
            (
                binxml.FRAGMENT_HEADER,
                outer,
                _SYSTEM_COUNT,
                self._descriptors,
                descriptor(nested_size, binxml.BINXML),
                computer_descriptor,
                # values 0 to 16
                self._head,
                _VARYING.pack(filetime, process_id, thread_id, record_id),
                self._tail,
                # value 17: the EventData instance, a binary XML fragment of its own
                binxml.FRAGMENT_HEADER,
                inner,
                event_data,
                binxml.END_OF_STREAM,
                # value 18
                computer,
                binxml.END_OF_STREAM,
            )
        )


def event_data_values(descriptors: Sequence[bytes], values: Sequence[bytes]) -> bytes:
    """An EventData instance's values: count, descriptors, bytes."""
    return b"".join((_U32.pack(len(values)), *descriptors, *values))
