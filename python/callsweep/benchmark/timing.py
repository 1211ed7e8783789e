"""Alternating rounds (A B C ... A B C ...) and the statistics quoted from them."""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Timings:
    """Every timed run of one contender, with the answer each run gave."""

    name: str
    rows: int  # rows one run processes
    # A contender timed on a slice reports times scaled by this factor to the full input.
    scale: float = 1.0
    seconds: list[float] = field(default_factory=list)
    # CPU time of the whole process (every thread) per run: less sensitive than wall time to
    # other work on a shared machine, and it shows how much of the time is parallel.
    cpu_seconds: list[float] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    @property
    def extrapolated(self) -> bool:
        return self.scale != 1.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) * self.scale

    @property
    def fastest(self) -> float:
        return min(self.seconds) * self.scale

    @property
    def slowest(self) -> float:
        return max(self.seconds) * self.scale

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds) * self.scale

    @property
    def rows_per_second(self) -> float:
        return self.rows * self.scale / self.median

    def as_json(self) -> dict:
        return {
            "rows_per_run": self.rows,
            "scale_to_full_input": self.scale,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "answers": self.answers,
        }


def _process_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_once(run: Callable[[], int]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and the answer of one run."""
    # Collect the previous contender's garbage first, so it is not collected on this one's clock.
    gc.collect()
    cpu_start = _process_cpu_seconds()
    start = time.perf_counter()
    answer = run()
    return time.perf_counter() - start, _process_cpu_seconds() - cpu_start, answer


def alternate(runs: dict[str, Callable[[], int]], timings: dict[str, Timings], rounds: int) -> None:
    """Runs every contender once per round, in the same order each round; records into
    `timings` (keyed like `runs`). Progress goes to stderr."""
    for round_no in range(1, rounds + 1):
        for name, run in runs.items():
            seconds, cpu_seconds, answer = time_once(run)
            timings[name].seconds.append(seconds)
            timings[name].cpu_seconds.append(cpu_seconds)
            timings[name].answers.append(answer)
            print(
                f"  round {round_no}/{rounds}  {name:<28} {seconds:8.3f} s  answer {answer:,}",
                file=sys.stderr,
                flush=True,
            )
