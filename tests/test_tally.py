"""The alert tallies (`callsweep.tally`) against polars' group_by on the values themselves."""

from __future__ import annotations

import random

import polars as pl
import pyarrow as pa
import pytest

from callsweep import _native
from callsweep.tally import KEYS, MISSING, alert_groups

IMAGES = [None, "C:\\Windows\\System32\\lsass.exe", "C:\\Users\\a\\x.exe", "short.exe"]


def reference(alerts: pl.DataFrame) -> list[tuple]:
    keys = [pl.col(k).fill_null(MISSING[k]) if k in MISSING else pl.col(k) for k in KEYS]
    return alerts.group_by(keys, maintain_order=True).len().rows()


def alerts(rows: int, seed: int, chunks: int = 1) -> pl.DataFrame:
    rng = random.Random(seed)
    frames = []
    for _ in range(chunks):
        # Each chunk decoded apart: equal long values in different buffers, under other views.
        frames.append(
            pl.DataFrame(
                {
                    "host.name": [
                        rng.choice([None, "host-a", "a-much-longer-host-name"]) for _ in range(rows)
                    ],
                    "process.executable": [rng.choice(IMAGES) for _ in range(rows)],
                    "winlog.event_data.TargetImage": [rng.choice(IMAGES) for _ in range(rows)],
                    "kibana.alert.rule.name": [
                        rng.choice(["Rule A", "Suspicious Process Access"]) for _ in range(rows)
                    ],
                    "kibana.alert.rule.version": [rng.choice(["311", "316"]) for _ in range(rows)],
                    "other": list(range(rows)),
                }
            )
        )
    return pl.concat(frames, rechunk=False)


@pytest.mark.parametrize(
    ("rows", "chunks", "seed"), [(0, 1, 0), (1, 1, 1), (500, 1, 2), (300, 4, 3)]
)
def test_groups_equal_those_of_the_values_in_first_seen_order(rows, chunks, seed):
    frame = alerts(rows, seed, chunks)
    got = [tuple(r) for r in alert_groups(frame).rows()]
    assert got == reference(frame)
    assert sum(r[-1] for r in got) == frame.height


def test_a_column_missing_everywhere_is_counted_as_missing():
    frame = alerts(50, 4).with_columns(pl.lit(None, pl.Null).alias("host.name"))
    got = [tuple(r) for r in alert_groups(frame).rows()]
    assert got == reference(frame)
    assert {r[0] for r in got} == {"(no host)"}


def test_native_tally_refuses_what_is_not_string_views():
    with pytest.raises(TypeError):
        _native.tally([pa.array([1, 2, 3])])
    with pytest.raises(ValueError, match="rows"):
        _native.tally([pa.array(["a", "b"], pa.string_view()), pa.array(["a"], pa.string_view())])
