"""Rule exceptions as Elastic applies them: entries ANDed within an item, items ORed; `is` exact
and case-sensitive, `is one of` a set, `matches` a case-sensitive wildcard with `\\` escapes; a
missing field satisfies no entry; a multi-valued field satisfies an entry when any value does;
per rule (rule_id) or for every rule; dropped alerts counted."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from test_semantics import LSASS, NOTEPAD, UNKNOWN, Case, event_frame, trace

import callsweep
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.model import RuleError, find_rule
from callsweep.scan import Scanner

HOST_A, HOST_B = "BUILD01", "build01"
CASES = [
    Case("a-notepad", True, {"host.name": HOST_A, "winlog.event_data.TargetImage": NOTEPAD}),
    Case("a-lsass", True, {"host.name": HOST_A, "winlog.event_data.TargetImage": LSASS}),
    Case("b-notepad", True, {"host.name": HOST_B, "winlog.event_data.TargetImage": NOTEPAD}),
    Case("nohost-notepad", True, {"host.name": None, "winlog.event_data.TargetImage": NOTEPAD}),
    Case("sysfer", True, {"host.name": "X", **trace(r"C:\Windows\System32\sysfer.dll+1")}),
    Case("SYSFER", True, {"host.name": "X", **trace(r"C:\Windows\System32\SYSFER.DLL+1")}),
    Case("unknown", True, {"host.name": "Y", **trace(UNKNOWN)}),
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exceptions") / "events.parquet"
    event_frame(CASES).write_parquet(path)
    return path


def exceptions(tmp_path: Path, text: str):
    path = tmp_path / "exceptions.toml"
    path.write_text(text)
    return load_exceptions(path)


def kept(sample: Path, items, rule=None) -> set[str]:
    found = callsweep.scan(sample, rule=rule, exceptions=items)["winlog.record_id"].to_list()
    return {CASES[r - 1000].id for r in found}


ALL = {c.id for c in CASES}


# (entries of one item, the cases' ids it drops); test_rules_exceptions_yaml writes the same
# items in YAML.
ENTRY_CASES = [
    # `is`: exact and case-sensitive; a missing host is no match
    ('{ field = "host.name", operator = "is", value = "BUILD01" }', {"a-notepad", "a-lsass"}),
    # AND within an item
    (
        '{ field = "host.name", operator = "is", value = "BUILD01" }, '
        '{ field = "winlog.event_data.TargetImage", operator = "matches", '
        r'value = "C:\\\\Windows\\\\system32\\\\l*.exe" }',
        {"a-lsass"},
    ),
    # `is one of`
    (
        '{ field = "host.name", operator = "is one of", values = ["build01", "Y"] }',
        {"b-notepad", "unknown"},
    ),
    # `matches`: case-sensitive wildcard; `?` one character
    (
        '{ field = "winlog.event_data.CallTrace", operator = "matches", value = "*sysfer.dll*" }',
        {"sysfer"},
    ),
    (
        '{ field = "host.name", operator = "matches", value = "?" }',
        {"sysfer", "SYSFER", "unknown"},
    ),
    # a field no event has: nothing dropped
    ('{ field = "user.name", operator = "is", value = "x" }', set()),
    # multi-valued: any value
    ('{ field = "event.category", operator = "is", value = "process" }', ALL),
]


@pytest.mark.parametrize(("entries", "dropped"), ENTRY_CASES)
def test_entry_semantics(sample: Path, tmp_path: Path, entries: str, dropped: set[str]) -> None:
    items = exceptions(tmp_path, f"[[exception]]\nentries = [{entries}]\n")
    assert kept(sample, items) == ALL - dropped


def test_items_are_ored_and_counted(sample: Path, tmp_path: Path) -> None:
    items = exceptions(
        tmp_path,
        '[[exception]]\nentries = [{ field = "host.name", operator = "is", value = "Y" }]\n'
        '[[exception]]\nentries = [{ field = "host.name", operator = "is", value = "X" }]\n',
    )
    assert kept(sample, items) == ALL - {"unknown", "sysfer", "SYSFER"}
    summary = Scanner(exceptions=items).run([sample])
    assert (summary.alerts, summary.excluded) == (len(ALL) - 3, 3)


def test_per_rule_items(sample: Path, tmp_path: Path) -> None:
    other = find_rule("2dd480be@316")
    items = exceptions(
        tmp_path,
        '[[exception]]\nrule_id = "someone-else"\n'
        'entries = [{ field = "host.name", operator = "is", value = "Y" }]\n',
    )
    assert kept(sample, items) == ALL
    both = callsweep.scan(sample, rule=[find_rule("2dd480be"), other], exceptions=items)
    assert both.height == len(ALL) + len(ALL) - 2  # 316 drops the two sysfer frames


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x = 1\n", "no [[exception]] item"),
        ("[[exception]]\nentries = []\n", "exception 1: no entries"),
        (
            '[[exception]]\nentries = [{ field = "a", operator = "is not", value = "x" }]\n',
            "exception 1, entry 1: operator 'is not' is not one of is, is one of, matches",
        ),
        (
            '[[exception]]\nentries = [{ field = "a", operator = "is one of", value = "x" }]\n',
            "'is one of' needs values = [strings]",
        ),
        (
            '[[exception]]\nentries = [{ field = "a", operator = "matches", value = "a\\\\*" }]\n',
            "an escaped '*' is not supported",
        ),
    ],
)
def test_bad_files_are_refused_naming_the_place(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(RuleError, match=r"exceptions\.toml") as info:
        exceptions(tmp_path, text)
    assert needle in str(info.value)


def test_cli_exceptions(sample: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    path = tmp_path / "ex.toml"
    path.write_text(
        '[[exception]]\nentries = [{ field = "host.name", operator = "is", value = "Y" }]\n'
    )
    out = tmp_path / "alerts.parquet"
    result = CliRunner().invoke(
        app, ["scan", str(sample), "--exceptions", str(path), "-o", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert "1 alert(s) dropped by exceptions" in result.output
    assert pl.read_parquet(out).height == len(ALL) - 1
