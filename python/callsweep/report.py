"""What a person sees on the terminal: the alert table, the run summary, input warnings, and the
progress of a long scan."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from callsweep.convert import ConvertReport, ConvertSummary
from callsweep.rules.explain import EXPLAIN, short_form
from callsweep.rules.model import Rule
from callsweep.scan import InputReport, Part, ScanSummary
from callsweep.sources.discover import InputError, InputFile


class _Throughput(ProgressColumn):
    """Rows and MB/s so far; the bar itself advances by bytes."""

    def render(self, task: Task) -> Text:
        rows = task.fields.get("rows", 0)
        seconds = task.elapsed or 0.0
        mbps = task.completed / 1e6 / seconds if seconds > 0 else 0.0
        files = f"{task.fields.get('files', 0)}/{task.fields.get('total_files', 0)} files"
        return Text(f"{files}  {rows:,} rows  {mbps:,.1f} MB/s", style="progress.data.speed")


def _progress_bar(label: str, console: Console, enabled: bool) -> Progress:
    """A bar over bytes with files, rows and MB/s beside it; gone once done."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        _Throughput(),
        TimeElapsedColumn(),
        console=console,
        disable=not enabled,
        transient=True,
    )


class ScanProgress:
    """A progress bar over the inputs of a scan, on stderr, hidden when not a terminal.

    It moves by parts (runs of row groups), so a single large file shows progress too."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._progress = _progress_bar("scanning", console, enabled)
        self._task: TaskID | None = None
        self._rows = 0
        self._files = 0
        self._bytes_in_file = 0

    def start(self, inputs: Sequence[InputFile]) -> None:
        self._progress.start()
        total = sum(i.size for i in inputs) or 1
        self._task = self._progress.add_task(
            "scan", total=total, rows=0, files=0, total_files=len(inputs)
        )

    def part_done(self, part: Part) -> None:
        if self._task is None:
            return
        self._rows += part.rows
        self._bytes_in_file += part.bytes
        self._progress.update(self._task, advance=part.bytes, rows=self._rows)

    def input_done(self, report: InputReport) -> None:
        if self._task is None:
            return
        # Row groups do not add up to the whole file (its footer) and a failed input has no
        # parts: settle on the file's size.
        self._files += 1
        rest = max(report.bytes - self._bytes_in_file, 0)
        self._bytes_in_file = 0
        self._progress.update(self._task, advance=rest, files=self._files)

    def stop(self) -> None:
        self._progress.stop()


class ConvertProgress:
    """Files converted, records, MB/s; on stderr, hidden when not a terminal."""

    def __init__(self, console: Console, enabled: bool = True) -> None:
        self._progress = _progress_bar("converting", console, enabled)
        self._task: TaskID | None = None
        self._rows = 0
        self._files = 0
        self._sizes: dict[str, int] = {}

    def start(self, inputs: Sequence[InputFile]) -> None:
        self._progress.start()
        self._sizes = {i.location: i.size for i in inputs}
        total = sum(self._sizes.values()) or 1
        self._task = self._progress.add_task(
            "convert", total=total, rows=0, files=0, total_files=len(inputs)
        )

    def file_done(self, report: ConvertReport) -> None:
        if self._task is None:
            return
        self._files += 1
        self._rows += report.records
        self._progress.update(
            self._task,
            advance=self._sizes.get(report.input, 0),
            rows=self._rows,
            files=self._files,
        )

    def stop(self) -> None:
        self._progress.stop()


ALERT_TABLE_COLUMNS = {
    "@timestamp": "time (UTC)",
    "host.name": "host",
    "process.executable": "source",
    "winlog.event_data.TargetImage": "target",
    "winlog.event_data.GrantedAccess": "access",
    "callsweep.call_trace.first_frame": "first frame",
    "log.file.path": "file",
    "winlog.record_id": "record",
}


def alert_table(alerts: pl.DataFrame, total: int) -> Table:
    shown = alerts.height
    title = f"{total:,} alert(s)" + (f", first {shown} shown" if shown < total else "")
    table = Table(title=title, show_lines=False, expand=False)
    explained = EXPLAIN in alerts.columns
    for header in ALERT_TABLE_COLUMNS.values():
        table.add_column(header, overflow="fold")
    if explained:
        table.add_column("why", overflow="fold")
    view = alerts.select(
        pl.col("@timestamp").dt.strftime("%Y-%m-%d %H:%M:%S%.3f"),
        *(pl.col(c) for c in list(ALERT_TABLE_COLUMNS)[1:]),
        *([short_form(pl.col(EXPLAIN))] if explained else []),
    )
    for row in view.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def print_skipped(console: Console, skipped: Sequence[InputError], shown: int = 20) -> None:
    """Damaged records or chunks passed over: each named with its file and place."""
    for error in skipped[:shown]:
        console.print(f"[yellow]skipped[/]: {error}", highlight=False)
    if len(skipped) > shown:
        console.print(f"[yellow]skipped[/]: ... and {len(skipped) - shown} more", highlight=False)


def print_convert_summary(out: Console, err: Console, summary: ConvertSummary) -> None:
    print_skipped(err, summary.skipped)
    for error in summary.errors:
        err.print(f"[red]error[/]: {error}", highlight=False)
    seconds = summary.seconds or 1e-9
    table = Table(title="conversion", show_header=False, box=None)
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_row("converted", f"{summary.count('converted'):,} file(s)")
    table.add_row("unchanged", f"{summary.count('unchanged'):,} file(s), skipped")
    if summary.errors:
        table.add_row("failed", f"[red]{len(summary.errors):,}[/]")
    if summary.passed_over:
        skipped = ", ".join(f"{n} {suffix}" for suffix, n in summary.passed_over.most_common())
        table.add_row("passed over", f"{sum(summary.passed_over.values()):,} ({skipped})")
    table.add_row("records", f"{summary.records:,}")
    if summary.skipped:
        table.add_row("records skipped", f"[yellow]{len(summary.skipped):,}[/] (see *.skipped.csv)")
    table.add_row(
        "time",
        f"{summary.seconds:.2f} s ({summary.records / seconds:,.0f} records/s, "
        f"{summary.bytes / 1e6 / seconds:,.1f} MB/s)",
    )
    out.print(table)


def print_input_warnings(console: Console, summary: ScanSummary) -> None:
    for report in summary.inputs:
        if report.missing:
            console.print(
                f"[yellow]warning[/]: {report.path} ({report.shape}) has no "
                f"{', '.join(report.missing)}: the rule cannot alert on this input",
                highlight=False,
            )
    print_skipped(console, summary.skipped)
    for error in summary.errors:
        console.print(f"[red]error[/]: {error}", highlight=False)


def print_summary(console: Console, summary: ScanSummary, top: int = 10) -> None:
    rate = summary.rows / summary.seconds if summary.seconds > 0 else 0.0
    mbps = summary.bytes / 1e6 / summary.seconds if summary.seconds > 0 else 0.0
    table = Table(title="summary", show_header=False, box=None)
    table.add_column(justify="right", style="bold")
    table.add_column()
    rules = summary.rules or [summary.rule]
    if len(rules) == 1:
        table.add_row("rule", f"{summary.rule.name} (v{summary.rule.version})")
    else:
        table.add_row("rules", f"{len(rules)} in one pass")
    table.add_row("files scanned", f"{summary.files:,}")
    if summary.errors:
        table.add_row("inputs failed", f"[red]{summary.failed:,}[/]")
    if summary.passed_over:
        skipped = ", ".join(f"{n} {suffix}" for suffix, n in summary.passed_over.most_common())
        table.add_row("passed over", f"{sum(summary.passed_over.values()):,} ({skipped})")
    lacking = sum(1 for r in summary.inputs if r.missing)
    if lacking:
        table.add_row("inputs lacking fields", f"[yellow]{lacking:,}[/]")
    table.add_row("rows read", f"{summary.rows:,}")
    if summary.skipped:
        table.add_row("records skipped", f"[yellow]{len(summary.skipped):,}[/] (damaged)")
    if summary.unparsed:
        excluded = summary.unparsed_excluded
        table.add_row(
            "lines not parsed",
            f"{summary.unparsed:,} NDJSON lines the prefilter proved unable to alert "
            f"({summary.unparsed - excluded:,} without a CallTrace, {excluded:,} whose "
            "CallTrace every rule excludes)",
        )
    table.add_row("event-10 rows", f"{summary.event10_rows:,}")
    table.add_row("alerts", f"{summary.alerts:,}")
    if summary.excluded:
        table.add_row("excluded", f"{summary.excluded:,} alert(s) dropped by exceptions")
    if summary.compared:
        written, elastic, both = (
            summary.alerts_as_written,
            summary.alerts_elastic,
            summary.both_modes,
        )
        mode = "Elasticsearch's" if summary.elastic_compat else "the query as written"
        table.add_row("alerts as written", f"{written:,}")
        table.add_row(
            "alerts Elasticsearch would raise",
            f"{elastic:,} (keyword ignore_above 1024: longer values are missing)",
        )
        table.add_row(
            "differ by",
            f"{written - both:,} only as written, {elastic - both:,} only in Elasticsearch; "
            f"alerts written out: {mode}",
        )
    if len(rules) > 1:
        for rule in rules:
            n = summary.alerts_by_rule.get(f"{rule.name} v{rule.version}", 0)
            table.add_row("", f"{n:,}  {rule.name} (v{rule.version})")
    table.add_row("time", f"{summary.seconds:.2f} s ({rate:,.0f} rows/s, {mbps:,.1f} MB/s)")
    console.print(table)
    if summary.shape_events:
        print_shape_fields(console, summary)
    if summary.alerts_by_host:
        hosts = Table(title="alerts per host")
        hosts.add_column("host")
        hosts.add_column("alerts", justify="right")
        for host, n in summary.alerts_by_host.most_common(top):
            hosts.add_row(host, f"{n:,}")
        console.print(hosts)
        pairs = Table(title="alerts per source -> target")
        pairs.add_column("source")
        pairs.add_column("target")
        pairs.add_column("alerts", justify="right")
        for (source, target), n in summary.alerts_by_pair.most_common(top):
            pairs.add_row(source, target, f"{n:,}")
        console.print(pairs)


def summary_record(summary: ScanSummary) -> dict[str, object]:
    """The run summary as plain data, for `--summary-json`."""
    record: dict[str, object] = {
        "rules": [
            {"rule_id": r.rule_id, "name": r.name, "version": r.version}
            for r in summary.rules or [summary.rule]
        ],
        "files": summary.files,
        "inputs_failed": summary.failed,
        "rows": summary.rows,
        "records_skipped": len(summary.skipped),
        "event10_rows": summary.event10_rows,
        "ndjson_lines_not_parsed": {
            "total": summary.unparsed,
            "calltrace_excluded": summary.unparsed_excluded,
        },
        "alerts": summary.alerts,
        "excluded": summary.excluded,
        "alerts_by_rule": dict(summary.alerts_by_rule),
        "alerts_by_host": dict(summary.alerts_by_host),
        "seconds": round(summary.seconds, 3),
    }
    if summary.compared:
        written, elastic, both = (
            summary.alerts_as_written,
            summary.alerts_elastic,
            summary.both_modes,
        )
        record["elastic_compat"] = {
            "alerts_written_out": "elasticsearch" if summary.elastic_compat else "as written",
            "alerts_as_written": written,
            "alerts_elasticsearch": elastic,
            "only_as_written": written - both,
            "only_elasticsearch": elastic - both,
        }
    return record


def print_shape_fields(console: Console, summary: ScanSummary) -> None:
    """Per NDJSON shape: events parsed and how many had each field the rule needs, so a shape
    read with the wrong names shows as zeros rather than as a silent lack of alerts."""
    shapes = [shape for shape, _ in summary.shape_events.most_common()]
    table = Table(title="NDJSON events per shape, and how many had each field the rule needs")
    table.add_column("field")
    for shape in shapes:
        table.add_column(shape, justify="right")
    table.add_row("(events)", *(f"{summary.shape_events[s]:,}" for s in shapes))
    for name in summary.rule.fields:
        counts = (summary.shape_fields.get(s, {}).get(name, 0) for s in shapes)
        table.add_row(name, *(f"{n:,}" for n in counts))
    console.print(table)


def print_rules(console: Console, rules: Sequence[Rule]) -> None:
    """One line per rule, so the list can be grepped."""
    for rule in rules:
        console.print(
            f"{rule.rule_id}  v{rule.version}  {rule.severity:<8} {rule.name}",
            highlight=False,
            markup=False,
        )


def print_rule(console: Console, rule: Rule) -> None:
    console.print(f"[bold]{rule.name}[/]", highlight=False)
    console.print(f"rule_id   {rule.rule_id}", highlight=False)
    console.print(f"version   {rule.version}", highlight=False)
    console.print(f"severity  {rule.severity} (risk score {rule.risk_score})", highlight=False)
    if rule.index:
        console.print(f"indices   {', '.join(rule.index)}", highlight=False)
    for threat in rule.threat:
        techniques = ", ".join(f"{t.id} {t.name}" for t in threat.techniques)
        console.print(
            f"threat    {threat.tactic_id} {threat.tactic_name} -> {techniques}", highlight=False
        )
    if rule.tags:
        console.print(f"tags      {'; '.join(rule.tags)}", highlight=False)
    console.print(f"fields    {', '.join(rule.fields)}", highlight=False)
    console.print(f"required  {', '.join(rule.required_fields)}", highlight=False)
    if rule.description:
        console.print(f"\n{rule.description}", highlight=False)
    console.print("\n[bold]query[/]", highlight=False)
    console.print(rule.query_text, highlight=False, markup=False)
    if rule.false_positives:
        console.print("\n[bold]false positives[/]", highlight=False)
        for fp in rule.false_positives:
            console.print(f"- {fp}", highlight=False, markup=False)
    if rule.triage:
        console.print("\n[bold]triage[/]", highlight=False)
        console.print(rule.triage, highlight=False, markup=False)
