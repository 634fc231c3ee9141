"""Progressive rollouts: steps and gates (``configs/rollout.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel


class RolloutStep(StrictModel):
    """One canary weight of a rollout."""

    weight: float = Field(gt=0, le=1, description="Canary share during this step.")
    min_duration_s: float = Field(60.0, ge=0, description="Least time the step lasts.")
    min_canary_requests: int = Field(100, ge=1, description="Least canary requests before the step can pass.")


class RolloutGates(StrictModel):
    """What the canary must show against the stable version at every step."""

    max_error_rate_delta: float = Field(0.01, ge=0, description="Canary 5xx rate ≤ stable's + this.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Canary p99 latency ≤ stable's × this + the slack.")
    latency_slack_ms: float = Field(5.0, ge=0, description="Absolute slack of the latency gate (sub-millisecond "
                                    "p99s are noise).")
    min_requests: int = Field(20, ge=1, description="Canary requests in a step before any gate is judged.")
    latency_min_requests: int = Field(100, ge=1, description="Canary requests in a step before the latency gate is "
                                      "judged: the p99 of fewer than 100 is the single slowest request.")
    max_accuracy_drop: float = Field(0.02, ge=0, description="With feedback labels: canary accuracy ≥ stable's − this "
                                     "(classifiers).")
    max_error_ratio: float = Field(1.1, ge=1, description="With feedback labels: canary mean absolute error ≤ "
                                   "stable's × this (regressions).")
    min_labels: int = Field(30, ge=1, description="Labelled rows per arm before accuracy is judged.")
    max_estimated_accuracy_drop: float | None = Field(
        None, ge=0, description="Without labels (classifiers): the canary's accuracy estimated from its confidence "
        "≥ the stable's estimate − this (unset = off).")
    estimated_min_rows: int = Field(200, ge=10, description="Rows per arm before the estimated accuracies are compared.")
    block_on_output_drift: bool = Field(True, description="Roll back when the canary's predicted classes differ "
                                        "significantly from the stable version's (chi-squared).")
    output_drift_p_val: float = Field(0.01, gt=0, lt=1, description="Significance of that test.")
    output_drift_min_rows: int = Field(100, ge=10, description="Rows per arm before that test is run.")


class RolloutConfig(StrictModel):
    """``configs/rollout.yaml``: a progressive rollout of the `candidate` version."""

    model_name: str = Field("penguins", description="Registry name of the model.")
    app_name: str | None = Field(None, description="Serve application; unset = the model name.")
    registry: str | None = Field("configs/registry.yaml", description="Registry config file; unset = defaults.")
    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(weight=w) for w in (0.05, 0.25, 0.5, 1.0)],
        description="Canary weights in order, each with its minimum duration and canary requests.")
    gates: RolloutGates = Field(default_factory=RolloutGates, description="Gates judged at every step.")
    deadline_s: float = Field(3600.0, gt=0, description="How long a step may wait for its evidence.")
    on_deadline: Literal["hold", "abort"] = Field("hold", description="What happens at the deadline.")
    poll_interval_s: float = Field(5.0, gt=0, description="How often the controller decides.")
    rollback_window_s: float = Field(600.0, ge=0, description="After promotion the old champion stays loaded "
                                     "this long, so `raymlops rollout rollback` is instant.")
    num_cpus: float = Field(0.05, gt=0, description="CPUs reserved for the controller actor.")

    @model_validator(mode="after")
    def _rising_steps(self) -> "RolloutConfig":
        weights = [step.weight for step in self.steps]
        if not weights or weights != sorted(weights):
            raise ValueError(f"steps: weights must be given in rising order, got {weights}")
        return self
