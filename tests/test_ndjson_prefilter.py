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
from callsweep.scan import Scanner
from callsweep.sources.ndjson import ALERT_NEEDLES, MAX_LINE_BYTES, line_may_alert

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)


def _events() -> list[dict]:
    """Event 10s that alert and near misses (ntdll first frame, other channels, no CallTrace)."""
    lines = _member_lines(DUMPERT)
    tens = [e for e in lines if e.get("EventID") == 10]
    positive = next(e for e in tens if e["CallTrace"].startswith("C:\\Users\\wardog"))
    tens = [positive, *tens[:10]]
    unknown = {**positive, "CallTrace": "UNKNOWN(00000000DEADBEEF)|" + positive["CallTrace"]}
    return [*tens, unknown, {k: v for k, v in positive.items() if k != "CallTrace"}, lines[0]]


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
    _, kept, _, _, _ = select_lines(b"\n".join(encoded), list(ALERT_NEEDLES), MAX_LINE_BYTES)
    assert kept == [i + 1 for i, line in enumerate(encoded) if line_may_alert(line)]
    assert _scan(path, prefilter=True) == _scan(path, prefilter=False)


def test_prefilter_is_tested_on_alerting_lines(tmp_path: Path) -> None:
    """The property above would hold vacuously without alerts: the positive is among them."""
    path = tmp_path / "e.ndjson"
    path.write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    assert len(_scan(path, prefilter=True)) == 2  # the Dumpert positive and its UNKNOWN copy
