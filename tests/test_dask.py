"""The Dask engine gives exactly the local engine's alerts: on a LocalCluster, when a worker dies
mid-run, and through the command line against `dask scheduler` / `dask worker` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from callsweep import synthetic
from callsweep.cli import app
from callsweep.convert import convert
from callsweep.engines import ANY_FREE_PORT, DaskEngine, LocalEngine
from callsweep.scan import Part, Scanner

distributed = pytest.importorskip("distributed")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KEY = ["log.file.path", "winlog.record_id", "@timestamp"]


def alerts_of(scanner: Scanner, paths: list[Path], engine, on_part=None) -> pl.DataFrame:
    frames: list[pl.DataFrame] = []
    summary = scanner.run(paths, on_alerts=frames.append, on_part=on_part, engine=engine)
    assert not summary.errors, summary.errors
    return pl.concat(frames) if frames else pl.DataFrame()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six Parquet files of 60,000 events in row groups of 10,000: 36 parts of 10,000 rows."""
    folder = tmp_path_factory.mktemp("generated")
    paths = []
    for seed in range(6):
        shape = synthetic.Shape(
            rows=60_000, event10_share=0.5, syscall_share=0.05, seed=seed, chunk_rows=10_000
        )
        paths.append(synthetic.write_parquet(folder / f"events-{seed}.parquet", shape))
    return paths


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=ANY_FREE_PORT
    ) as local:
        yield local


def small_parts() -> Scanner:
    scanner = Scanner()
    # Many tasks, so that several are under way at once.
    scanner.PART_ROWS = scanner.TASK_ROWS = 10_000
    return scanner


def test_local_cluster_gives_the_local_alerts_on_the_shared_data(cluster, tmp_path: Path):
    convert([DATA], tmp_path / "lake")
    inputs = [DATA, tmp_path / "lake"]
    local = alerts_of(Scanner(), inputs, LocalEngine())
    on_dask = alerts_of(Scanner(), inputs, DaskEngine(cluster.scheduler_address))
    # The 4 EVTX positives and the OTRF zip's 1 (NDJSON), read directly and after conversion.
    assert local.height == 2 * (4 + 1)
    assert on_dask.equals(local)  # same alerts, same order


def test_local_cluster_gives_the_local_alerts_on_generated_data(cluster, generated):
    local = alerts_of(small_parts(), generated, LocalEngine())
    on_dask = alerts_of(small_parts(), generated, DaskEngine(cluster.scheduler_address))
    expected = sum(pl.read_parquet(p)["expected_alert"].sum() for p in generated)
    assert local.height == expected > 0
    assert on_dask.equals(local)


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(cluster, generated):
    local = alerts_of(small_parts(), generated, LocalEngine())
    engine = DaskEngine(cluster.scheduler_address)
    client = engine.client
    pids = client.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker(part: Part) -> None:
        if killed:
            return
        busy = [worker for worker, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    on_dask = alerts_of(small_parts(), generated, engine, on_part=kill_a_busy_worker)
    assert killed, "no worker was busy when the first result came back"
    assert on_dask.equals(local)
    assert on_dask.select(KEY).is_unique().all()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cli_scan_on_a_cluster_started_from_the_command_line(tmp_path: Path, generated):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    scheduler = subprocess.Popen(
        [
            *dask,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-dashboard",
            "--dashboard-address",
            ANY_FREE_PORT,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            *dask,
            "worker",
            address,
            "--nworkers",
            "1",
            "--nthreads",
            "2",
            "--no-dashboard",
            "--dashboard-address",
            ANY_FREE_PORT,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        inputs = [str(p) for p in generated[:2]] + [str(DATA)]
        outputs = {}
        for engine in ("local", "dask"):
            out = tmp_path / f"{engine}.parquet"
            args = ["scan", *inputs, "-o", str(out), "--no-progress", "--engine", engine]
            if engine == "dask":
                args += ["--scheduler", address]
            started = time.perf_counter()
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.output
            assert time.perf_counter() - started < 120
            outputs[engine] = pl.read_parquet(out)
        assert outputs["local"].height > 4
        assert outputs["dask"].equals(outputs["local"])
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_scheduler_without_dask_engine_is_refused():
    result = CliRunner().invoke(app, ["scan", str(DATA), "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "--scheduler needs --engine dask" in result.output
