"""The `callsweep` command line: options, progress, exit codes. The work is done elsewhere."""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from callsweep import demo as demo_data
from callsweep.alerts import AlertWriter
from callsweep.convert import convert as convert_inputs
from callsweep.engines import Engine, EngineError, make_engine
from callsweep.report import (
    ConvertProgress,
    ScanProgress,
    alert_table,
    print_convert_summary,
    print_input_warnings,
    print_rule,
    print_rules,
    print_summary,
)
from callsweep.rules.model import DEFAULT_RULE_ID, RuleError, builtin_rules, find_rule
from callsweep.scan import Scanner, ScanSummary
from callsweep.sources.json_shapes import SHAPES as JSON_SHAPES

# Exit statuses: 0 done; 1 bad usage of callsweep itself; 2 some input could not be read;
# 3 alerts were found and --fail-on-alert asked to say so.
EXIT_INPUT_FAILED = 2
EXIT_ALERTS = 3
TABLE_ROWS = 50

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Sweep Sysmon logs for process access through direct system calls.",
)
rules_app = typer.Typer(no_args_is_help=True, help="The detection rules callsweep knows.")
app.add_typer(rules_app, name="rules")

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error[/]: {message}", highlight=False)
    return typer.Exit(1)


EngineOption = Annotated[
    str,
    typer.Option(
        help="Where the work runs: local (threads of this process) or dask (a Dask cluster)."
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        help="Dask scheduler address (tcp://host:port); default $DASK_SCHEDULER_ADDRESS, "
        "else a local cluster sized to this machine. Only with --engine dask.",
    ),
]


def _engine(name: str, scheduler: str | None) -> Engine:
    try:
        return make_engine(name, scheduler)
    except EngineError as exc:
        raise _fail(str(exc)) from None


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time (e.g. 2024-03-01 or 2024-03-01T12:00:00Z)"
        ) from None


class _AlertSink:
    """Alerts go to the output file as they come, and the first rows to the terminal table."""

    def __init__(self, writer: AlertWriter | None) -> None:
        self.writer = writer
        self.shown: list[pl.DataFrame] = []
        self.kept = 0

    def __call__(self, alerts: pl.DataFrame) -> None:
        if self.writer is not None:
            self.writer.write(alerts)
        elif self.kept < TABLE_ROWS:
            self.shown.append(alerts.head(TABLE_ROWS - self.kept))
            self.kept += self.shown[-1].height


@app.command()
def scan(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Parquet and EVTX files, directories (walked recursively), globs, s3:// URLs."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write alerts here: .parquet, .csv or .ndjson (by extension)."
        ),
    ] = None,
    rule: Annotated[
        str, typer.Option(help="Built-in rule id (or unique prefix) or a rule TOML file.")
    ] = DEFAULT_RULE_ID,
    since: Annotated[
        str | None, typer.Option(help="Only events at or after this time (ISO-8601, UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only events before this time (ISO-8601, UTC).")
    ] = None,
    fail_on_alert: Annotated[
        bool, typer.Option("--fail-on-alert", help="Exit with status 3 when there are alerts.")
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (only on a terminal).")
    ] = True,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    json_shape: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Shape of NDJSON inputs, instead of detecting it per file: "
            + ", ".join(JSON_SHAPES)
            + ".",
        ),
    ] = None,
) -> None:
    """Evaluate the rule over the inputs and report the alerts.

    Exit status: 0 done, 2 some input could not be read (the others were scanned),
    3 alerts found with --fail-on-alert.
    """
    try:
        chosen = find_rule(rule)
    except RuleError as exc:
        raise _fail(str(exc)) from None
    if json_shape is not None and json_shape not in JSON_SHAPES:
        raise _fail(f"--format must be one of {', '.join(JSON_SHAPES)}, not {json_shape!r}")
    scanner = Scanner(chosen, _parse_time(since), _parse_time(until))
    scanner.ndjson_shape = json_shape
    try:
        writer = AlertWriter(out) if out is not None else None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    sink = _AlertSink(writer)
    runner = _engine(engine, scheduler)
    bar = ScanProgress(err_console, enabled=progress)
    try:
        summary = scanner.run(
            paths,
            on_alerts=sink,
            on_part=bar.part_done,
            on_input=bar.input_done,
            on_start=bar.start,
            engine=runner,
        )
    except BaseException:
        bar.stop()
        if writer is not None:
            writer.abort()
        raise
    bar.stop()
    if writer is not None:
        writer.close()
    _report(summary, sink, out)
    if summary.errors:
        raise typer.Exit(EXIT_INPUT_FAILED)
    if fail_on_alert and summary.alerts:
        raise typer.Exit(EXIT_ALERTS)


def _report(summary: ScanSummary, sink: _AlertSink, out: Path | None) -> None:
    print_input_warnings(err_console, summary)
    if out is None:
        shown = pl.concat(sink.shown) if sink.shown else None
        if shown is not None:
            out_console.print(alert_table(shown, summary.alerts))
    else:
        err_console.print(f"{summary.alerts:,} alert(s) written to {out}", highlight=False)
    print_summary(out_console if out is None else err_console, summary)


@app.command()
def convert(
    paths: Annotated[list[str], typer.Argument(help="EVTX files, directories, globs, s3:// URLs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the Parquet files.")],
    jobs: Annotated[
        int, typer.Option(help="Files converted at once (0: one per core).", min=0)
    ] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Convert again inputs already converted unchanged.")
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (only on a terminal).")
    ] = True,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
) -> None:
    """Convert EVTX files to Parquet (one file per input, mirroring the input tree).

    Damaged records and chunks are skipped, counted, and listed in `<output>.skipped.csv`.
    Exit status: 0 done; 2 some input could not be read at all (the others were converted).
    """
    runner = None if engine == "local" and scheduler is None else _engine(engine, scheduler)
    bar = ConvertProgress(err_console, enabled=progress)
    try:
        summary = convert_inputs(
            paths,
            out,
            jobs=jobs,
            force=force,
            on_file=bar.file_done,
            on_start=bar.start,
            engine=runner,
        )
    finally:
        bar.stop()
    print_convert_summary(out_console, err_console, summary)
    if summary.errors:
        raise typer.Exit(EXIT_INPUT_FAILED)


@rules_app.command("list")
def rules_list() -> None:
    """List the built-in rules."""
    print_rules(out_console, list(builtin_rules().values()))


@rules_app.command("show")
def rules_show(
    rule_id: Annotated[str, typer.Argument(help="Rule id (or unique prefix) or a rule file.")],
) -> None:
    """Show a rule: its query, metadata and triage notes."""
    try:
        print_rule(out_console, find_rule(rule_id))
    except RuleError as exc:
        raise _fail(str(exc)) from None


@app.command()
def demo(
    folder: Annotated[
        Path | None,
        typer.Option("--dir", help="Write the demo data here (default: a temporary folder)."),
    ] = None,
    rows: Annotated[int, typer.Option(help="Events in the main demo file.")] = 20_000,
) -> None:
    """Write a small synthetic Sysmon data set with known direct-syscall events and scan it."""
    with tempfile.TemporaryDirectory(prefix="callsweep-demo-") as tmp:
        target = folder or Path(tmp)
        data = demo_data.write_demo_data(target, rows=rows)
        out_console.print(f"demo data written to {target}", highlight=False)
        frames: list[pl.DataFrame] = []
        summary = Scanner().run([target], on_alerts=frames.append)
        alerts = pl.concat(frames) if frames else None
        if alerts is not None:
            out_console.print(alert_table(alerts.head(TABLE_ROWS), summary.alerts))
        print_input_warnings(err_console, summary)
        print_summary(out_console, summary)
        found = demo_data.found_keys(alerts) if alerts is not None else frozenset()
        if found != data.expected:
            raise _fail(
                f"the scan found {len(found)} alert(s), the demo data holds "
                f"{len(data.expected)}: missed {len(data.expected - found)}, "
                f"extra {len(found - data.expected)}"
            )
        out_console.print(
            f"[green]ok[/]: exactly the {len(data.expected)} direct-syscall events "
            "planted in the demo data were found",
            highlight=False,
        )


def main() -> None:
    app(prog_name="callsweep")


if __name__ == "__main__":
    sys.exit(main())
