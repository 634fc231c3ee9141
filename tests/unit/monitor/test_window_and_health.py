import json

import numpy as np
import pytest

from raymlops.monitor.health import HealthStats, percentile
from raymlops.monitor.window import WindowSet


def batch(version, n, status=200, start=0.0, prediction="a", latency=1.0):
    return {"request_id": [f"r{i}" for i in range(n)], "time": [start + i for i in range(n)], "model": ["m"] * n,
            "version": [version] * n, "arm": ["stable"] * n, "latency_ms": [latency] * n, "status": [status] * n,
            "prediction": [prediction if status < 400 else None] * n, "confidence": [0.9] * n,
            "f.x": [float(i) for i in range(n)] if status < 400 else [None] * n}


def test_windows_fill_per_version_and_skip_rejected_rows():
    windows = WindowSet(size=5, min_samples=2, max_wait_s=10)
    assert windows.add(batch(1, 3), now=0) == []
    assert windows.add(batch(2, 4, status=422), now=0) == []
    full = windows.add(batch(1, 4), now=1)
    assert [(w.version, w.rows) for w in full] == [(1, 5)]
    assert full[0].columns["x"] == [0.0, 1.0, 2.0, 0.0, 1.0] and full[0].columns["__prediction__"] == ["a"] * 5
    assert windows.open[1].rows == 2 and 2 not in windows.open


def test_partial_windows_are_due_when_old_and_large_enough():
    windows = WindowSet(size=100, min_samples=3, max_wait_s=10)
    windows.add(batch(1, 2), now=0)
    windows.add(batch(2, 5), now=0)
    assert windows.due(now=5) == []
    assert [w.version for w in windows.due(now=11)] == [2]
    assert 1 in windows.open


def test_window_state_round_trips():
    windows = WindowSet(size=100)
    windows.add(batch(3, 7), now=0)
    again = WindowSet(size=100)
    again.restore(windows.state())
    assert again.open[3].rows == 7 and again.open[3].columns == windows.open[3].columns


def test_sampling_keeps_about_the_rate():
    windows = WindowSet(size=10**6, sample_rate=0.25)
    windows.add(batch(1, 4000), now=0)
    assert 850 <= windows.open[1].rows <= 1150


@pytest.mark.parametrize("values, q, expected", [([], 0.5, None), ([1.0], 0.99, 1.0),
                                                 ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0), (list(range(1, 101)), 0.99, 99)])
def test_percentile_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected


def test_health_counts_errors_latency_and_predictions_since_a_time():
    health = HealthStats()
    health.add(batch(1, 10, latency=2.0))
    health.add(batch(1, 5, status=500, start=100))
    health.add(batch(1, 5, status=422, start=100))
    health.add(batch(2, 4, prediction="b", start=50))
    stats = health.stats(1)
    assert stats.requests == 20 and stats.errors == 5 and stats.error_rate == 0.25
    assert stats.latency_p50_ms == 2.0 and stats.predictions == {"a": 10}
    recent = health.stats(1, since=100)
    assert recent.requests == 10 and recent.error_rate == 0.5 and recent.latency_p50_ms is None
    assert health.all()[2].predictions == {"b": 4}
    again = HealthStats()
    again.restore(json.loads(json.dumps(health.state())))  # as a snapshot stores it
    assert again.stats(1) == stats and again.stats(2) == health.stats(2)
    assert again.rows[1].columns()["first"].dtype == bool


def test_a_snapshot_of_health_rows_packs_numbers_and_still_reads_plain_lists():
    from raymlops.monitor.health import pack, unpack

    health = HealthStats()
    health.add(batch(1, 10, latency=2.5))
    saved = health.state()["columns"][1]
    assert set(saved["latency_ms"]) == {"dtype", "base64"} and saved["prediction"] == ["a"] * 10
    assert unpack(pack(np.array([1.5, np.nan, -2.0])), np.float64).tolist()[::2] == [1.5, -2.0]
    older = {"columns": {"1": {name: unpack(values, np.float64).tolist() if isinstance(values, dict) else values
                               for name, values in saved.items()}},
             "totals": {"1": 10}}
    again = HealthStats()
    again.restore(older)  # a snapshot written before columns were packed
    assert again.stats(1) == health.stats(1)
    with pytest.raises(ValueError, match="numbers and booleans"):
        unpack({"dtype": "|O", "base64": ""}, np.float64)


def test_only_the_split_arms_count_and_pinned_or_shadow_calls_are_kept_apart():
    health = HealthStats()
    health.add(batch(2, 4, latency=1.0))
    pinned = batch(2, 6, status=500, latency=900.0)
    pinned["arm"] = ["pinned"] * 6
    health.add(pinned)
    shadow = batch(2, 3, latency=900.0)
    shadow["arm"] = ["shadow"] * 3
    health.add(shadow)
    stats = health.stats(2)
    assert stats.requests == 4 and stats.errors == 0 and stats.latency_p99_ms == 1.0
    assert health.side == {"2/pinned": 6, "2/shadow": 3}


def test_requests_and_latency_count_each_request_once_however_many_rows():
    health = HealthStats()
    rows = batch(1, 10, latency=1.0)
    heavy = batch(1, 500, latency=300.0)
    heavy["request_id"] = ["heavy"] * 500
    health.add(rows)
    health.add(heavy)
    stats = health.stats(1)
    assert stats.requests == 11 and stats.latency_p50_ms == 1.0 and stats.predictions == {"a": 510}
