"""The `callsweep` command line: options, progress, exit codes. The work is done elsewhere."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from callsweep import demo as demo_data
from callsweep import synthetic
from callsweep.alerts import AlertWriter
from callsweep.benchmark import bench_report, runner
from callsweep.convert import convert as convert_inputs
from callsweep.engines import Engine, EngineError, make_engine
from callsweep.layout import ROW_GROUP_ROWS
from callsweep.report import (
    ConvertProgress,
    ScanProgress,
    alert_table,
    print_convert_summary,
    print_input_warnings,
    print_rule,
    print_rules,
    print_summary,
    summary_record,
)
from callsweep.rules.exceptions import load_exceptions
from callsweep.rules.model import RuleError, builtin_rules, find_rule, load_rules
from callsweep.scan import Scanner, ScanSummary
from callsweep.sources.json_shapes import SHAPES as JSON_SHAPES

# Exit statuses: 0 done; 1 bad usage of callsweep itself; 2 some input could not be read;
# 3 alerts were found and --fail-on-alert asked to say so.
EXIT_INPUT_FAILED = 2
EXIT_ALERTS = 3
# `callsweep bench`: an alternative (or callsweep) gave a different alert set.
EXIT_PARITY_FAILED = 4
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
JsonShapeOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Shape of NDJSON inputs, instead of detecting it per file: "
        + ", ".join(JSON_SHAPES)
        + ".",
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


def _check_json_shape(json_shape: str | None) -> None:
    if json_shape is not None and json_shape not in JSON_SHAPES:
        raise _fail(f"--format must be one of {', '.join(JSON_SHAPES)}, not {json_shape!r}")


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
        list[str] | None,
        typer.Option(
            help="Built-in rule id (or unique prefix), optionally @version (2dd480be@316), or a "
            "rule TOML file; repeat for several rules in one pass. Default: 2dd480be (v311).",
        ),
    ] = None,
    rules_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules", help="A folder of rule TOML files (walked recursively), all scanned at once."
        ),
    ] = None,
    exceptions: Annotated[
        list[Path] | None,
        typer.Option(
            "--exceptions",
            help="A file of rule exceptions, TOML or YAML (.yaml / .yml): Elastic's is / is "
            "one of / matches entries. Repeatable.",
        ),
    ] = None,
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
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Say for each alert which clauses of its rule held (column callsweep.explain: "
            "the first CallTrace frame that matched no exclusion, each field's value...); "
            "computed on alert rows only.",
        ),
    ] = False,
    summary_json: Annotated[
        Path | None,
        typer.Option(
            "--summary-json",
            help="Also write the run summary here as JSON (counts, alerts per rule and host, "
            "both modes' alert counts with --elastic-compat / --compare-elastic).",
        ),
    ] = None,
    elastic_compat: Annotated[
        bool,
        typer.Option(
            "--elastic-compat",
            help="Write the alerts Elasticsearch would raise: keyword values over 1,024 "
            "characters (ignore_above, e.g. long CallTraces) are not indexed and count as "
            "missing. The summary gives both counts and how they differ. Default: the query "
            "as written.",
        ),
    ] = False,
    compare_elastic: Annotated[
        bool,
        typer.Option(
            "--compare-elastic",
            help="Write the alerts of the query as written, and count in the summary those "
            "Elasticsearch would raise (see --elastic-compat).",
        ),
    ] = False,
    json_shape: JsonShapeOption = None,
) -> None:
    """Evaluate the rule over the inputs and report the alerts.

    Exit status: 0 done, 2 some input could not be read (the others were scanned),
    3 alerts found with --fail-on-alert.
    """
    try:
        chosen = load_rules(rule or [], rules_dir or [])
        items = [item for path in exceptions or [] for item in load_exceptions(path)]
    except RuleError as exc:
        raise _fail(str(exc)) from None
    _check_json_shape(json_shape)
    scanner = Scanner(
        chosen or None,
        _parse_time(since),
        _parse_time(until),
        exceptions=items,
        explain=explain,
        elastic_compat=elastic_compat,
        compare_modes=compare_elastic,
    )
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
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary_record(summary), indent=2) + "\n")
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
    json_shape: JsonShapeOption = None,
) -> None:
    """Convert EVTX and NDJSON files to Parquet (one file per input, mirroring the input tree).

    Damaged records and chunks are skipped, counted, and listed in `<output>.skipped.csv`.
    Exit status: 0 done; 2 some input could not be read at all (the others were converted).
    """
    _check_json_shape(json_shape)
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
            json_shape=json_shape,
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


@app.command()
def bench(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Your own Parquet (scan) and EVTX (convert) files (default: synthetic data)."
        ),
    ] = None,
    size: Annotated[
        str,
        typer.Option(help="The 1x synthetic data set: small, medium, large, or a row count."),
    ] = "small",
    out: Annotated[Path, typer.Option(help="Results (JSON, PNG) and the generated data.")] = Path(
        "bench-results"
    ),
    rounds: Annotated[int, typer.Option(help="A B rounds per alternative and size.")] = 3,
    scales: Annotated[
        str, typer.Option(help="Sizes measured, as multiples of --size (synthetic data only).")
    ] = "1,4,16",
    files: Annotated[int, typer.Option(help="Synthetic files per size.")] = 1,
    event10_share: Annotated[float, typer.Option(help="Share of rows that are event 10.")] = 1.0,
    other_codes: Annotated[
        str, typer.Option(help="Event ids of the other rows, picked evenly.")
    ] = ",".join(synthetic.OTHER_CODES),
    positive_rate: Annotated[
        float,
        typer.Option(help="Share of event-10 rows with a direct-syscall first frame."),
    ] = 0.005,
    call_trace_frames: Annotated[
        str, typer.Option(help="Fewest and most CallTrace frames, as LOW,HIGH.")
    ] = "5,15",
    hosts: Annotated[int, typer.Option(help="Distinct host names.")] = len(synthetic.HOSTS),
    time_span_hours: Annotated[
        float | None, typer.Option(help="Spread the rows over this many hours.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same data).")] = 7,
    slice_rows: Annotated[
        int, typer.Option(help="Rows the per-row Python contender is timed on (extrapolated).")
    ] = 20_000,
    memory: Annotated[
        bool, typer.Option(help="Peak RSS of each tool in a fresh process per size.")
    ] = True,
    convert: Annotated[
        bool, typer.Option(help="Also time EVTX conversion (synthetic EVTX of the 1x size).")
    ] = True,
) -> None:
    """Time callsweep against polars, DuckDB, pyarrow and plain Python on the same data, at
    growing sizes, and check that every tool raised exactly the same alerts."""
    try:
        scale_list = tuple(int(s) for s in scales.split(","))
        low, high = (int(n) for n in call_trace_frames.split(","))
        base_rows = runner.SIZES.get(size) or int(size.replace("_", ""))
        shape = None
        if not inputs:
            shape = synthetic.Shape(
                rows=base_rows,
                # Row groups as `callsweep convert` writes them (at most): memory must then stay
                # flat from one size to the next.
                chunk_rows=min(ROW_GROUP_ROWS, base_rows),
                event10_share=event10_share,
                syscall_share=positive_rate,
                seed=seed,
                hosts=hosts,
                time_span=timedelta(hours=time_span_hours) if time_span_hours else None,
                call_trace_frames=(low, high),
                other_codes=tuple(code.strip() for code in other_codes.split(",")),
            )
    except ValueError as exc:
        raise _fail(f"bad option value: {exc}") from None
    if rounds < 1 or files < 1 or slice_rows < 1 or base_rows < 1 or min(scale_list) < 1:
        raise _fail("--size, --rounds, --files, --scales and --slice-rows must be positive")
    for path in inputs or []:
        if path.suffix.lower() not in {".parquet", ".evtx"} or not path.is_file():
            raise _fail(f"{path}: bench takes Parquet files (scanned) and EVTX files (converted)")
    config = runner.BenchConfig(
        out=out,
        shape=shape,
        inputs=tuple(inputs or ()),
        files=files,
        scales=scale_list,
        rounds=rounds,
        slice_rows=slice_rows,
        memory=memory,
        convert=convert,
    )
    result = runner.run_bench(config, lambda line: err_console.print(line, highlight=False))
    for skipped in result.skipped:
        err_console.print(f"[yellow]skipped[/]: {skipped}", highlight=False)
    # The table has ten columns: wider than 80 even when stdout is a pipe or a log file.
    wide = Console(soft_wrap=True, width=max(out_console.width, 150))
    for size_result in result.sizes:
        wide.print(bench_report.size_table(size_result))
    scaling = bench_report.scaling_table(result)
    if scaling is not None:
        wide.print(scaling)
    if result.convert is not None:
        wide.print(bench_report.size_table(result.convert, "convert"))
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    written = [bench_report.write_json(result, out, stamp, sys.argv)]
    try:
        written += bench_report.write_charts(result, out, stamp)
    except ImportError:
        err_console.print(
            "[yellow]skipped[/]: PNG charts (matplotlib missing: pip install 'callsweep[bench]')"
        )
    for path in written:
        out_console.print(f"written: {path}", highlight=False)
    if result.code_before != result.code_after:
        err_console.print("[red]callsweep's files changed during the run[/]: numbers may mix two")
    if result.mismatches:
        for mismatch in result.mismatches:
            err_console.print(f"[bold red]parity failed[/]: {mismatch}", highlight=False)
        raise typer.Exit(EXIT_PARITY_FAILED)
    out_console.print("[green]parity ok[/]: every tool raised exactly callsweep's alerts")


def main() -> None:
    app(prog_name="callsweep")


if __name__ == "__main__":
    sys.exit(main())
