"""The rollout's pure lifecycle around decide(): starting, operator rollbacks before and after
promotion, the retire window, the decision → traffic and alias mapping, and reading the
registry's retraining events."""

from dataclasses import replace

import pytest

from raymlops.config import RolloutConfig
from raymlops.errors import RolloutError
from raymlops.rollout.evidence import evidence_of, plan_of, predictions_differ
from raymlops.rollout.policy import (
    RETIRE_TRAFFIC,
    Decision,
    Plan,
    Retirement,
    RolloutState,
    Step,
    alias_moves,
    retirement_after,
    retrained_versions,
    rollback_after_promotion,
    rollback_now,
    start,
    traffic_for,
)
from raymlops.types import Event

PLAN = Plan(steps=(Step(0.1, 60, 100), Step(1.0, 60, 100)))
RUNNING = RolloutState("m", stable_version=1, canary_version=2, step_started=0.0, started=0.0)
PROMOTED = replace(RUNNING, phase="promoted", finished=50.0)


@pytest.mark.parametrize("current, champion, candidate, problem", [
    (RUNNING, 1, 3, "already running"),
    (None, None, 3, "no `champion`"),
    (None, 1, None, "no `candidate`"),
    (None, 2, 2, "already the champion"),
])
def test_a_rollout_that_cannot_start_says_why(current, champion, candidate, problem):
    with pytest.raises(RolloutError, match=problem):
        start(PLAN, current, "m", champion, candidate, 0.0)


def test_a_start_puts_the_candidate_on_the_first_step_and_a_finished_rollout_allows_another():
    decision = start(PLAN, replace(RUNNING, phase="rolled_back"), "m", 1, 3, 5.0)
    assert (decision.action, decision.weight, decision.state.canary_version, decision.state.step_started) == \
        ("start", 0.1, 3, 5.0)
    assert traffic_for(decision) == {"stable_version": 1, "canary_version": 3, "canary_weight": 0.1}


def test_a_promotion_keeps_the_old_champion_until_the_window_ends():
    promote = Decision("promote", PROMOTED, 1.0)
    retirement = retirement_after(promote, rollback_window_s=300, now=50.0)
    assert retirement == Retirement(version=1, at=350.0)
    assert not retirement.due(349.0) and retirement.due(350.0)
    assert retirement_after(Decision("advance", RUNNING, 0.5), 300, 0.0) is None
    assert traffic_for(promote) == {"stable_version": 2, "canary_version": 1, "canary_weight": 0.0, "retiring_version": 1}
    assert alias_moves(promote) == [("champion", 2, 1), ("candidate", None, 2)]


def test_rollback_after_promotion_restores_the_old_champion_within_the_window():
    decision = rollback_after_promotion(PROMOTED, Retirement(1, 350.0), 100.0)
    assert decision.state.phase == "rolled_back" and decision.numbers == {"champion_restored": 1}
    assert traffic_for(decision) == {"stable_version": 1, "canary_version": None, "canary_weight": 0.0}
    assert alias_moves(decision) == [("champion", 1, 2)]
    with pytest.raises(RolloutError, match="rollback window has passed"):
        rollback_after_promotion(PROMOTED, None, 400.0)
    with pytest.raises(RolloutError, match="running"):
        rollback_after_promotion(RUNNING, Retirement(1, 350.0), 100.0)


def test_rollback_before_promotion_takes_the_canary_out():
    decision = rollback_now(RUNNING, 10.0)
    assert traffic_for(decision) == RETIRE_TRAFFIC and alias_moves(decision) == [("candidate", None, 2)]
    with pytest.raises(RolloutError):
        rollback_now(replace(RUNNING, phase="aborted"), 10.0)


@pytest.mark.parametrize("action, phase, expected", [
    ("advance", "running", {"canary_weight": 0.5}),
    ("wait", "running", {"canary_weight": 0.5}),
    ("hold", "held", None),
    ("wait", "paused", None),
    ("abort", "aborted", RETIRE_TRAFFIC),
])
def test_every_decision_maps_to_its_traffic(action, phase, expected):
    assert traffic_for(Decision(action, replace(RUNNING, phase=phase), 0.5)) == expected


def event(id, status="SUCCEEDED", version=5, candidate=True, kind="retrain_finished"):
    return Event(id=id, model="m", version=version, kind=kind, time=0.0, actor="drift-monitor",
                 payload={"status": status, "new_version": version, "candidate": candidate})


def test_only_successful_retrainings_that_made_a_candidate_after_the_cursor_are_rolled_out():
    events = [event(3, version=4), event(1), event(5, status="FAILED"), event(6, candidate=False),
              event(7, version=8), event(9, kind="drift_detected")]
    assert retrained_versions(events, after_id=0) == [(1, 5), (3, 4), (7, 8)]
    assert retrained_versions(events, after_id=3) == [(7, 8)]


def test_the_plan_takes_every_gate_from_the_config_by_name():
    cfg = RolloutConfig(model_name="m", gates={"max_error_rate_delta": 0.1, "max_latency_ratio": 2.0, "min_requests": 7,
                                               "latency_slack_ms": 1.5, "max_accuracy_drop": 0.3, "min_labels": 11,
                                               "block_on_output_drift": False, "latency_min_requests": 9})
    gates = plan_of(cfg).gates
    assert (gates.max_error_rate_delta, gates.max_latency_ratio, gates.min_requests, gates.latency_slack_ms,
            gates.max_accuracy_drop, gates.min_labels, gates.block_on_output_drift, gates.latency_min_requests) == \
        (0.1, 2.0, 7, 1.5, 0.3, 11, False, 9)


def test_evidence_reads_the_monitors_answers_and_tests_the_outputs():
    health = {"1": {"requests": 500, "error_rate": 0.0, "latency_p99_ms": 3.0, "predictions": {"a": 250, "b": 250}},
              "2": {"requests": 400, "error_rate": 0.1, "latency_p99_ms": 4.0, "predictions": {"a": 400}}}
    accuracy = {"2": {"labelled": 40, "accuracy": 0.8}}
    gates = RolloutConfig(model_name="m").gates
    evidence = evidence_of(RUNNING, health, accuracy, gates)
    assert evidence.canary.requests == 400 and evidence.canary.accuracy == 0.8 and evidence.stable.labelled == 0
    assert evidence.canary_output_drift
    assert not predictions_differ({"a": 5}, {"b": 5}, 0.05, min_rows=50)


def test_a_retraining_queued_behind_a_rollout_is_rolled_out_after_it():
    queued = event(4, version=9, candidate=False)
    queued.payload["queued"] = True
    assert retrained_versions([event(3, version=8), queued], after_id=0) == [(3, 8), (4, 9)]
