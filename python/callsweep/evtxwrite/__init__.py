"""A pure-Python EVTX writer: binary XML templates and values (`binxml`, `values`), 64 KiB
chunks with their string and template tables and CRC32s (`chunk`), the file header (`file`),
and records in the shape Windows writes for manifest providers (`event`).

Used to write synthetic Sysmon logs (`callsweep.synthetic_evtx`) that EVTX parsers read back
exactly."""

from callsweep.evtxwrite.event import EventKind, event_data_template, system_template
from callsweep.evtxwrite.file import EvtxWriter

__all__ = ["EventKind", "EvtxWriter", "event_data_template", "system_template"]
