"""Sharding one model's monitor: rows by request id, merged verdicts, merged evidence."""

import numpy as np
import pyarrow as pa

from raymlops.monitor.shards import MergedVerdicts, merged_health, merged_outcomes, shard_of, shard_summary, split_batch
from raymlops.types import DriftReport


def report(drift: bool, version: int = 1, detector: str = "feature") -> DriftReport:
    return DriftReport(model="m", version=version, detector=detector, backend="alibi", p_values={"x": 0.5},
                       distances={"x": 0.1}, threshold=0.01, drift=drift, window_rows=100, time=0.0)


def test_a_request_id_has_one_shard_in_every_process():
    ids = [f"req-{i}" for i in range(1000)]
    owners = shard_of(ids, 4)
    assert owners.tolist() == shard_of(list(ids), 4).tolist()  # deterministic (crc32, not Python's hash)
    assert owners.tolist()[:3] == [int(x) for x in shard_of(ids[:3], 4)]
    counts = np.bincount(owners, minlength=4)
    assert counts.min() > 200, counts  # spread evenly
    assert set(shard_of(ids, 1).tolist()) == {0}


def test_split_batch_keeps_every_row_once_in_its_order_and_a_request_together():
    ids = ["a", "a", "b", "c", "c", "c", "d"]
    batch = pa.record_batch({"request_id": ids, "n": list(range(7))})
    parts = split_batch(batch, 3)
    assert sorted(n for _, part in parts for n in part.column("n").to_pylist()) == list(range(7))
    for shard, part in parts:
        assert part.column("n").to_pylist() == sorted(part.column("n").to_pylist())
        assert set(shard_of(part.column("request_id").to_pylist(), 3).tolist()) == {shard}
    assert split_batch(batch, 1) == [(0, batch)]
    assert split_batch(pa.record_batch({"n": [1]}), 3)[0][0] == 0  # no request ids: shard 0 takes it


def test_the_merged_verdict_is_drift_while_any_shards_latest_report_says_drift():
    verdicts = MergedVerdicts()
    assert verdicts.merge(report(False), 0).drift is False
    assert verdicts.merge(report(True), 1).drift is True
    assert verdicts.merge(report(False), 0).drift is True  # shard 1 still says drift
    assert verdicts.merge(report(False), 1).drift is False  # both clear now
    assert verdicts.merge(report(True, detector="output"), 0).drift is True  # per (version, detector)
    assert verdicts.merge(report(False, version=2), 1).drift is False


def test_after_a_restart_a_drifting_key_clears_only_when_every_shard_said_clear():
    verdicts = MergedVerdicts()
    verdicts.seed(["1/feature"], 2)
    assert verdicts.merge(report(False), 0).drift is True
    assert verdicts.merge(report(False), 1).drift is False


def health_state(times, statuses, latencies, predictions):
    n = len(times)
    return {"columns": {1: {"time": times, "status": statuses, "latency_ms": latencies, "prediction": predictions,
                            "confidence": [0.9] * n, "first": [True] * n}},
            "totals": {1: n}, "side": {"1/pinned": 2}}


def test_health_of_every_shard_is_merged_before_percentiles_are_taken():
    a = health_state([1.0, 2.0], [200, 200], [1.0, 2.0], ["x", "y"])
    b = health_state([3.0, 4.0, 5.0], [200, 500, 200], [100.0, 3.0, 4.0], ["x", "x", "y"])
    merged = merged_health([a, b], max_rows=1000)
    stats = merged.stats(1)
    assert stats.requests == 5 and stats.errors == 1 and stats.predictions == {"x": 2, "y": 2}
    assert stats.latency_p99_ms > 90  # the slow request of shard b counts
    assert merged.side["1/pinned"] == 4 and merged.totals[1] == 5
    assert merged.stats(1, since=3.5).requests == 2


def test_labelled_outcomes_of_every_shard_are_merged_in_time_order_and_bounded():
    merged = merged_outcomes([{1: [(2.0, True), (4.0, False)]}, {"1": [[1.0, True]], 2: [(3.0, 0.5)]}], window=2)
    assert list(merged[1]) == [(2.0, True), (4.0, False)] and list(merged[2]) == [(3.0, 0.5)]


def test_a_shard_that_does_not_answer_is_named_in_the_status():
    assert shard_summary(1, None, "GetTimeoutError") == {"shard": 1, "reachable": False, "error": "GetTimeoutError"}
    seen = shard_summary(0, {"counters": {"rows_ingested": 5}, "last_error": None})
    assert seen["rows_ingested"] == 5 and seen["windows_dropped"] == 0 and seen["reachable"]
