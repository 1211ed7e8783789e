"""The built-in versions of the direct-syscall rule: 311 (the default) and upstream's 316, which
adds the two Symantec sysfer.dll CallTrace exclusions (RULE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_semantics import NTDLL, UNKNOWN, Case, event_frame, trace

import callsweep
from callsweep.rules.model import DEFAULT_RULE_ID, RuleError, builtin_rules, find_rule

SYSFER_SYSTEM32 = r"C:\Windows\System32\sysfer.dll+1a2b"
SYSFER_PROGRAMDATA = r"C:\ProgramData\Symantec\Symantec Endpoint Protection\14.3.1\Bin\sysfer.dll+9"
# `*` must cover a directory: no version folder, no match.
SYSFER_NO_VERSION = r"C:\ProgramData\Symantec\Symantec Endpoint Protection\sysfer.dll+9"

# (case, alerts under 311, alerts under 316)
CASES = [
    (Case("sysfer-system32", True, trace(SYSFER_SYSTEM32)), True, False),
    (Case("sysfer-programdata", True, trace(SYSFER_PROGRAMDATA)), True, False),
    (Case("sysfer-lower-case", True, trace(SYSFER_SYSTEM32.lower())), True, False),
    (Case("sysfer-no-version-dir", True, trace(SYSFER_NO_VERSION)), True, True),
    (Case("sysfer-syswow64", True, trace(r"C:\Windows\SysWOW64\sysfer.dll+1")), True, True),
    (Case("unknown", True, trace(UNKNOWN)), True, True),
    (Case("ntdll", False, trace(NTDLL)), False, False),
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("variants") / "events.parquet"
    event_frame([case for case, _, _ in CASES]).write_parquet(path)
    return path


def alerted(sample: Path, ref: str) -> dict[str, bool]:
    found = set(callsweep.scan(sample, rule=find_rule(ref))["winlog.record_id"].to_list())
    return {case.id: 1000 + i in found for i, (case, _, _) in enumerate(CASES)}


def test_version_311_alerts_on_sysfer_first_frames(sample: Path) -> None:
    assert alerted(sample, "2dd480be") == {case.id: v311 for case, v311, _ in CASES}
    assert alerted(sample, "2dd480be@311") == {case.id: v311 for case, v311, _ in CASES}


def test_upstream_version_excludes_sysfer(sample: Path) -> None:
    assert alerted(sample, "2dd480be@316") == {case.id: v316 for case, _, v316 in CASES}
    assert alerted(sample, f"{DEFAULT_RULE_ID}@316") == {case.id: v for case, _, v in CASES}


def test_the_versions_differ_by_the_sysfer_patterns_only() -> None:
    old, new = find_rule("2dd480be@311"), find_rule("2dd480be@316")
    assert (old.rule_id, old.version, new.version) == (DEFAULT_RULE_ID, 311, 316)
    assert callsweep.default_rule() == old
    assert len(builtin_rules()) == 2
    extra = set(new.query_text.splitlines()) - set(old.query_text.splitlines())
    assert {line.strip().rstrip(",") for line in extra} == {
        r'"?:\\Windows\\System32\\win32u.dll*"',  # gained a comma
        r'"?:\\Windows\\System32\\sysfer.dll*"',
        r'"?:\\ProgramData\\Symantec\\Symantec Endpoint Protection\\*\\sysfer.dll*") and',
    }


def test_an_unknown_version_is_refused() -> None:
    with pytest.raises(RuleError, match=r"built in as version 311, 316, not 999"):
        find_rule("2dd480be@999")
