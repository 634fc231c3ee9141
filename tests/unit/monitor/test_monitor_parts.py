"""The DriftMonitor's pure parts: the window queue's dropping policy, drift-state restore from the
registry's events, the online detectors' lifecycle, status assembly, and retraining decisions."""

import os
import threading

import pyarrow as pa
import pytest

from raymlops.config import RetrainSettings
from raymlops.monitor.check_actor import checks_thread
from raymlops.monitor.checker import DriftStates
from raymlops.monitor.online import OnlineDetectors
from raymlops.monitor.status import assemble_status, reports_by_version
from raymlops.monitor.triggers import performance_report, retrain_overrides
from raymlops.monitor.window import Window, WindowQueue
from raymlops.types import Event


def window(version, rows):
    w = Window(version, 0.0)
    w.append(pa.table({"x": [1.0] * rows}))
    return w


def test_the_queue_drops_the_oldest_window_when_checks_fall_behind_and_counts_it():
    queue = WindowQueue(capacity=2)
    assert queue.put(window(1, 10)) == 0 and queue.put(window(2, 20)) == 0
    assert queue.put(window(3, 30)) == 10
    assert (queue.dropped_windows, queue.dropped_rows, len(queue)) == (1, 10, 2)
    assert [queue.take().version, queue.take().version, queue.take()] == [2, 3, None]


def event(id, kind, version, detector):
    return Event(id=id, model="m", version=version, kind=kind, time=0.0, actor="drift-monitor",
                 payload={"detector": detector})


def test_drift_state_comes_back_from_the_events_the_latest_winning():
    states = DriftStates()
    states.restore([event(1, "drift_detected", 1, "feature"), event(2, "drift_detected", 1, "mmd"),
                    event(3, "drift_cleared", 1, "feature"), event(4, "drift_detected", 2, "output"),
                    Event(id=5, model="m", version=None, kind="drift_detected", time=0.0, actor="x", payload={})])
    assert states.drifting(1) == ["mmd"] and states.drifting(2) == ["output"]


class Store:
    def __init__(self, saved=None, fail=None):
        self.saved, self.fail, self.builds = dict(saved or {}), fail, 0

    def load(self, version):
        return self.saved.get(version)

    def build(self, reference):
        self.builds += 1
        if self.fail:
            raise RuntimeError(self.fail)
        return f"calibrated on {reference}"

    def save(self, version, detector):
        self.saved[version] = detector


def detectors(store):
    return OnlineDetectors(store.load, store.build, store.save)


def test_a_version_calibrates_once_and_is_loaded_afterwards():
    store = Store()
    first = detectors(store)
    assert first.state_of(1) == "not started"
    assert first.obtain(1, "ref") == "calibrated on ref" and first.state_of(1) == "ready"
    assert first.calibration_s is not None
    again = detectors(store)
    assert again.obtain(1, "ref") == "calibrated on ref" and store.builds == 1


def test_a_snapshot_hands_back_running_detectors_and_a_failure_is_a_state_not_a_crash():
    online = detectors(Store(fail="no memory"))
    online.restore({"3": "running detector"})
    assert online.take_restored(3) == "running detector" and online.state_of(3) == "ready"
    assert online.take_restored(3) is None
    assert online.obtain(4, "ref") is None and online.state_of(4) == "failed: RuntimeError: no memory"


def test_the_status_groups_reports_by_version():
    reports = {"1/feature": {"drift": True}, "1/output": {"drift": False}, "2/feature": {"drift": False}}
    assert reports_by_version(reports)["1"] == {"feature": {"drift": True}, "output": {"drift": False}}
    status = assemble_status("m", [1, 2, 3], {1: ["feature"]}, reports, {2: 40}, {1: "ready"}, 0, {"rows": 5},
                             1.0, None, "log", None, {"enabled": False})
    assert status["versions"]["1"]["drifting"] == ["feature"] and status["versions"]["2"]["open_window_rows"] == 40
    assert status["versions"]["3"] == {"drifting": [], "reports": {}, "open_window_rows": 0,
                                       "online_detector": "not started"}


@pytest.mark.parametrize("accuracy, champion, fires", [
    ({"1": {"labelled": 50, "accuracy": 0.6}}, 1, True),
    ({"1": {"labelled": 50, "accuracy": 0.95}}, 1, False),
    ({"1": {"labelled": 5, "accuracy": 0.1}}, 1, False),
    ({"2": {"labelled": 50, "accuracy": 0.1}}, 1, False),
    ({"1": {"labelled": 50, "accuracy": 0.1}}, None, False),
])
def test_performance_drift_needs_enough_labels_on_the_champion(accuracy, champion, fires):
    settings = RetrainSettings(min_accuracy=0.8, min_labels=30)
    report = performance_report("m", champion, accuracy, settings, now=1.0)
    assert (report is not None) == fires
    if fires:
        assert report.drift and report.detector == "performance" and report.window_rows == 50


@pytest.mark.parametrize("entry, fires", [
    ({"labelled": 0, "accuracy": None, "estimated_accuracy": 0.7, "estimated_rows": 600}, True),
    ({"labelled": 0, "accuracy": None, "estimated_accuracy": 0.7, "estimated_rows": 100}, False),
    ({"labelled": 0, "accuracy": None, "estimated_accuracy": 0.9, "estimated_rows": 600}, False),
])
def test_an_estimated_accuracy_below_the_floor_retrains_without_labels(entry, fires):
    settings = RetrainSettings(min_estimated_accuracy=0.8, min_estimated_rows=500)
    report = performance_report("m", 1, {"1": entry}, settings, now=1.0)
    assert (report is not None) == fires
    if fires:
        assert report.backend == "estimate" and report.distances == {"accuracy": 0.7} and report.window_rows == 600
    assert performance_report("m", 1, {"1": entry}, RetrainSettings(), now=1.0) is None  # off unless set


def test_retraining_overrides_carry_the_lineage_and_the_labels():
    assert retrain_overrides("m", "drift", 3, 17, ["train.epochs=2"], "/labels") == [
        "model_name=m", "lineage.trigger=drift", "lineage.parent_version=3", "train.epochs=2",
        "lineage.drift_event_id=17", "data.extra_train=[/labels]"]
    assert retrain_overrides("m", "performance", 3, None, [], None)[-1] == "lineage.parent_version=3"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="per-thread niceness is Linux's")
def test_window_checks_run_in_one_thread_at_the_lowest_priority_and_the_rest_keeps_its_own():
    def priority():
        tid = threading.get_native_id()
        return os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(tid)

    before = priority()
    pool = checks_thread()
    try:
        assert pool.submit(priority).result() == (19, os.SCHED_IDLE) and pool._max_workers == 1
    finally:
        pool.shutdown()
    assert priority() == before and before[1] != os.SCHED_IDLE
