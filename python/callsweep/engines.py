"""Where tasks run: threads of this process (`local`) or a Dask cluster (`dask`).

Both run the same function (`tasks.scan_partition`, `convert.convert_partition`) on the same
tasks and hand the results back in task order, with a bounded number of tasks under way, so
that alerts stream out in a deterministic order and memory holds a few tasks' results, never
all of them. Nothing else differs between them.

On Dask, a task whose worker dies is run again on another worker by the scheduler, and its
result is taken once from its future: no alert is lost or doubled. A task never raises for bad
input (it reports it in its result), so Dask's own retries only cover unexpected failures.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

import polars as pl

ENGINES = ("local", "dask")
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
# For a LocalCluster's dashboard: any free port. `dashboard_address=None` still binds the
# scheduler's HTTP server (its /metrics routes) to 8787, so a second cluster on the same machine
# (another user's, another run's) would fail to start.
ANY_FREE_PORT = ":0"

T = TypeVar("T")
R = TypeVar("R")


class Engine(Protocol):
    name: str

    def map(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        """`(task, fn(task))` in the order of `tasks`; `fn` is a module-level function (or a
        `functools.partial` of one) so that it pickles by reference."""
        ...

    def close(self) -> None: ...


class LocalEngine:
    """Tasks on `workers` threads of this process (one per core by default): polars decodes a
    single Parquet scan on about one core, the Rust kernels release the GIL."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or pl.thread_pool_size()

    def map(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="callsweep")
        try:
            yield from _in_order(pool, fn, tasks, 2 * self.workers)
        finally:
            # On Ctrl-C (or a failing consumer) do not start the tasks still queued.
            pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        pass


class EngineError(RuntimeError):
    """The engine cannot start: Dask missing, or no scheduler at the address given."""


class DaskEngine:
    """Tasks on a Dask cluster: the one at `scheduler` (or `$DASK_SCHEDULER_ADDRESS`), else a
    `LocalCluster` sized to this machine, one single-threaded worker process per core.

    Workers must be able to import callsweep and read the inputs by the paths given (a shared
    file system, or object storage each worker reaches with its own credentials)."""

    name = "dask"

    def __init__(self, scheduler: str | None = None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise EngineError(
                "the dask engine needs dask and distributed: pip install 'callsweep[dask]'"
            ) from exc
        address = scheduler or os.environ.get(SCHEDULER_ENV)
        self._cluster = None
        try:
            if address:
                self.client = Client(address, timeout="10s")
            else:
                cores = os.cpu_count() or 1
                # One thread per worker, and polars told so before it starts in the worker:
                # otherwise every worker would start a thread per core (cores x cores threads).
                self._cluster = LocalCluster(
                    n_workers=cores,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=ANY_FREE_PORT,
                    env={"POLARS_MAX_THREADS": "1"},
                )
                self.client = Client(self._cluster)
        except OSError as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise EngineError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        self.address = self.client.scheduler.address

    @property
    def threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[T], R], tasks: Iterable[T]) -> Iterator[tuple[T, R]]:
        run = uuid.uuid4().hex[:8]
        pending: deque[tuple[T, object]] = deque()
        ahead = 2 * self.threads
        try:
            for i, task in enumerate(tasks):
                # A unique key per task: Dask must not merge two tasks that look alike.
                future = self.client.submit(fn, task, key=f"callsweep-{run}-{i}", retries=2)
                pending.append((task, future))
                if len(pending) >= ahead:
                    yield _result(*pending.popleft())
            while pending:
                yield _result(*pending.popleft())
        finally:
            for _, future in pending:
                future.cancel()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _result(task: T, future: object) -> tuple[T, R]:
    return task, future.result()  # type: ignore[attr-defined]


def make_engine(name: str, scheduler: str | None = None) -> Engine:
    """The engine called `name`; a scheduler address only means something to `dask`."""
    if name == "local":
        if scheduler:
            raise EngineError("--scheduler needs --engine dask")
        return LocalEngine()
    if name == "dask":
        return DaskEngine(scheduler)
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


def _in_order(
    pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T], ahead: int
) -> Iterator[tuple[T, R]]:
    """`(item, fn(item))` in the order of `items`, with at most `ahead` calls under way, so the
    work list is read lazily and memory holds a few results, not all of them."""
    pending: deque[tuple[T, Future[R]]] = deque()
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) >= ahead:
            first, future = pending.popleft()
            yield first, future.result()
    while pending:
        first, future = pending.popleft()
        yield first, future.result()
