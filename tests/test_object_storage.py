"""Inputs on object storage (s3://), against a real S3 protocol server (moto's, on loopback):
scanned and converted as local files are, on the local and the Dask engine, with each process
reading with its own credentials and none in a task."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import callsweep
from callsweep import synthetic
from callsweep.cli import EXIT_INPUT_FAILED, app
from callsweep.convert import convert
from callsweep.engines import ANY_FREE_PORT, DaskEngine, LocalEngine
from callsweep.scan import Scanner
from callsweep.sources import discover, storage

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED = json.loads((DATA / "expected.json").read_text())["evtx"] if DATA.exists() else {}
BUCKET = "lake"
SECRET = "s3cr3t-never-in-a-task"
KEY = ["log.file.path", "winlog.record_id"]

pytestmark = pytest.mark.skipif(
    not DATA.exists(), reason="../shared/data is not beside the project"
)


@pytest.fixture(scope="module")
def credentials() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback, and the environment that reaches it (this process's own
    credentials, as any machine of a cluster would have its own)."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "callsweep-test",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ALLOW_HTTP": "true",  # polars' object store refuses plain http otherwise
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        storage._filesystem.cache_clear()  # filesystems made before this endpoint existed
        try:
            yield env
        finally:
            storage._filesystem.cache_clear()
            server.stop()


@pytest.fixture(scope="module")
def lake(credentials, tmp_path_factory) -> Path:
    """The same tree locally and in the bucket: the shared EVTX files under `evtx/`, their
    conversion under `parquet/` (whose events name the shared files), generated Parquet under
    `generated/`, a stray text file."""
    local = tmp_path_factory.mktemp("lake")
    shutil.copytree(DATA, local / "evtx", ignore=shutil.ignore_patterns("*.zip", "*.json", "*.md"))
    summary = convert([DATA], local / "parquet")
    assert summary.errors == []
    for i in range(3):
        shape = synthetic.Shape(rows=4_000, seed=i)
        synthetic.write_parquet(local / "generated" / f"part-{i}.parquet", shape)
    (local / "generated" / "README.txt").write_text("not an input")
    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    s3.create_bucket(Bucket=BUCKET)
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        s3.upload_file(str(path), BUCKET, path.relative_to(local).as_posix())
    return local


def url(relative: str) -> str:
    return f"s3://{BUCKET}/{relative}"


def as_urls(alerts: pl.DataFrame, local: Path) -> pl.DataFrame:
    """Alerts of the local tree with their provenance written as the bucket's URLs."""
    return alerts.with_columns(
        pl.col("log.file.path").str.replace(str(local) + "/", f"s3://{BUCKET}/", literal=True)
    )


def test_a_prefix_is_walked_like_a_directory(lake: Path):
    found = discover([url("")])
    assert found.errors == []
    local = discover([lake])
    # NDJSON is read from local paths only (for now): on the bucket those files are passed over.
    read = [f for f in local.files if f.format != "ndjson"]
    unread = Counter(f.path.suffix.lower() for f in local.files if f.format == "ndjson")
    assert [f.location for f in found.files] == [
        url(f.path.relative_to(lake).as_posix()) for f in read
    ]
    assert [f.size for f in found.files] == [f.size for f in read]
    assert found.passed_over == local.passed_over + unread


def test_scanning_the_bucket_gives_the_alerts_of_the_local_tree(lake: Path):
    remote = callsweep.scan(url(""))
    local = callsweep.scan(lake)
    assert remote.height == local.height > 2 * sum(map(len, EXPECTED.values()))
    assert remote.equals(as_urls(local, lake))


def test_evtx_objects_alert_on_exactly_the_expected_records(lake: Path):
    alerts = callsweep.scan(url("evtx/"))
    got: dict[str, list[int]] = {}
    for path, record in alerts.select(KEY).iter_rows():
        got.setdefault(path.removeprefix(url("evtx/")), []).append(record)
    assert {name: sorted(ids) for name, ids in got.items()} == {
        name: ids for name, ids in EXPECTED.items() if ids
    }


def test_globs_match_within_and_across_key_segments(lake: Path):
    found = discover([url("**/*.parquet")])
    assert found.errors == []
    assert {f.location for f in found.files} == {
        url(p.relative_to(lake).as_posix()) for p in lake.rglob("*.parquet")
    }
    one_level = discover([url("generated/part-?.parquet")])
    assert [f.location for f in one_level.files] == [
        url(f"generated/part-{i}.parquet") for i in range(3)
    ]
    assert discover([url("*.parquet")]).files == []  # `*` does not cross a `/`


def test_missing_objects_and_other_schemes_are_errors_naming_them(lake: Path):
    found = discover(
        [url("nothing-here.parquet"), url("nothing/*.parquet"), "gs://bucket/x.parquet"]
    )
    messages = {e.path: e.message for e in found.errors}
    assert messages[url("nothing-here.parquet")] == "no such object or prefix"
    assert messages[url("nothing/*.parquet")] == "no object matches this pattern"
    assert "gs:// is not a storage callsweep reads" in messages["gs://bucket/x.parquet"]
    not_an_input = discover([url("generated/README.txt")])
    assert "not a format callsweep reads" in not_an_input.errors[0].message


def test_cli_scans_the_bucket_and_reports_a_missing_object(lake: Path, tmp_path: Path):
    out = tmp_path / "alerts.parquet"
    args = ["scan", url("generated/"), url("missing.parquet"), "-o", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == EXIT_INPUT_FAILED, result.output
    assert url("missing.parquet") in result.output
    alerts = pl.read_parquet(out)
    expected = sum(
        pl.read_parquet(p)["expected_alert"].sum() for p in (lake / "generated").glob("*.parquet")
    )
    assert alerts.height == expected > 0
    assert alerts["log.file.path"].str.starts_with(url("generated/")).all()


def test_converting_objects_mirrors_the_prefix_and_skips_unchanged_ones(lake: Path, tmp_path):
    summary = convert([url("evtx/")], tmp_path / "out")
    assert summary.errors == []
    assert summary.count("converted") == len(EXPECTED)
    for name, ids in EXPECTED.items():
        out = tmp_path / "out" / Path(name).with_suffix(".parquet")
        alerts = callsweep.scan(out)
        assert sorted(alerts["winlog.record_id"].to_list()) == ids, name
        # Provenance is the object the events came from.
        assert set(alerts["log.file.path"]) <= {url(f"evtx/{name}")}
    assert summary.records == convert([lake / "evtx"], tmp_path / "local").records
    again = convert([url("evtx/")], tmp_path / "out")
    assert again.count("unchanged") == len(EXPECTED)


class RecordingEngine(LocalEngine):
    """The local engine, keeping every task as it would be sent to another process."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []

    def map(self, fn, tasks):
        def recorded():
            for task in tasks:
                self.sent.append(pickle.dumps((fn, task)))
                yield task

        return super().map(fn, recorded())


def test_no_credential_travels_in_a_task(lake: Path):
    engine = RecordingEngine()
    summary = Scanner().run([url("")], engine=engine)
    assert summary.errors == [] and summary.alerts > 0
    assert engine.sent
    assert not any(SECRET.encode() in task for task in engine.sent)
    assert all(url("").encode() in task for task in engine.sent)


def test_dask_workers_read_the_bucket_with_their_own_credentials(lake: Path, credentials):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=ANY_FREE_PORT,
        env={**credentials, "POLARS_MAX_THREADS": "1"},
    ) as cluster:
        frames: list[pl.DataFrame] = []
        engine = DaskEngine(cluster.scheduler_address)
        summary = Scanner().run([url("")], on_alerts=frames.append, engine=engine)
    assert summary.errors == []
    on_dask = pl.concat(frames)
    assert on_dask.equals(callsweep.scan(url("")))
