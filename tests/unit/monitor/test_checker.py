import numpy as np
import pyarrow as pa
import pytest

from raymlops.config import DetectorCadence, ShiftConfig, SynthConfig
from raymlops.data.synth import generate, synth_schema
from raymlops.monitor.checker import DriftStates, VersionChecker, VersionReference
from raymlops.monitor.window import Window

CFG = SynthConfig(rows=6000, seed=3)
SCHEMA = synth_schema(CFG)


def window(table, start, rows, prediction="0"):
    w = Window(version=1, started=0.0)
    rows_table = table.select(SCHEMA.feature_names).slice(start, rows)
    w.append(rows_table.append_column("__prediction__", pa.array([prediction] * rows)))
    return w


@pytest.fixture(scope="module")
def reference():
    table = generate(CFG)
    features = {n: table.column(n).to_pylist()[:2000] for n in SCHEMA.feature_names}
    predictions = ["0", "1"] * 1000
    return VersionReference(SCHEMA, features, predictions, {"backend": "scipy", "p_val": 0.05, "correction": "fdr"})


def cadence(**changes):
    return DetectorCadence(**changes).model_dump()


def test_feature_output_and_mmd_reports(reference):
    checker = VersionChecker("m", 1, reference, cadence(mmd={"every": 2, "n_permutations": 20, "reference_rows": 200, "min_interval_s": 0}))
    same = generate(CFG)
    first = checker.check(window(same, 2000, 200, prediction="0"))
    assert [r.detector for r in first] == ["feature", "output"]
    feature, output = first
    assert not feature.drift and set(feature.p_values) == set(SCHEMA.feature_names) and feature.backend == "scipy"
    assert output.drift, "every prediction is class 0 while the reference predicts half and half"
    second = checker.check(window(same, 2200, 200, prediction="1"))
    assert [r.detector for r in second] == ["feature", "output", "mmd"]
    shifted = generate(CFG.model_copy(update={"shift": ShiftConfig(features=[0, 1, 2], magnitude=1.0)}))
    checker.check(window(shifted, 2400, 200))
    reports = checker.check(window(shifted, 2600, 200))
    assert {r.detector: r.drift for r in reports}["feature"] and {r.detector: r.drift for r in reports}["mmd"]


def test_mmd_runs_no_sooner_than_its_interval_however_many_windows_arrive(reference, monkeypatch):
    import raymlops.monitor.checker as checker_module

    clock = [1000.0]
    monkeypatch.setattr(checker_module.time, "monotonic", lambda: clock[0])
    checker = VersionChecker("m", 1, reference, cadence(mmd={"every": 2, "n_permutations": 20, "reference_rows": 200,
                                                             "min_interval_s": 30}))
    same = generate(CFG)
    ran = []
    for index in range(8):  # 8 windows in 8 s: every=2 alone would test 4 times
        clock[0] += 1.0
        ran.append("mmd" in [r.detector for r in checker.check(window(same, 2000 + 100 * index, 100))])
    assert ran == [False, True, False, False, False, False, False, False]
    clock[0] += 30.0
    assert "mmd" in [r.detector for r in checker.check(window(same, 2000, 100))]


def test_online_detector_flags_an_abrupt_shift(reference):
    from raymlops.monitor.detectors import build_online

    checker = VersionChecker("m", 1, reference, cadence())
    checker.online = build_online("mmd", checker.reference, 300, ert=50, window_size=10, n_bootstraps=300)
    rng = np.random.default_rng(0)
    calm = checker.feed_online(window(generate(CFG), 2000, 30), 1.0, "mmd", rng)
    assert calm is not None and calm.detector == "online" and calm.window_rows == 30
    shifted = generate(CFG.model_copy(update={"shift": ShiftConfig(features=list(range(10)), magnitude=2.0)}))
    report = checker.feed_online(window(shifted, 2000, 60), 1.0, "mmd", rng)
    assert report.drift


def test_drift_state_flips_only_on_change():
    from raymlops.types import DriftReport

    def report(drift, detector="feature", version=1):
        return DriftReport("m", version, detector, "scipy", {}, {}, 0.05, drift, 100, 0.0)

    states = DriftStates()
    assert states.update(report(False)) is False
    assert states.update(report(True)) is True
    assert states.update(report(True)) is False
    assert states.update(report(True, "mmd")) is True
    assert states.drifting(1) == ["feature", "mmd"] and states.drifting(2) == []
    assert states.update(report(False)) is True and states.drifting(1) == ["mmd"]


def test_a_check_runner_gives_the_verdicts_of_the_checker_it_was_shipped(reference):
    """``checks: actor``: the runner tests windows with a pickled copy of the shard's checker and
    reaches the same reports, window after window (MMD's cadence and the class test's seeded draws included)."""
    import pickle

    from raymlops.monitor.check_actor import CheckRunner

    settings = cadence(mmd={"every": 2, "n_permutations": 20, "reference_rows": 200, "min_interval_s": 0})
    here, shipped = VersionChecker("m", 1, reference, settings), VersionChecker("m", 1, reference, settings)
    runner = CheckRunner.__new__(CheckRunner)  # the actor's methods, without lowering this process's priority
    runner.checkers = {}
    shifted = generate(CFG.model_copy(update={"shift": ShiftConfig(features=[0, 1, 2], magnitude=1.0)}))
    for i, data in enumerate([generate(CFG), generate(CFG), shifted, shifted]):
        w = window(data, 2000 + 200 * i, 200, prediction=str(i % 2))
        expected = here.check(w)
        reports, _, count = runner.check(1, pickle.loads(pickle.dumps(shipped)) if i == 0 else None, w.table,
                                         [1] if i == 0 else None)
        assert [r.detector for r in reports] == [r.detector for r in expected]
        exact = [(r.detector, r.drift, r.p_values) for r in reports if r.detector != "mmd"]  # MMD permutes at random
        assert exact == [(r.detector, r.drift, r.p_values) for r in expected if r.detector != "mmd"]
        assert count == i + 1
    assert any(r.drift for r in reports)
    runner.check(2, pickle.loads(pickle.dumps(shipped)), w.table, [2])
    assert set(runner.checkers) == {2}, "a version the shard no longer checks is dropped"


def test_lower_priority_lowers_every_thread_of_the_process():
    import subprocess
    import sys

    code = ("import os, threading, time\n"
            "from raymlops.monitor.check_actor import lower_priority\n"
            "stop = threading.Event(); threads = [threading.Thread(target=stop.wait) for _ in range(3)]\n"
            "[t.start() for t in threads]\n"
            "lower_priority(19)\n"
            "tids = [int(t) for t in os.listdir('/proc/self/task')]\n"
            "print(sorted({(os.getpriority(os.PRIO_PROCESS, t), os.sched_getscheduler(t) == os.SCHED_IDLE) "
            "for t in tids}))\n"
            "stop.set()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[(19, True)]", out.stderr
