"""Rules as data: a TOML file holds the metadata and the EQL query, parsed when loaded."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from callsweep.rules import analysis
from callsweep.rules.ast import EventQuery
from callsweep.rules.eql import parse_query


@dataclass(frozen=True)
class Technique:
    id: str
    name: str


@dataclass(frozen=True)
class Threat:
    """One MITRE ATT&CK tactic with its techniques, as Elastic rules write `threat`."""

    tactic_id: str
    tactic_name: str
    techniques: tuple[Technique, ...]


@dataclass(frozen=True)
class Rule:
    rule_id: str
    name: str
    version: int
    severity: str
    risk_score: int
    query_text: str
    query: EventQuery
    description: str = ""
    tags: tuple[str, ...] = ()
    index: tuple[str, ...] = ()
    threat: tuple[Threat, ...] = ()
    false_positives: tuple[str, ...] = ()
    triage: str = ""
    source: str = ""
    # The TOML text the rule was read from: how it travels to other processes.
    text: str = field(default="", compare=False, repr=False)
    metadata: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the query reads, in first-use order."""
        return analysis.fields(self.query)

    @property
    def required_fields(self) -> tuple[str, ...]:
        """Fields without which the query can never hold (see `analysis.required_fields`)."""
        return analysis.required_fields(self.query)


class RuleError(ValueError):
    """A rule file that cannot be loaded; the message names the file."""


def load_rule(path: str | Path) -> Rule:
    """Loads a rule from a TOML file in the layout of Elastic's detection-rules repository."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the rule file: {exc.strerror or exc}") from exc
    return parse_rule(text, source=str(path))


def parse_rule(text: str, source: str = "<string>") -> Rule:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{source}: not valid TOML: {exc}") from exc
    rule = doc.get("rule")
    if not isinstance(rule, dict):
        raise RuleError(f"{source}: no [rule] table")
    missing = [k for k in ("rule_id", "name", "query") if k not in rule]
    if missing:
        raise RuleError(f"{source}: [rule] lacks {', '.join(missing)}")
    if rule.get("language", "eql") != "eql":
        raise RuleError(f"{source}: only EQL rules are supported, not {rule['language']!r}")
    try:
        query = parse_query(rule["query"])
    except ValueError as exc:
        raise RuleError(f"{source}: the query does not parse: {exc}") from exc
    extra = doc.get("callsweep", {})
    return Rule(
        rule_id=str(rule["rule_id"]),
        name=str(rule["name"]),
        version=int(rule.get("version", 1)),
        severity=str(rule.get("severity", "medium")),
        risk_score=int(rule.get("risk_score", 47)),
        query_text=rule["query"].strip(),
        query=query,
        description=" ".join(str(rule.get("description", "")).split()),
        tags=tuple(rule.get("tags", ())),
        index=tuple(rule.get("index", ())),
        threat=tuple(_threat(t) for t in rule.get("threat", ())),
        false_positives=tuple(rule.get("false_positives", ())),
        triage=str(extra.get("triage", "")).strip(),
        source=source,
        text=text,
        metadata={k: v for k, v in rule.items() if k != "query"},
    )


def _threat(entry: dict) -> Threat:
    tactic = entry.get("tactic", {})
    return Threat(
        tactic_id=tactic.get("id", ""),
        tactic_name=tactic.get("name", ""),
        techniques=tuple(
            Technique(id=t.get("id", ""), name=t.get("name", ""))
            for t in entry.get("technique", ())
        ),
    )


def builtin_rules() -> dict[str, Rule]:
    """The rules shipped with callsweep, by `rule_id@version` (one rule may ship in several
    versions: the direct-syscall rule as locked at 311 and as upstream has it now)."""
    rules: dict[str, Rule] = {}
    folder = resources.files("callsweep.rules") / "builtin"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            rule = parse_rule(entry.read_text(encoding="utf-8"), source=f"builtin:{entry.name}")
            rules[f"{rule.rule_id}@{rule.version}"] = rule
    return rules


DEFAULT_RULE_ID = "2dd480be-1263-4d9c-8672-172928f6789a"
# The version a bare rule id means, where several are built in.
DEFAULT_VERSIONS = {DEFAULT_RULE_ID: 311}


def default_rule() -> Rule:
    return builtin_rules()[f"{DEFAULT_RULE_ID}@{DEFAULT_VERSIONS[DEFAULT_RULE_ID]}"]


def find_rule(ref: str) -> Rule:
    """A built-in rule by rule_id (or a unique prefix of it), optionally `@version`
    (`2dd480be@316`), or a rule file by path. A bare id means its default version."""
    rules = builtin_rules()
    rule_ref, _, version = ref.partition("@")
    ids = sorted({r.rule_id for r in rules.values()})
    chosen = [rid for rid in ids if rid == rule_ref] or [
        rid for rid in ids if rule_ref and rid.startswith(rule_ref)
    ]
    if len(chosen) == 1 and (version or not Path(ref).is_file()):
        rid = chosen[0]
        versions = {str(r.version): r for r in rules.values() if r.rule_id == rid}
        if not version:
            version = str(DEFAULT_VERSIONS.get(rid, max(versions, key=int)))
        if version in versions:
            return versions[version]
        raise RuleError(
            f"rule {rid} is built in as version {', '.join(sorted(versions))}, not {version}"
        )
    if Path(ref).is_file():
        return load_rule(ref)
    known = ", ".join(rules)
    raise RuleError(f"no rule {ref!r}: not a built-in rule ({known}) nor a rule file")


def load_rules(refs: Sequence[str], folders: Sequence[str | Path] = ()) -> list[Rule]:
    """The rules named by `refs` (see `find_rule`) and every `*.toml` under `folders`, in that
    order, each (rule_id, version) once. A folder without rules is an error: a typo in a path
    must not turn into a scan with no rule."""
    found = [find_rule(ref) for ref in refs]
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise RuleError(f"{folder}: not a folder of rules")
        files = sorted(folder.rglob("*.toml"))
        if not files:
            raise RuleError(f"{folder}: no rule file (*.toml) in it")
        found.extend(load_rule(f) for f in files)
    unique: dict[tuple[str, int], Rule] = {}
    for rule in found:
        unique.setdefault((rule.rule_id, rule.version), rule)
    return list(unique.values())
