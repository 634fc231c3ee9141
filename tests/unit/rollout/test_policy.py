from dataclasses import replace

import pytest

from raymlops.errors import RolloutError
from raymlops.rollout.policy import (
    ArmEvidence,
    Evidence,
    Gates,
    Plan,
    RolloutState,
    Step,
    command,
    decide,
    failed_gates,
)

PLAN = Plan(steps=(Step(0.05, 60, 100), Step(0.25, 60, 100), Step(1.0, 30, 50)), deadline_s=600)
START = RolloutState("m", stable_version=1, canary_version=2, step_started=0.0, started=0.0)
HEALTHY = ArmEvidence(requests=1000, error_rate=0.0, latency_p99_ms=10.0, labelled=100, accuracy=0.9)


def evidence(**canary):
    return Evidence(stable=HEALTHY, canary=replace(ArmEvidence(requests=150, latency_p99_ms=11.0, labelled=50,
                                                               accuracy=0.9), **canary))


@pytest.mark.parametrize("name, state, ev, now, action, weight, phase, step", [
    ("enough evidence, gates pass → next step", START, evidence(), 61, "advance", 0.25, "running", 1),
    ("too early", START, evidence(), 30, "wait", 0.05, "running", 0),
    ("too few canary requests", START, evidence(requests=40), 61, "wait", 0.05, "running", 0),
    ("last step passes → promote", replace(START, step=2), evidence(), 31, "promote", 1.0, "promoted", 2),
    ("errors → rollback at once", START, evidence(error_rate=0.2), 5, "rollback", 0.0, "rolled_back", 0),
    ("slow canary → rollback", START, evidence(latency_p99_ms=40.0), 61, "rollback", 0.0, "rolled_back", 0),
    ("output drift → rollback", START, Evidence(HEALTHY, evidence().canary, canary_output_drift=True), 61,
     "rollback", 0.0, "rolled_back", 0),
    ("accuracy drop → rollback", START, evidence(accuracy=0.8), 61, "rollback", 0.0, "rolled_back", 0),
    ("accuracy drop on too few labels is not judged", START, evidence(accuracy=0.5, labelled=5), 61,
     "advance", 0.25, "running", 1),
    ("no canary traffic is never a pass", START, evidence(requests=0, error_rate=1.0), 100, "wait", 0.05,
     "running", 0),
    ("a handful of requests proves nothing", START, evidence(requests=5, error_rate=0.4), 100, "wait", 0.05,
     "running", 0),
    ("one slow request among too few for a p99 is not judged", START, evidence(requests=60, latency_p99_ms=400.0),
     61, "wait", 0.05, "running", 0),
    ("sub-millisecond latency noise is not a failure", START, evidence(latency_p99_ms=14.0), 61, "advance", 0.25,
     "running", 1),
    ("deadline without evidence → hold", START, evidence(requests=3), 601, "hold", 0.05, "held", 0),
    ("paused rollouts wait", replace(START, phase="paused"), evidence(error_rate=1.0), 61, "wait", 0.05, "paused", 0),
    ("finished rollouts stay finished", replace(START, phase="promoted"), evidence(), 61, "wait", 1.0, "promoted", 0),
])
def test_decisions(name, state, ev, now, action, weight, phase, step):
    decision = decide(PLAN, state, ev, now)
    assert (decision.action, decision.weight, decision.state.phase, decision.state.step) == \
        (action, weight, phase, step), name


def test_the_estimated_accuracy_gate_is_off_until_asked_and_needs_rows_on_both_arms():
    worse = Evidence(replace(HEALTHY, estimated_accuracy=0.9, estimated_rows=500),
                     replace(evidence().canary, estimated_accuracy=0.8, estimated_rows=300))
    assert failed_gates(Gates(), worse) == []
    gated = Gates(max_estimated_accuracy_drop=0.05)
    assert failed_gates(gated, worse) == ["estimated accuracy 0.8000 < stable 0.9000 − 0.05 (no labels)"]
    few = Evidence(worse.stable, replace(worse.canary, estimated_rows=50))
    assert failed_gates(gated, few) == []
    close = Evidence(worse.stable, replace(worse.canary, estimated_accuracy=0.87))
    assert failed_gates(gated, close) == []


def test_deadline_can_abort_instead():
    plan = replace(PLAN, on_deadline="abort")
    decision = decide(plan, START, evidence(requests=3), 601)
    assert decision.action == "abort" and decision.weight == 0.0 and "deadline" in decision.reasons[0]


def test_rollback_names_the_numbers_that_failed():
    decision = decide(PLAN, START, evidence(error_rate=0.5), 1)
    assert "error rate 0.5000 > stable 0.0000" in decision.reasons[0]
    assert decision.numbers["canary"]["error_rate"] == 0.5 and decision.state.reason == decision.reasons[0]


def test_advancing_restarts_the_step_clock():
    decision = decide(PLAN, START, evidence(), 61)
    assert decision.state.step_started == 61
    assert decide(PLAN, decision.state, evidence(), 100).action == "wait"


@pytest.mark.parametrize("name, phase, result_phase, action", [
    ("pause", "running", "paused", "wait"), ("resume", "paused", "running", "wait"),
    ("resume", "held", "running", "wait"), ("promote", "running", "promoted", "promote"),
    ("abort", "paused", "aborted", "abort"),
])
def test_commands(name, phase, result_phase, action):
    decision = command(PLAN, replace(START, phase=phase), name, 10)
    assert (decision.state.phase, decision.action) == (result_phase, action)


@pytest.mark.parametrize("name, phase", [("pause", "paused"), ("resume", "running"), ("abort", "promoted"),
                                         ("jump", "running")])
def test_commands_that_do_not_apply(name, phase):
    with pytest.raises(RolloutError):
        command(PLAN, replace(START, phase=phase), name, 10)


def test_plans_are_checked():
    with pytest.raises(ValueError):
        Plan(steps=())
    with pytest.raises(ValueError):
        Plan(steps=(Step(0.5), Step(0.25)))
    assert failed_gates(Gates(), evidence()) == []
