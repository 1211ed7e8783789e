"""polars' allocator configuration (`callsweep.allocation`), each case in a fresh interpreter:
jemalloc reads it when polars loads, so only the order of imports decides."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from callsweep.allocation import (
    POLARS_MALLOC_CONF,
    POLARS_MALLOC_CONF_VARIABLE,
    running_on_glibc,
)

REPORT = f"""
import json, os, sys
{{imports}}
import callsweep.allocation as a
print(json.dumps([os.environ.get({POLARS_MALLOC_CONF_VARIABLE!r}), a.configure_polars_allocator()]))
"""


def fresh_report(script: str, variable: str, value: str | None) -> list:
    """What `script` prints last (JSON) in a fresh interpreter, the environment `variable`
    set to `value` (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != variable}
    if value is not None:
        env[variable] = value
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(imports: str, env_value: str | None = None) -> tuple[str | None, bool]:
    value, in_effect = fresh_report(
        REPORT.format(imports=imports), POLARS_MALLOC_CONF_VARIABLE, env_value
    )
    return value, in_effect


def test_importing_callsweep_first_configures_polars_after_its_own_defaults() -> None:
    value, in_effect = run("import callsweep\nimport polars")
    assert in_effect
    # polars puts its defaults first; callsweep's setting comes last, so it is the one used.
    assert value is not None and value.endswith("," + POLARS_MALLOC_CONF)
    assert value.startswith("dirty_decay_ms:")


def test_a_configuration_the_user_set_is_kept() -> None:
    value, in_effect = run("import callsweep\nimport polars", env_value="dirty_decay_ms:0")
    assert not in_effect
    assert value is not None and value.endswith("dirty_decay_ms:0")
    assert POLARS_MALLOC_CONF not in value


def test_polars_loaded_first_is_left_alone() -> None:
    value, in_effect = run("import polars\nimport callsweep")
    assert not in_effect
    assert value is not None and POLARS_MALLOC_CONF not in value


# Whether a fresh 4 MiB block comes from `mmap`: glibc marks such a chunk in the size word
# before it (bit 1, IS_MMAPPED). Its first mmap threshold is 128 KiB.
MMAPPED_REPORT = """
import ctypes, json, sys
{imports}
a = sys.modules.get("callsweep.allocation")
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
block = libc.malloc(4 << 20)
size_word = ctypes.c_size_t.from_address(block - ctypes.sizeof(ctypes.c_size_t)).value
print(json.dumps([bool(size_word & 2), a is not None and a.native_allocator_configured]))
"""


def mmapped(imports: str, tunables: str | None = None) -> tuple[bool, bool]:
    block_mmapped, configured = fresh_report(
        MMAPPED_REPORT.format(imports=imports), "GLIBC_TUNABLES", tunables
    )
    return block_mmapped, configured


glibc_only = pytest.mark.skipif(not running_on_glibc(), reason="glibc's malloc")


@glibc_only
def test_importing_callsweep_serves_blocks_of_megabytes_from_the_heap() -> None:
    assert mmapped("import callsweep") == (False, True)


@glibc_only
def test_without_callsweep_such_a_block_is_mmapped() -> None:
    # The check above can fail: without the setting, glibc maps the block.
    assert mmapped("import polars, pyarrow") == (True, False)


@glibc_only
def test_malloc_tunables_the_user_set_are_kept() -> None:
    assert mmapped("import callsweep", tunables="glibc.malloc.check=0") == (True, False)
