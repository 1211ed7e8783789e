"""What every benchmark script here needs around its measurements: logging, the digest of the
code measured, peak memory, writing the report, and the final verdict."""

from __future__ import annotations

import hashlib
import json
import resource
import sys
from datetime import datetime
from pathlib import Path

import callsweep


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def callsweep_fingerprint() -> str:
    """A digest of callsweep's installed files (Python sources, rules, the native module).

    The tree may be edited while a benchmark runs: timed runs use the code imported at the
    start, fresh processes (the memory probes) whatever is there later. Comparing the digest at
    the start and the end tells whether every number measured the same code.
    """
    package = Path(callsweep.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".toml", ".so", ".pyd"}:
            digest.update(str(path.relative_to(package)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def write_results(out: Path, name: str, markdown: str, raw: dict) -> Path:
    """`<out>/<name>-<timestamp>.md` and the raw numbers beside it as `.json`."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
    report = out / f"{name}-{stamp}.md"
    report.write_text(markdown)
    report.with_suffix(".json").write_text(json.dumps(raw, indent=2) + "\n")
    return report


def verdict(mismatches: list[str], code: tuple[str, str]) -> int:
    """Exit status: 1 when a contender gave a wrong answer, 2 when the code changed during the
    run (the numbers may mix two versions), else 0."""
    if mismatches:
        log("\n!!! MISMATCH !!! a contender gave a wrong answer:")
        for mismatch in mismatches:
            log(f"!!! {mismatch}")
        return 1
    if code[0] != code[1]:
        log("\n!!! callsweep's files changed during the run: the numbers may mix two versions")
        return 2
    return 0
