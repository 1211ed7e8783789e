"""How the allocators keep the memory they free: polars' (set before polars is loaded), and the
C library's, which callsweep's native code and pyarrow's buffers of foreign origin use.

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

callsweep's native code (the CallTraces of a multi-rule scan's kept rows, copied so that the
alerts do not keep the part's buffers alive: 32 MB per 500k events for ten rules; the EVTX
decoder's columns) allocates through glibc's malloc. glibc serves blocks over its *dynamic*
mmap threshold (128 KiB at first) with a fresh `mmap` each, and gives the top of a heap back
once 128 KiB of it is free, so each batch's buffers are faulted in afresh. `mallopt` fixes the
threshold at 32 MiB (glibc's largest for its heaps) and keeps up to 256 MiB free at the top of
a heap: ten rules over 2M events then took 10k-11k page faults a scan instead of 27k-37k, and
1.24-1.27 CPU s instead of 1.27-1.35. Nothing is done where the C library is not glibc, or
when `GLIBC_TUNABLES` sets a malloc tunable (the user's choice, read at start-up).
"""

from __future__ import annotations

import ctypes
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


# mallopt parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
# Whether `configure_native_allocator` set them in this process.
native_allocator_configured = False


def running_on_glibc() -> bool:
    """Whether this process's C library is glibc (as it reports itself, not as the interpreter's
    binary names it)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc ")
    except (ValueError, OSError, AttributeError):
        return False


def configure_native_allocator() -> bool:
    """Sets glibc's mmap and trim thresholds (see above) unless the user set malloc tunables or
    the C library is not glibc; returns whether they were set."""
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not running_on_glibc():
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    global native_allocator_configured
    # mallopt returns 1 on success.
    native_allocator_configured = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return native_allocator_configured
