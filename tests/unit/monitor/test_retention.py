"""Retention: old events, old prediction-log days and idle versions' state go; lineage stays."""

import time

from raymlops.config import RegistryConfig
from raymlops.monitor.retention import idle_versions, prune_prediction_log
from raymlops.monitor.storage import PredictionLog
from raymlops.registry import Registry

DAY = 86400.0


def test_idle_versions_are_those_neither_live_nor_seen_lately():
    seen = {1: 1000.0, 2: 100.0, 3: 100.0}
    assert idle_versions({1, 2, 3, 4}, seen, live={3}, now=1000.0, idle_s=500.0) == [2, 4]


def test_old_days_of_the_prediction_log_are_deleted(tmp_path):
    now = time.time()
    log = PredictionLog(str(tmp_path), "m")
    for age_days in (0, 40):
        log.add({"request_id": ["a"], "time": [now - age_days * DAY], "version": [1], "arm": ["stable"],
                 "status": [200], "prediction": ["x"]})
    assert log.flush() == 2
    assert prune_prediction_log(str(tmp_path), "m", 30 * DAY, now) == 1
    days = sorted(p.name for p in (tmp_path / "model=m" / "version=1").iterdir())
    assert len(days) == 1 and days[0] == "date=" + time.strftime("%Y-%m-%d", time.gmtime(now))


def test_a_failed_log_write_keeps_its_rows_for_the_next_one(tmp_path, monkeypatch):
    log = PredictionLog(str(tmp_path), "m", max_rows=3)
    row = {"request_id": ["a"], "time": [time.time()], "version": [1], "arm": ["stable"], "status": [200],
           "prediction": ["x"]}
    log.add(row)
    taken = log.take()
    log.add(row)  # arrives while the write runs
    log.give_back(taken)  # the write failed
    assert log.rows == 2 and log.dropped == 0
    for _ in range(3):
        log.add(row)
    assert log.rows == 3 and log.dropped == 2  # bounded while storage is down, the oldest dropped and counted
    assert log.flush() == 3 and log.rows == 0


def test_old_events_are_pruned_but_lineage_events_stay(tmp_path):
    registry = Registry.from_config(RegistryConfig(database_url=f"sqlite:///{tmp_path}/r.db",
                                                   artifact_root=str(tmp_path / "a")))
    registry.add_event("m", "traffic_changed", payload={})
    registry.add_event("m", "drift_detected", 1, {})
    time.sleep(0.05)
    registry.add_event("m", "traffic_changed", payload={"recent": True})
    assert registry.prune_events("m", older_than_s=0.04) == 1
    assert [e.kind for e in registry.events("m")] == ["drift_detected", "traffic_changed"]
    registry.close()
