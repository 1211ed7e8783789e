r"""Rule exceptions as Elastic's detection engine applies them: an alert is dropped when every
entry of some exception item holds on its event.

An exceptions file (TOML, or YAML when named `.yaml` / `.yml`) holds items:

    [[exception]]
    name = "Symantec on the build servers"
    rule_id = "2dd480be-1263-4d9c-8672-172928f6789a"   # optional: without it, every rule
    entries = [
      { field = "host.name", operator = "is", value = "BUILD01" },
      { field = "winlog.event_data.TargetImage", operator = "is one of", values = ["a", "b"] },
      { field = "winlog.event_data.CallTrace", operator = "matches", value = "*sysfer.dll*" },
    ]

The same items in YAML:

    exception:
      - name: Symantec on the build servers
        rule_id: 2dd480be-1263-4d9c-8672-172928f6789a
        entries:
          - {field: host.name, operator: is, value: BUILD01}
          - {field: winlog.event_data.CallTrace, operator: matches, value: "*sysfer.dll*"}

Entries are ANDed within an item, items ORed, as Kibana builds the exception filter. `is` is a
term query (exact, case-sensitive), `is one of` a terms query, `matches` a wildcard query
(case-sensitive, `*` any run, `?` one character, `\` escapes the next character, so a Windows
path is written with doubled backslashes in the value). A missing field satisfies no entry (the
alert stays); on a multi-valued field an entry holds when any value satisfies it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from callsweep.rules.ast import And, Compare, InSet, Node, Or, Wildcard
from callsweep.rules.model import Rule, RuleError
from callsweep.rules.yaml_text import YamlTextError, load_text_yaml

OPERATORS = ("is", "is one of", "matches")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class ExceptionItem:
    name: str
    # None: the item applies to every rule.
    rule_id: str | None
    condition: Node


def load_exceptions(path: str | Path) -> list[ExceptionItem]:
    """The exception items of a TOML or YAML file (by its suffix); RuleError naming the file,
    the item and the entry (and, in YAML, their line) otherwise."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the exceptions file: {exc.strerror or exc}") from exc
    is_yaml = path.suffix.lower() in YAML_SUFFIXES
    doc = _yaml_document(text, path) if is_yaml else _toml(text, path)
    items = doc.get("exception") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        expected = "'exception:' list of items" if is_yaml else "[[exception]] item"
        raise RuleError(f"{path}: no {expected}")
    return [_item(item, f"{path}: exception {i + 1}") for i, item in enumerate(items)]


def _toml(text: str, path: Path) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML: {exc}") from exc


def _yaml_document(text: str, path: Path) -> object:
    try:
        return load_text_yaml(text)
    except YamlTextError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc


def _located(where: str, node: object) -> str:
    """`where`, with the line the YAML mapping `node` starts on (TOML tables have none)."""
    line = getattr(node, "line", 0)
    return f"{where} (line {line})" if line else where


def _item(item: object, where: str) -> ExceptionItem:
    where = _located(where, item)
    if not isinstance(item, dict):
        raise RuleError(f"{where}: an item is a table of name, rule_id and entries")
    entries = item.get("entries")
    if not isinstance(entries, list) or not entries:
        raise RuleError(f"{where}: no entries")
    nodes = tuple(_entry(e, f"{where}, entry {j + 1}") for j, e in enumerate(entries))
    rule_id = item.get("rule_id")
    name = str(item.get("name", where))
    return ExceptionItem(name, str(rule_id) if rule_id else None, And(nodes))


def _entry(entry: object, where: str) -> Node:
    where = _located(where, entry)
    if not isinstance(entry, dict):
        raise RuleError(f"{where}: an entry is a table of field, operator and value(s)")
    field, operator = entry.get("field"), entry.get("operator")
    if not isinstance(field, str) or not field:
        raise RuleError(f"{where}: no field")
    if operator not in OPERATORS:
        raise RuleError(f"{where}: operator {operator!r} is not one of {', '.join(OPERATORS)}")
    if operator == "is one of":
        values = entry.get("values")
        if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
            raise RuleError(f"{where}: 'is one of' needs values = [strings]")
        return InSet(field, tuple(values))
    value = entry.get("value")
    if not isinstance(value, str):
        raise RuleError(f"{where}: {operator!r} needs a string value")
    if operator == "is":
        return Compare(field, "==", value)
    return Wildcard(field, (_unescape(value, where),), case_sensitive=True)


def _unescape(value: str, where: str) -> str:
    """A wildcard-query value as a `like` pattern: `\\x` is a literal x. A literal `*` or `?`
    cannot be said in a `like` pattern, so an escaped one is refused."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            if value[i + 1] in "*?":
                raise RuleError(f"{where}: an escaped {value[i + 1]!r} is not supported")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def exclusion_for(rule: Rule, items: list[ExceptionItem]) -> Node | None:
    """What drops an alert of `rule`: any item meant for it (or for every rule)."""
    mine = [i.condition for i in items if i.rule_id in (None, rule.rule_id)]
    if not mine:
        return None
    return mine[0] if len(mine) == 1 else Or(tuple(mine))
