"""Exceptions written in YAML mean what the same items in TOML mean: same alerts kept, same
alerts counted as dropped; YAML scalars are text as written (`0x1fffff` is not a number); a bad
file is refused naming the file, the item, the entry and the line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from test_rules_exceptions import ALL, CASES, ENTRY_CASES, kept
from test_semantics import event_frame

from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.model import RuleError, find_rule
from callsweep.scan import Scanner


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("exceptions-yaml") / "events.parquet"
    event_frame(CASES).write_parquet(path)
    return path


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("entries", "dropped"), ENTRY_CASES)
def test_yaml_gives_the_alerts_of_the_same_toml(
    sample: Path, tmp_path: Path, entries: str, dropped: set[str]
) -> None:
    toml_text = f"[[exception]]\nentries = [{entries}]\n"
    toml_path = write(tmp_path, "ex.toml", toml_text)
    # The same document, written out by PyYAML's own dumper (it quotes what needs quoting).
    yaml_path = write(tmp_path, "ex.yaml", yaml.safe_dump(tomllib.loads(toml_text)))
    from_toml, from_yaml = load_exceptions(toml_path), load_exceptions(yaml_path)
    assert kept(sample, from_yaml) == kept(sample, from_toml) == ALL - dropped
    rules = [find_rule("2dd480be@311"), find_rule("2dd480be@316")]
    toml_summary = Scanner(rules, exceptions=from_toml).run([sample])
    yaml_summary = Scanner(rules, exceptions=from_yaml).run([sample])
    assert (yaml_summary.alerts, yaml_summary.excluded) == (
        toml_summary.alerts,
        toml_summary.excluded,
    )


HAND_WRITTEN = r"""
# As an analyst writes it: plain scalars, a Windows path with single backslashes in a plain
# scalar (YAML does not unescape those) and doubled for the wildcard's own escaping.
exception:
  - name: Unknown frames on host Y
    entries:
      - field: host.name
        operator: is
        value: Y
      - field: winlog.event_data.GrantedAccess
        operator: is
        value: 0x1fffff
  - name: lsass from BUILD01
    rule_id: 2dd480be-1263-4d9c-8672-172928f6789a
    entries:
      - {field: host.name, operator: is one of, values: [BUILD01, nobody]}
      - field: winlog.event_data.TargetImage
        operator: matches
        value: C:\\Windows\\system32\\l*.exe
"""

HAND_WRITTEN_TOML = r"""
[[exception]]
name = "Unknown frames on host Y"
entries = [
  { field = "host.name", operator = "is", value = "Y" },
  { field = "winlog.event_data.GrantedAccess", operator = "is", value = "0x1fffff" },
]
[[exception]]
name = "lsass from BUILD01"
rule_id = "2dd480be-1263-4d9c-8672-172928f6789a"
[[exception.entries]]
field = "host.name"
operator = "is one of"
values = ["BUILD01", "nobody"]
[[exception.entries]]
field = "winlog.event_data.TargetImage"
operator = "matches"
value = 'C:\\Windows\\system32\\l*.exe'
"""


def test_hand_written_yaml(sample: Path, tmp_path: Path) -> None:
    from_yaml = load_exceptions(write(tmp_path, "ex.yml", HAND_WRITTEN))
    from_toml = load_exceptions(write(tmp_path, "ex.toml", HAND_WRITTEN_TOML))
    assert [i.name for i in from_yaml] == ["Unknown frames on host Y", "lsass from BUILD01"]
    assert [(i.rule_id, i.condition) for i in from_yaml] == [
        (i.rule_id, i.condition) for i in from_toml
    ]
    assert kept(sample, from_yaml) == ALL - {"unknown", "a-lsass"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("exception: [\n  {entries: [}\n", "not valid YAML: line 2"),
        ("exception:\n  - entries:\n    - field: a\n   operator: is\n", "not valid YAML: line 4"),
        ("{}\n", "no 'exception:' list of items"),
        ("exception: []\n", "no 'exception:' list of items"),
        ("exception:\n  - just text\n", "exception 1: an item is a table"),
        ("exception:\n  - name: x\n    entries: []\n", "exception 1 (line 2): no entries"),
        (
            "exception:\n  - name: x\n    entries:\n      - field: a\n        operator: is not\n"
            "        value: x\n",
            "exception 1 (line 2), entry 1 (line 4): operator 'is not' is not one of",
        ),
        (
            "exception:\n  - entries:\n      - {field: a, operator: is one of, value: x}\n",
            "exception 1 (line 2), entry 1 (line 3): 'is one of' needs values = [strings]",
        ),
        (
            "exception:\n  - entries:\n      - {field: a, operator: is}\n",
            "entry 1 (line 3): 'is' needs a string value",
        ),
        (
            "exception:\n  - entries:\n      - {field: a, field: b, operator: is, value: x}\n",
            "not valid YAML: line 3: duplicate key 'field'",
        ),
        ("a: 1\n---\nb: 2\n", "not valid YAML: line 2"),
    ],
)
def test_bad_yaml_is_refused_naming_the_place(tmp_path: Path, text: str, needle: str) -> None:
    path = write(tmp_path, "exceptions.yaml", text)
    with pytest.raises(RuleError) as info:
        load_exceptions(path)
    assert str(info.value).startswith(f"{path}: ")
    assert needle in str(info.value)


def test_cli_yaml_exceptions(sample: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    path = write(
        tmp_path,
        "ex.yaml",
        "exception:\n  - entries:\n      - {field: host.name, value: Y, operator: is}\n",
    )
    result = CliRunner().invoke(app, ["scan", str(sample), "--exceptions", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 alert(s) dropped by exceptions" in result.output
    bad = write(tmp_path, "bad.yml", "exception:\n  - entries: [\n")
    result = CliRunner().invoke(app, ["scan", str(sample), "--exceptions", str(bad)])
    assert result.exit_code == 1
    assert "bad.yml: not valid YAML: line" in result.output
