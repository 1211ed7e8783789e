"""The byte-level prefilter of NDJSON scans is sound: whatever JSON spelling an event takes
(`\\uXXXX` escapes in keys and values, the event id as number or string, Sentinel's escaped
EventData, ECS nesting), the alerts with the prefilter are those without it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ndjson import DATA, DUMPERT, SHAPES, _member_lines

from callsweep._native import select_lines
from callsweep.rules.eql import parse_query
from callsweep.rules.model import default_rule, find_rule
from callsweep.scan import Scanner
from callsweep.sources.ndjson import ALERT_NEEDLES, MAX_LINE_BYTES, line_may_alert
from callsweep.sources.prefilter import KEY_NAME, excluded_prefixes, line_excluded

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)


def _events() -> list[dict]:
    """Event 10s that alert and near misses (ntdll first frame, other channels, no CallTrace),
    and first frames the rule excludes, or nearly, in other spellings."""
    lines = _member_lines(DUMPERT)
    tens = [e for e in lines if e.get("EventID") == 10]
    positive = next(e for e in tens if e["CallTrace"].startswith("C:\\Users\\wardog"))
    tens = [positive, *tens[:10]]
    unknown = {**positive, "CallTrace": "UNKNOWN(00000000DEADBEEF)|" + positive["CallTrace"]}
    spelt = [
        {**positive, "CallTrace": first + "+9d1e4|" + positive["CallTrace"]}
        for first in (
            "c:\\windows\\system32\\NTDLL.DLL",  # excluded: `:` folds case
            "D:\\Windows\\SysWOW64\\ntdll.dll",
            "C:\\Windows\\System32\\win32u.dl",  # one letter short: alerts
            'C:\\Windows\\System32\\wow64cpu.dll"',  # excluded, a quote after it
            "\u00e9:\\Windows\\System32\\ntdll.dll",  # `?` is one character, not a byte
        )
    ]
    no_trace = {k: v for k, v in positive.items() if k != "CallTrace"}
    return [*tens, unknown, *spelt, no_trace, lines[0]]


EVENTS = _events()


def _spell(value: object, rng: random.Random, rate: float) -> str:
    """JSON text of `value` with characters of its strings (keys included) escaped as \\uXXXX
    at `rate`; numbers are left as numbers."""
    if isinstance(value, dict):
        items = (f"{_spell(k, rng, rate)}: {_spell(v, rng, rate)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_spell(v, rng, rate) for v in value) + "]"
    if isinstance(value, str):
        out = []
        for char in json.dumps(value)[1:-1]:
            escape = char.isalnum() and rng.random() < rate
            out.append(f"\\u{ord(char):04x}" if escape else char)
        return '"' + "".join(out) + '"'
    return json.dumps(value)


EXCLUDED = excluded_prefixes([default_rule().query])


def _scan(path: Path, prefilter: bool) -> list[tuple]:
    result = Scanner().scan_ndjson(str(path), prefilter=prefilter)
    if result.alerts is None:
        return []
    return sorted(
        result.alerts.select(["log.file.line", "process.executable"]).to_pylist(), key=str
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(st.integers(0, len(EVENTS) - 1), min_size=1, max_size=12),
    shape=st.sampled_from(sorted(SHAPES)),
    code_as_text=st.booleans(),
    rate=st.sampled_from([0.0, 0.02, 0.3, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_prefilter_never_drops_an_alert(
    tmp_path: Path, picks: list[int], shape: str, code_as_text: bool, rate: float, seed: int
) -> None:
    rng = random.Random(seed)
    lines = []
    for i in picks:
        event = dict(EVENTS[i])
        if code_as_text and "EventID" in event:
            event["EventID"] = str(event["EventID"])
        doc = SHAPES[shape](event)
        if shape == "sentinel":  # the inner JSON spelt with escapes of its own
            inner = json.loads(doc["EventData"])
            doc["EventData"] = _spell(inner, rng, rate)
        lines.append(_spell(doc, rng, rate))
    path = tmp_path / f"{seed}.ndjson"
    path.write_text("\n".join(lines) + "\n")
    # The scan tests whole blocks natively; the per-line definition is what the docs state.
    encoded = [line.encode() for line in lines]
    text = b"\n".join(encoded)
    _, kept, *_ = select_lines(text, list(ALERT_NEEDLES), MAX_LINE_BYTES)
    assert kept == [i + 1 for i, line in enumerate(encoded) if line_may_alert(line)]
    exclude = (KEY_NAME, list(EXCLUDED))
    _, parsed, *_, left_out = select_lines(
        text, list(ALERT_NEEDLES), MAX_LINE_BYTES, 1, None, exclude
    )
    assert parsed == [n for n in kept if not line_excluded(encoded[n - 1], EXCLUDED)]
    assert left_out == len(kept) - len(parsed)
    assert _scan(path, prefilter=True) == _scan(path, prefilter=False)


def test_prefilter_is_tested_on_alerting_lines(tmp_path: Path) -> None:
    """The property above would hold vacuously without alerts: the positive is among them,
    and so are lines the second test leaves out."""
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    # The Dumpert positive, its UNKNOWN copy, the win32u one letter short (`?` matches the
    # é: that line is parsed, its \u00e9 proving nothing on the bytes, and does not alert).
    assert len(_scan(path, prefilter=True)) == 3
    result = Scanner().scan_ndjson(str(path))
    excluded = [line for line in path.read_bytes().splitlines() if line_excluded(line, EXCLUDED)]
    assert result.unparsed[1] == len(excluded) >= 3  # two spelt ones and the ntdll tens


def test_the_rule_gives_its_ntdll_and_wow64_prefixes() -> None:
    heads = {head for head, _ in EXCLUDED}
    assert "?:\\WINDOWS\\SYSTEM32\\ntdll.dll" in heads and len(heads) == 5
    assert not any(sensitive for _, sensitive in EXCLUDED)  # `:` folds ASCII case


def test_prefixes_only_when_every_rule_excludes_them() -> None:
    both = excluded_prefixes([default_rule().query, find_rule("2dd480be@316").query])
    assert set(both) == set(EXCLUDED)  # 316 excludes more, but 311 not those
    unknown = parse_query(
        'process where event.code == "10" and winlog.event_data.CallTrace : "UNKNOWN*"'
    )
    assert excluded_prefixes([default_rule().query, unknown]) == ()
    # `like` is case-sensitive; with `like~` in one rule and `like` in the other, the
    # case-sensitive form is what both prove.
    sensitive = parse_query('process where not winlog.event_data.CallTrace like "C:\\\\ab*"')
    folded = parse_query('process where not winlog.event_data.CallTrace like~ "C:\\\\ab*"')
    assert excluded_prefixes([sensitive, folded]) == (("C:\\ab", True),)
    assert excluded_prefixes([folded]) == (("C:\\ab", False),)
    # Too short to tell from a value read as missing ("-"); not a plain prefix.
    assert (
        excluded_prefixes(
            [parse_query('process where not winlog.event_data.CallTrace : ("-*", "a*b*")')]
        )
        == ()
    )


def test_elasticsearch_modes_parse_every_line_with_a_calltrace(tmp_path: Path) -> None:
    """Elasticsearch misses long CallTraces (`ignore_above`), so an excluded prefix proves
    nothing there: those scans use the first test only."""
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    assert Scanner(elastic_compat=True).scan_ndjson(str(path)).unparsed[1] == 0
    assert Scanner(compare_modes=True).scan_ndjson(str(path)).unparsed[1] == 0
