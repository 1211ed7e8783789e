"""Shared fixtures: writing small event frames to Parquet in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

WriteParquet = Callable[..., str]


@pytest.fixture
def write_parquet(tmp_path: Path) -> WriteParquet:
    """`write_parquet(frame, name="events.parquet") -> str`: the frame written under tmp_path."""

    def write(frame: pl.DataFrame, name: str = "events.parquet") -> str:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
        return str(path)

    return write
