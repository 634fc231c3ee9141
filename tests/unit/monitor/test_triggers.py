from raymlops.monitor.triggers import RetrainTrigger
from raymlops.types import DriftReport

DAY = 86400.0


def report(drift, detector="feature", version=1):
    return DriftReport("m", version, detector, "scipy", {}, {}, 0.05, drift, 100, 0.0)


def test_fires_on_k_of_n_of_the_counted_detectors_of_the_champion():
    trigger = RetrainTrigger(k=2, n=3, cooldown_s=0)
    assert trigger.observe(report(True), champion=1, now=0) is None
    assert trigger.observe(report(True, detector="output"), champion=1, now=1) is None  # not counted
    assert trigger.observe(report(True, version=2), champion=1, now=2) is None  # not the champion
    assert trigger.observe(report(False), champion=1, now=3) is None
    why = trigger.observe(report(True), champion=1, now=4)
    assert why == "2 of the last 3 feature/mmd checks of v1 drifted"


def test_one_job_in_flight_cooldown_and_daily_budget():
    trigger = RetrainTrigger(k=1, n=1, cooldown_s=100, max_per_day=2)
    assert trigger.observe(report(True), 1, now=0)
    trigger.fired("job-1", now=0)
    assert trigger.observe(report(True), 1, now=500) is None  # in flight
    trigger.finished()
    assert trigger.observe(report(True), 1, now=50) is None  # cooldown
    assert trigger.observe(report(True), 1, now=150)
    trigger.fired("job-2", now=150)
    trigger.finished()
    assert trigger.observe(report(True), 1, now=1000) is None  # two today already
    assert trigger.observe(report(True), 1, now=DAY + 10)  # a new UTC day


def test_a_single_false_alarm_does_not_fire():
    trigger = RetrainTrigger(k=2, n=3, cooldown_s=0)
    fired = [trigger.observe(report(d), 1, now=i) for i, d in enumerate([True, False, False, True, False, False])]
    assert not any(fired)


def test_state_round_trips():
    trigger = RetrainTrigger(k=2, n=3)
    trigger.observe(report(True), 1, now=0)
    trigger.fired("job", now=5)
    again = RetrainTrigger(k=2, n=3)
    again.restore(trigger.state())
    assert again.state() == trigger.state()


def test_performance_reports_count_when_asked():
    trigger = RetrainTrigger(detectors=("feature",), k=1, n=1, cooldown_s=0)
    assert trigger.observe(report(True, detector="performance"), 1, now=0) is None
    assert trigger.observe(report(True, detector="performance"), 1, now=1, counted=True)
