"""The progressive rollout policy. Pure: no Ray, no clock of its own.

A rollout walks the canary through weight steps (e.g. 5 → 25 → 50 → 100 %). Each step lasts
at least ``min_duration_s`` and must see ``min_canary_requests`` canary requests before its
gates are judged; low traffic never passes a step on no data — the step is extended, and
after ``deadline_s`` the rollout is held or aborted as configured. A failed gate rolls back at
once. Passing the last step promotes the canary.

:func:`decide` is the policy of a running rollout: (state, evidence, now) → decision;
:func:`start`, :func:`command` and :func:`rollback_after_promotion` are the operator's and the
loop's other entries, :func:`traffic_for` maps any decision to the traffic change it needs, and
:class:`Retirement` is the rollback window after a promotion (the old champion stays loaded at
weight 0 until it ends). The controller actor only applies decisions (weights, aliases,
events) and persists the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Literal

from raymlops.errors import RolloutError

Phase = Literal["running", "paused", "held", "promoted", "rolled_back", "aborted"]
Action = Literal["start", "wait", "advance", "promote", "rollback", "hold", "abort"]
FINAL_PHASES = ("promoted", "rolled_back", "aborted")


@dataclass(frozen=True)
class Step:
    """One canary weight and how much evidence it needs."""

    weight: float
    min_duration_s: float = 60.0
    min_canary_requests: int = 100


@dataclass(frozen=True)
class Gates:
    """What the canary must show against the stable version at every step.

    Attributes:
        max_error_rate_delta: canary 5xx rate ≤ stable's + this.
        max_latency_ratio: canary p99 latency ≤ stable's × this.
        max_accuracy_drop: with labels, canary accuracy ≥ stable's − this (classifiers).
        max_error_ratio: with labels, canary mean absolute error ≤ stable's × this (regressions).
        min_labels: labelled canary rows needed before accuracy is judged.
        block_on_output_drift: the canary's predictions must not drift from the stable's.
        min_requests: canary requests before any gate is judged (a handful proves nothing).
        latency_slack_ms: absolute slack on the latency gate (sub-millisecond p99s are noise).
        latency_min_requests: canary requests before the latency gate is judged (the nearest-rank
            p99 of fewer than 100 is the slowest single request: one cold call would roll back).
        max_estimated_accuracy_drop: without labels, canary accuracy estimated from its confidence
            ≥ the stable's estimate − this (None: off).
        estimated_min_rows: rows per arm behind the estimates before they are compared.
    """

    max_error_rate_delta: float = 0.01
    max_latency_ratio: float = 1.5
    min_requests: int = 20
    latency_slack_ms: float = 5.0
    latency_min_requests: int = 100
    max_accuracy_drop: float = 0.02
    max_error_ratio: float = 1.1
    min_labels: int = 30
    block_on_output_drift: bool = True
    max_estimated_accuracy_drop: float | None = None
    estimated_min_rows: int = 200


@dataclass(frozen=True)
class Plan:
    """Steps, gates and what to do when a step cannot gather its evidence in time."""

    steps: tuple[Step, ...]
    gates: Gates = Gates()
    deadline_s: float = 3600.0
    on_deadline: Literal["hold", "abort"] = "hold"

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a rollout needs at least one step")
        weights = [s.weight for s in self.steps]
        if any(not 0 < w <= 1 for w in weights) or weights != sorted(weights):
            raise ValueError(f"step weights must rise within (0, 1], got {weights}")


@dataclass(frozen=True)
class ArmEvidence:
    """What one arm showed during the current step."""

    requests: int = 0
    error_rate: float = 0.0
    latency_p99_ms: float | None = None
    labelled: int = 0
    accuracy: float | None = None
    error: float | None = None
    estimated_accuracy: float | None = None
    estimated_rows: int = 0


@dataclass(frozen=True)
class Evidence:
    """Stable and canary during the current step, plus the canary's output drift verdict."""

    stable: ArmEvidence
    canary: ArmEvidence
    canary_output_drift: bool = False


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout is."""

    model: str
    stable_version: int
    canary_version: int
    phase: Phase = "running"
    step: int = 0
    step_started: float = 0.0
    started: float = 0.0
    finished: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Decision:
    """What to do now, why, and the numbers it rests on."""

    action: Action
    state: RolloutState
    weight: float
    reasons: tuple[str, ...] = ()
    numbers: dict[str, Any] = field(default_factory=dict)


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """A decision as JSON (the controller persists it before applying it)."""
    return {"action": decision.action, "state": decision.state.to_dict(), "weight": decision.weight,
            "reasons": list(decision.reasons), "numbers": decision.numbers}


def decision_from_dict(saved: dict[str, Any]) -> Decision:
    """The decision :func:`decision_to_dict` saved."""
    return Decision(saved["action"], RolloutState(**saved["state"]), float(saved["weight"]),
                    tuple(saved.get("reasons", ())), dict(saved.get("numbers", {})))


def failed_gates(gates: Gates, evidence: Evidence) -> list[str]:
    """The gates the canary fails, each with its numbers (empty: all pass)."""
    stable, canary = evidence.stable, evidence.canary
    failures = []
    if canary.error_rate > stable.error_rate + gates.max_error_rate_delta:
        failures.append(f"error rate {canary.error_rate:.4f} > stable {stable.error_rate:.4f} + "
                        f"{gates.max_error_rate_delta}")
    if canary.latency_p99_ms is not None and stable.latency_p99_ms is not None \
            and canary.requests >= gates.latency_min_requests \
            and canary.latency_p99_ms > stable.latency_p99_ms * gates.max_latency_ratio + gates.latency_slack_ms:
        failures.append(f"p99 latency {canary.latency_p99_ms:.2f} ms > stable {stable.latency_p99_ms:.2f} ms × "
                        f"{gates.max_latency_ratio} + {gates.latency_slack_ms} ms")
    if gates.block_on_output_drift and evidence.canary_output_drift:
        failures.append("the canary's predictions drift from the stable version's")
    if canary.accuracy is not None and stable.accuracy is not None and canary.labelled >= gates.min_labels \
            and stable.labelled >= gates.min_labels and canary.accuracy < stable.accuracy - gates.max_accuracy_drop:
        failures.append(f"accuracy {canary.accuracy:.4f} < stable {stable.accuracy:.4f} − {gates.max_accuracy_drop}")
    if canary.error is not None and stable.error is not None and canary.labelled >= gates.min_labels \
            and stable.labelled >= gates.min_labels and canary.error > stable.error * gates.max_error_ratio:
        failures.append(f"mean absolute error {canary.error:.4g} > stable {stable.error:.4g} × {gates.max_error_ratio}")
    drop = gates.max_estimated_accuracy_drop
    if drop is not None and canary.estimated_accuracy is not None and stable.estimated_accuracy is not None \
            and min(canary.estimated_rows, stable.estimated_rows) >= gates.estimated_min_rows \
            and canary.estimated_accuracy < stable.estimated_accuracy - drop:
        failures.append(f"estimated accuracy {canary.estimated_accuracy:.4f} < stable "
                        f"{stable.estimated_accuracy:.4f} − {drop} (no labels)")
    return failures


def _numbers(evidence: Evidence) -> dict[str, Any]:
    return {"stable": dict(evidence.stable.__dict__), "canary": dict(evidence.canary.__dict__),
            "canary_output_drift": evidence.canary_output_drift}


def decide(plan: Plan, state: RolloutState, evidence: Evidence, now: float) -> Decision:
    """The next decision of a rollout.

    Gates are judged as soon as the canary has ``gates.min_requests`` requests (a failure rolls
    back at once, even before the step's minimums are met); a step advances only when its minimum duration and
    canary request count are met and every gate passes; past the deadline without enough
    evidence the rollout is held or aborted.
    """
    step = plan.steps[state.step]
    numbers = _numbers(evidence)
    if state.phase in FINAL_PHASES or state.phase in ("paused", "held"):
        weight = step.weight if state.phase in ("paused", "held") else (1.0 if state.phase == "promoted" else 0.0)
        return Decision("wait", state, weight, (f"rollout is {state.phase}",), numbers)
    failures = failed_gates(plan.gates, evidence) if evidence.canary.requests >= plan.gates.min_requests else []
    if failures:
        done = replace(state, phase="rolled_back", finished=now, reason="; ".join(failures))
        return Decision("rollback", done, 0.0, tuple(failures), numbers)
    elapsed = now - state.step_started
    enough = elapsed >= step.min_duration_s and evidence.canary.requests >= step.min_canary_requests
    if not enough:
        if now - state.step_started >= plan.deadline_s:
            why = (f"step {state.step + 1} saw {evidence.canary.requests} canary requests in {elapsed:.0f} s "
                   f"(needs {step.min_canary_requests} and {step.min_duration_s:.0f} s) by the deadline")
            if plan.on_deadline == "abort":
                return Decision("abort", replace(state, phase="aborted", finished=now, reason=why), 0.0, (why,), numbers)
            return Decision("hold", replace(state, phase="held", reason=why), step.weight, (why,), numbers)
        return Decision("wait", state, step.weight, (f"gathering evidence: {evidence.canary.requests}/"
                                                     f"{step.min_canary_requests} requests, {elapsed:.0f}/"
                                                     f"{step.min_duration_s:.0f} s",), numbers)
    if state.step + 1 < len(plan.steps):
        following = replace(state, step=state.step + 1, step_started=now)
        return Decision("advance", following, plan.steps[state.step + 1].weight,
                        (f"step {state.step + 1} passed every gate",), numbers)
    done = replace(state, phase="promoted", finished=now, reason="every step passed")
    return Decision("promote", done, 1.0, ("every step passed every gate",), numbers)


def command(plan: Plan, state: RolloutState, name: str, now: float) -> Decision:
    """An operator's command: pause, resume, promote (now), abort.

    Raises:
        RolloutError: the command does not apply in the current phase.
    """
    weight = plan.steps[state.step].weight
    if state.phase in FINAL_PHASES:
        raise RolloutError(model=state.model, problem=f"the rollout is already {state.phase}")
    if name == "pause":
        if state.phase != "running":
            raise RolloutError(model=state.model, problem=f"cannot pause a {state.phase} rollout")
        return Decision("wait", replace(state, phase="paused", reason="paused by an operator"), weight, ("paused",))
    if name == "resume":
        if state.phase not in ("paused", "held"):
            raise RolloutError(model=state.model, problem=f"cannot resume a {state.phase} rollout")
        return Decision("wait", replace(state, phase="running", step_started=now, reason="resumed"), weight, ("resumed",))
    if name == "promote":
        return Decision("promote", replace(state, phase="promoted", finished=now, reason="promoted by an operator"),
                        1.0, ("promoted by an operator",))
    if name == "abort":
        return Decision("abort", replace(state, phase="aborted", finished=now, reason="aborted by an operator"),
                        0.0, ("aborted by an operator",))
    raise RolloutError(model=state.model, problem=f"unknown command {name!r}; use pause, resume, promote, abort "
                       "or rollback")


def start(plan: Plan, current: RolloutState | None, model: str, champion: int | None, candidate: int | None,
          now: float) -> Decision:
    """The decision that starts a rollout of ``candidate`` against ``champion`` at the first step.

    Raises:
        RolloutError: a rollout is already active, there is no candidate, or it is the champion.
    """
    if current is not None and current.phase not in FINAL_PHASES:
        raise RolloutError(model=model, problem=f"a rollout of v{current.canary_version} is already {current.phase}")
    if champion is None:
        raise RolloutError(model=model, problem="there is no `champion` version to roll out against")
    if candidate is None:
        raise RolloutError(model=model, problem="there is no `candidate` version to roll out")
    if candidate == champion:
        raise RolloutError(model=model, problem=f"the candidate v{candidate} is already the champion")
    state = RolloutState(model, champion, candidate, step_started=now, started=now)
    return Decision("start", state, plan.steps[0].weight, ("rollout started",))


@dataclass(frozen=True)
class Retirement:
    """After a promotion the old champion stays loaded at weight 0 until ``at``, so a rollback
    needs no reload; then it is retired."""

    version: int
    at: float

    def due(self, now: float) -> bool:
        """Whether the rollback window is over."""
        return now >= self.at


def retirement_after(decision: Decision, rollback_window_s: float, now: float) -> Retirement | None:
    """The retirement a decision starts (a promotion), or None."""
    if decision.action != "promote":
        return None
    return Retirement(decision.state.stable_version, now + rollback_window_s)


def rollback_after_promotion(state: RolloutState, retirement: Retirement | None, now: float) -> Decision:
    """An operator's rollback once the rollout is promoted: the old champion, still loaded during
    the rollback window, becomes the stable version again.

    Raises:
        RolloutError: the rollout is not promoted, or its rollback window has passed.
    """
    if state.phase != "promoted" or retirement is None:
        window = " and its rollback window has passed" if state.phase == "promoted" else ""
        raise RolloutError(model=state.model, problem=f"the rollout is {state.phase}{window}")
    restored = replace(state, phase="rolled_back", finished=now, reason="rolled back after promotion by an operator")
    return Decision("rollback", restored, 0.0, ("rolled back by an operator",),
                    {"champion_restored": retirement.version})


def rollback_now(state: RolloutState, now: float) -> Decision:
    """An operator's rollback: after promotion see :func:`rollback_after_promotion`; before, the
    canary leaves at once.

    Raises:
        RolloutError: the rollout has already ended.
    """
    if state.phase in FINAL_PHASES:
        raise RolloutError(model=state.model, problem=f"the rollout is {state.phase}")
    done = replace(state, phase="rolled_back", finished=now, reason="rolled back by an operator")
    return Decision("rollback", done, 0.0, ("rolled back by an operator",))


#: The traffic change that retires the old champion when the rollback window ends.
RETIRE_TRAFFIC: dict[str, Any] = {"canary_version": None, "canary_weight": 0.0}


def traffic_for(decision: Decision) -> dict[str, Any] | None:
    """The traffic change a decision needs (``user_config`` keys), or None when traffic stays."""
    state = decision.state
    if decision.action == "start":
        return {"stable_version": state.stable_version, "canary_version": state.canary_version,
                "canary_weight": decision.weight}
    if decision.action == "promote":
        # the old champion stays loaded (weight 0) for the rollback window, marked so that a manual
        # weight change must name the version it is for
        return {"stable_version": state.canary_version, "canary_version": state.stable_version, "canary_weight": 0.0,
                "retiring_version": state.stable_version}
    if decision.action == "rollback" and "champion_restored" in decision.numbers:
        return {"stable_version": decision.numbers["champion_restored"], "canary_version": None, "canary_weight": 0.0}
    if decision.action in ("rollback", "abort"):
        return dict(RETIRE_TRAFFIC)
    if state.phase == "running":
        return {"canary_weight": decision.weight}
    return None


def alias_moves(decision: Decision) -> list[tuple[str, int | None, int | None]]:
    """The alias changes a decision needs, as ``(alias, new version or None to delete, expected)``."""
    state = decision.state
    if decision.action == "promote":
        return [("champion", state.canary_version, state.stable_version), ("candidate", None, state.canary_version)]
    if decision.action == "rollback" and "champion_restored" in decision.numbers:
        return [("champion", decision.numbers["champion_restored"], state.canary_version)]
    if decision.action in ("rollback", "abort"):
        return [("candidate", None, state.canary_version)]
    return []


def retrained_versions(events: Iterable[Any], after_id: int) -> list[tuple[int, int]]:
    """``(event id, version)`` of each retraining that registered a new `candidate` (or one queued
    behind a rollout that was running) after the event ``after_id`` (the rollout side's reading of
    the monitor's ``retrain_finished`` events)."""
    found = []
    for event in sorted(events, key=lambda e: e.id):
        payload = event.payload or {}
        if event.id > after_id and event.kind == "retrain_finished" and payload.get("status") == "SUCCEEDED" \
                and (payload.get("candidate") or payload.get("queued")) and payload.get("new_version") is not None:
            found.append((event.id, int(payload["new_version"])))
    return found
