"""Several rules in one pass give exactly the union of the single-rule scans, each alert tagged
with the rule that raised it (one alert row per (event, rule))."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

import callsweep
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.siblings import sibling_rule, sibling_rules
from callsweep.scan import OWNED_COLUMN, Scanner
from callsweep.synthetic import Shape, chunk

KEY = ["winlog.record_id", "kibana.alert.rule.rule_id", "kibana.alert.rule.version"]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("multi") / "events.parquet"
    shape = Shape(rows=20_000, event10_share=0.6, syscall_share=0.05, seed=11)
    chunk(shape, 0, shape.rows).drop("expected_alert").write_parquet(path, row_group_size=4000)
    return path


def keys(alerts: pl.DataFrame) -> set[tuple]:
    return set(alerts.select(KEY).iter_rows())


@pytest.mark.parametrize("n", [3, 10])
def test_one_pass_is_the_union_of_single_rule_scans(events: Path, n: int) -> None:
    rules = sibling_rules(n)
    together = callsweep.scan(events, rule=rules)
    singles = [callsweep.scan(events, rule=r) for r in rules]
    assert all(s.height for s in singles), "every rule must alert on the fixture"
    assert together.height == sum(s.height for s in singles)  # no duplicate, none lost
    assert keys(together) == set().union(*(keys(s) for s in singles))
    # The whole alert row, not only the key, is what the single rule wrote.
    expected = pl.concat(singles).sort(KEY)
    assert together.sort(KEY).equals(expected)


def test_a_rule_without_alerts_among_others_adds_none(events: Path) -> None:
    # Between two rules that alert, one that never does: its alerts are none, and the others'
    # rows keep their own rule (no row is left without one).
    silent = sibling_rule("Never Alerting", 'winlog.event_data.TargetImage : "no such image"')
    first, last = sibling_rules(2)
    together = callsweep.scan(events, rule=[first, silent, last])
    singles = [callsweep.scan(events, rule=r) for r in (first, last)]
    assert callsweep.scan(events, rule=silent).height == 0
    assert together["kibana.alert.rule.rule_id"].null_count() == 0
    assert together.sort(KEY).equals(pl.concat(singles).sort(KEY))


def test_alerts_carry_their_rule(events: Path) -> None:
    rules = sibling_rules(3)
    alerts = callsweep.scan(events, rule=rules)
    by_id = {(r.rule_id, str(r.version)): r for r in rules}
    for rule_id, version, name, severity in (
        alerts.select(
            "kibana.alert.rule.rule_id",
            "kibana.alert.rule.version",
            "kibana.alert.rule.name",
            "kibana.alert.severity",
        )
        .unique()
        .iter_rows()
    ):
        rule = by_id[(rule_id, version)]
        assert (name, severity) == (rule.name, rule.severity)


def test_summary_counts_alerts_per_rule(events: Path) -> None:
    rules = sibling_rules(3)
    summary = Scanner(rules).run([events])
    assert summary.rules == rules
    counts = {f"{r.name} v{r.version}": callsweep.scan(events, rule=r).height for r in rules}
    assert dict(summary.alerts_by_rule) == {k: v for k, v in counts.items() if v}
    assert summary.alerts == sum(counts.values())


def test_lazy_scan_of_several_rules(events: Path) -> None:
    rules = sibling_rules(3)
    lazy = callsweep.scan_lazy(events, rule=rules).collect()
    assert keys(lazy) == keys(callsweep.scan(events, rule=rules))


def test_cli_repeated_rule_and_rules_folder(events: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from callsweep.cli import app

    siblings = sibling_rules(5)[2:]
    folder = tmp_path / "rules"
    (folder / "sub").mkdir(parents=True)
    for i, rule in enumerate(siblings):
        (folder / ("sub" if i else ".") / f"r{i}.toml").write_text(rule.text)
    out = tmp_path / "alerts.parquet"
    args = ["scan", str(events), "--rule", "2dd480be", "--rule", "2dd480be@316"]
    args += ["--rules", str(folder), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "5 in one pass" in result.output
    expected = callsweep.scan(events, rule=sibling_rules(5))
    assert keys(pl.read_parquet(out)) == keys(expected)
    empty = tmp_path / "none"
    empty.mkdir()
    result = CliRunner().invoke(app, ["scan", str(events), "--rules", str(empty)])
    assert result.exit_code == 1
    assert "no rule file (*.toml) in it" in result.output


@pytest.mark.parametrize("explain", [False, True])
def test_tagging_gives_the_rows_of_the_per_rule_filters(
    events: Path, tmp_path: Path, explain: bool
) -> None:
    """`Scanner._tag` (the event rows compacted once, then gathered rule by rule, the rules'
    columns gathered from a table of the rules) gives what filtering the query's rows rule by
    rule gives (`_alerts_of`, the lazy scan's way): the same rows in the same order, exceptions
    and explanations included; its strings own their bytes."""
    exceptions = tmp_path / "exceptions.toml"
    rule = sibling_rules(10)[8]
    exceptions.write_text(
        f'[[exception]]\nname = "x"\nrule_id = "{rule.rule_id}"\nentries = [\n'
        '  { field = "host.name", operator = "is", value = "DC01" },\n]\n'
    )
    scanner = Scanner(sibling_rules(10), exceptions=load_exceptions(exceptions), explain=explain)
    raw = pl.scan_parquet(events)
    hits = scanner._queries(raw, pl.lit(str(events)))[0].collect(engine="streaming")
    # The query copied the kept rows' CallTraces already (`_with_owned_call_trace`).
    assert hits.get_column(OWNED_COLUMN).all()
    tagged = scanner._tag(hits)
    by_filter = pl.concat([scanner._alerts_of(hits.lazy(), i) for i in range(10)]).collect()
    assert tagged.height > hits.height > 0
    assert tagged.columns == by_filter.columns
    assert tagged.equals(by_filter)
    assert set(tagged["kibana.alert.rule.name"]) == {r.name for r in sibling_rules(10)}
    # Owning: the CallTraces' buffers hold the alerting events' bytes, not the part's.
    traces = tagged.get_column("winlog.event_data.CallTrace").to_arrow(
        compat_level=pl.CompatLevel.newest()
    )
    events_bytes = hits.get_column("winlog.event_data.CallTrace").str.len_bytes().sum()
    held = sum(b.size for b in traces.buffers()[2:] if b is not None)
    assert held <= events_bytes
    # The first frames (cut in the query from the copies) hold their own bytes only.
    frames = tagged.get_column("callsweep.call_trace.first_frame")
    frame_bytes = hits.get_column("callsweep.call_trace.first_frame").str.len_bytes().sum()
    arrow_frames = frames.to_arrow(compat_level=pl.CompatLevel.newest())
    assert sum(b.size for b in arrow_frames.buffers()[2:] if b is not None) <= frame_bytes


def test_an_exception_drops_only_its_rules_alerts(events: Path, tmp_path: Path) -> None:
    """Tagged with exceptions: the excepted rule loses the alerts on that host, the others
    keep theirs, and the summary counts the dropped ones."""
    rules = sibling_rules(10)
    rule = rules[8]
    exceptions = tmp_path / "exceptions.toml"
    exceptions.write_text(
        f'[[exception]]\nname = "x"\nrule_id = "{rule.rule_id}"\nentries = [\n'
        '  { field = "host.name", operator = "is", value = "DC01" },\n]\n'
    )
    plain = callsweep.scan(events, rule=rules)
    excepted = callsweep.scan(events, rule=rules, exceptions=load_exceptions(exceptions))
    dropped = (pl.col("kibana.alert.rule.rule_id") == rule.rule_id) & (
        pl.col("host.name") == "DC01"
    )
    assert plain.filter(dropped).height > 0
    assert excepted.sort(KEY).equals(plain.filter(~dropped).sort(KEY))
    summary = Scanner(rules, exceptions=load_exceptions(exceptions)).run([events])
    assert sum(r.excluded for r in summary.inputs) == plain.filter(dropped).height
