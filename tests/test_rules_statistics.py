"""What row-group statistics prove about a rule (`rules.statistics`): never a row group that
holds a match, checked against a plain reference evaluator on random data written as real
Parquet, and the worked cases of the built-in rule on callsweep's layout."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from test_condition_property import query, reference

from callsweep.rules.ast import EventQuery, Not, Wildcard
from callsweep.rules.model import default_rule
from callsweep.rules.prefix import use_stored_prefixes
from callsweep.rules.statistics import ColumnStats, never_matches, row_group_stats

CALL_TRACE = "winlog.event_data.CallTrace"
PREFIX = "winlog.event_data.CallTrace[:64]"
NTDLL = "C:\\Windows\\SYSTEM32\\ntdll.dll"

# Values that share long prefixes, so that min and max often share one: what makes the
# statistics decide anything at all.
stem = st.sampled_from(["", "a", "aK", "AK\\", "ab", "-", "b:"])
tail = st.text(alphabet=["a", "A", "b", "\\", ":", "é", "K", "\u212a", "*", "?"], max_size=3)
value = st.one_of(st.none(), st.builds(lambda s, t: s + t, stem, tail))
event = st.fixed_dictionaries(
    {"s": value, "t": value, "l": st.one_of(st.none(), st.lists(value, max_size=3))}
)


def written_stats(tmp_path: Path, events: list[dict]) -> dict[str, ColumnStats]:
    table = pa.table(
        {
            "s": pa.array([e["s"] for e in events], pa.string()),
            "t": pa.array([e["t"] for e in events], pa.string()),
            "l": pa.array([e["l"] for e in events], pa.list_(pa.string())),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    metadata = pq.read_metadata(path)
    assert metadata.num_row_groups == 1
    return row_group_stats(metadata, 0)


@settings(max_examples=400, deadline=None)
@given(query, st.lists(event, min_size=1, max_size=8))
def test_a_row_group_said_never_to_match_has_no_matching_row(tmp_path_factory, node, events):
    stats = written_stats(tmp_path_factory.mktemp("stats"), events)
    # A list column's statistics describe its elements: not usable for rows.
    assert "l" not in stats
    condition = EventQuery("process", node)
    if never_matches(condition, stats):
        assert not any(reference(node, e) for e in events)


def test_the_random_cases_do_decide(tmp_path: Path):
    # The property above is not vacuous: such data does let the statistics decide.
    events = [{"s": "aKb", "t": None, "l": None}, {"s": "aKz", "t": None, "l": None}]
    stats = written_stats(tmp_path, events)
    condition = EventQuery("process", Not(Wildcard("s", ("?k*",))))
    assert never_matches(condition, stats)
    condition = EventQuery("process", Not(Wildcard("s", ("?kb*",))))
    assert not never_matches(condition, stats)


def rule_stats(prefixes: list[str | None], code: str = "10") -> dict[str, ColumnStats]:
    present = [p for p in prefixes if p is not None]
    rows, nulls = len(prefixes), len(prefixes) - len(present)
    return {
        "event.code": ColumnStats(rows, 0, code, code),
        "host.os.type": ColumnStats(rows, 0, "windows", "windows"),
        PREFIX: ColumnStats(rows, nulls, min(present, default=None), max(present, default=None)),
    }


def built_in_rule():
    schema = {CALL_TRACE: None, PREFIX: None}
    return use_stored_prefixes(default_rule().query, schema)


def test_an_event_10_row_group_of_ntdll_first_frames_never_alerts():
    stats = rule_stats([f"{NTDLL}+9d4c4|C:\\x", f"{NTDLL}+a1|C:\\y", f"{NTDLL}+ff"])
    assert never_matches(built_in_rule(), stats)


def test_row_groups_that_could_alert_are_read():
    query = built_in_rule()
    cases = {
        "a direct-syscall first frame": [f"{NTDLL}+9d4c4", "UNKNOWN(000001F3C35A0014)"],
        # Two spellings of ntdll: min and max share only "C:\W", which decides nothing.
        "case variants": [f"{NTDLL}+1", "C:\\WINDOWS\\SYSTEM32\\ntdll.dll+2"],
        "a missing CallTrace": [f"{NTDLL}+1", None],
        "ntdll but one character short": [NTDLL[:-1], NTDLL[:-1]],
    }
    for name, prefixes in cases.items():
        assert not never_matches(query, rule_stats(prefixes)), name


def test_no_statistics_decide_nothing():
    query = built_in_rule()
    assert not never_matches(query, {})
    stats = rule_stats([f"{NTDLL}+1"])
    stats[PREFIX] = ColumnStats(1, 0)  # no min / max written
    assert not never_matches(query, stats)


def test_a_row_group_without_event_10_never_alerts():
    assert never_matches(built_in_rule(), rule_stats(["UNKNOWN(1)"], code="11"))
