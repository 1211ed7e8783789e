"""How polars' allocator keeps the memory it frees, set before polars is loaded.

A scan decodes every part of its input into buffers of hundreds of megabytes (a part's
CallTraces: 213 MB for 500k events) and frees them once the part is matched; the next part
asks for as much again. polars sets its jemalloc to hand freed pages back to the system after
half a second (`dirty_decay_ms:500`, in `polars/__init__.py`, for services that must give
memory back), and the next part then faults every page in afresh: about 2 us per 4 KiB page
on the machines we measured, a tenth of a scan's CPU time (ten rules over 2M events: 65k-87k
page faults a scan, 23k-30k with freed pages kept for 30 s; 0.77-0.82 s against 0.68-0.71 s
a scan). Kept for 30 s (`dirty_decay_ms:30000`), the pages a part frees are those the next
one takes; what a finished job freed still goes back after 30 s idle. The peak is about the
same (1.10 GB against 1.16 GB in that scan, which keeps every alert).

jemalloc reads its configuration once, when polars' library loads, from `_RJEM_MALLOC_CONF`,
after the defaults polars puts ahead of what the variable holds (the later setting wins). So
this takes effect only when callsweep is imported before polars (as the CLI is), and a
configuration the user set is left as it is.
"""

from __future__ import annotations

import os
import sys

POLARS_MALLOC_CONF_VARIABLE = "_RJEM_MALLOC_CONF"
POLARS_MALLOC_CONF = "dirty_decay_ms:30000,muzzy_decay_ms:0"


def configure_polars_allocator() -> bool:
    """Sets polars' allocator configuration unless polars is loaded already or the user set
    one; returns whether callsweep's is the one in effect (last in the variable, which polars
    puts its defaults ahead of)."""
    loaded = any(name == "polars" or name.startswith("_polars_runtime") for name in sys.modules)
    if not loaded:
        os.environ.setdefault(POLARS_MALLOC_CONF_VARIABLE, POLARS_MALLOC_CONF)
    return os.environ.get(POLARS_MALLOC_CONF_VARIABLE, "").endswith(POLARS_MALLOC_CONF)
