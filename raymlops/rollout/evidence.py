"""What a rollout step shows: the monitor's per-version health and accuracy turned into the
policy's :class:`~raymlops.rollout.policy.Evidence`, and the canary-vs-stable output test
(predicted classes, or predicted values of a regression). Pure."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from raymlops.rollout.policy import ArmEvidence, Evidence, Gates, Plan, RolloutState, Step


def plan_of(cfg) -> Plan:
    """The pure plan of a ``RolloutConfig``."""
    gates = Gates(**{f.name: getattr(cfg.gates, f.name) for f in fields(Gates)})
    steps = tuple(Step(s.weight, s.min_duration_s, s.min_canary_requests) for s in cfg.steps)
    return Plan(steps, gates, cfg.deadline_s, cfg.on_deadline)


def predictions_differ(stable: dict[str, int], canary: dict[str, int], p_val: float, min_rows: int) -> bool:
    """Chi-squared test of the predicted-class counts of two arms (False until both have min_rows)."""
    if sum(stable.values()) < min_rows or sum(canary.values()) < min_rows:
        return False
    from scipy.stats import chi2_contingency

    classes = sorted(set(stable) | set(canary))
    if len(classes) < 2:
        return False
    table = [[stable.get(c, 0) for c in classes], [canary.get(c, 0) for c in classes]]
    return bool(chi2_contingency(table)[1] < p_val)


def values_differ(stable: list[float], canary: list[float], p_val: float, min_rows: int) -> bool:
    """Two-sample Kolmogorov–Smirnov test of two arms' predicted values (False until both have min_rows)."""
    if len(stable) < min_rows or len(canary) < min_rows:
        return False
    from scipy.stats import ks_2samp

    return bool(ks_2samp(stable, canary).pvalue < p_val)


def arm_evidence(version: int, health: dict[str, dict], accuracy: dict[str, dict]) -> ArmEvidence:
    """One version's evidence from the monitor's ``health`` and ``accuracy`` answers."""
    stats, acc = health.get(str(version), {}), accuracy.get(str(version), {})
    return ArmEvidence(stats.get("requests", 0), stats.get("error_rate", 0.0), stats.get("latency_p99_ms"),
                       acc.get("labelled", 0), acc.get("accuracy"), acc.get("mae"), acc.get("estimated_accuracy"),
                       acc.get("estimated_rows", 0))


def evidence_of(state: RolloutState, health: dict[str, dict], accuracy: dict[str, dict], gates: Any) -> Evidence:
    """The step's evidence for ``state`` (``gates``: the config's ``RolloutGates``)."""
    drift = False
    if gates.block_on_output_drift:
        stable, canary = health.get(str(state.stable_version), {}), health.get(str(state.canary_version), {})
        if stable.get("values") or canary.get("values"):  # a regression: compare the predicted values
            drift = values_differ(stable.get("values", []), canary.get("values", []), gates.output_drift_p_val,
                                  gates.output_drift_min_rows)
        else:
            drift = predictions_differ(stable.get("predictions", {}), canary.get("predictions", {}),
                                       gates.output_drift_p_val, gates.output_drift_min_rows)
    return Evidence(arm_evidence(state.stable_version, health, accuracy),
                    arm_evidence(state.canary_version, health, accuracy), drift)
