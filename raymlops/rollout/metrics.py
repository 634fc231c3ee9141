"""The rollout controller's Prometheus gauges, through Ray's metrics API (created in the actor)."""

from __future__ import annotations


class RolloutMetrics:
    """The rollout controller's gauges: where a model's rollout is (re-published every tick,
    since Ray's exporter drops gauge series that are not recorded again)."""

    PHASES = ("idle", "running", "paused", "held", "promoted", "rolled_back", "aborted")

    def __init__(self, model: str) -> None:
        from ray.util import metrics

        self.model = model
        self.step = metrics.Gauge("raymlops_rollout_step", description="1-based step of the running rollout (0: none).",
                                  tag_keys=("model",))
        self.weight = metrics.Gauge("raymlops_rollout_canary_weight",
                                    description="Canary weight the rollout controller last applied.", tag_keys=("model",))
        self.phase = metrics.Gauge("raymlops_rollout_phase", description="1 for the rollout's current phase, else 0.",
                                   tag_keys=("model", "phase"))
        self.canary = metrics.Gauge("raymlops_rollout_canary_version", description="Version being rolled out.",
                                    tag_keys=("model",))

        self.restarts = metrics.Counter("raymlops_loop_restarts_total", description="Background loops restarted "
                                        "after a failure.", tag_keys=("model", "actor", "loop"))

    def loop_restarted(self, loop: str) -> None:
        """Count a failed control loop (restarted) or tick (retried)."""
        self.restarts.inc(1, tags={"model": self.model, "actor": "rollout", "loop": loop})

    def publish(self, phase: str | None, step: int | None, weight: float, canary_version: int | None) -> None:
        """Record the rollout's phase (``None``: never started), step index and weight."""
        tags = {"model": self.model}
        current = phase or "idle"
        for name in self.PHASES:
            self.phase.set(1.0 if name == current else 0.0, tags={**tags, "phase": name})
        self.step.set(float(step + 1) if step is not None and current in ("running", "paused", "held") else 0.0,
                      tags=tags)
        self.weight.set(weight, tags=tags)
        self.canary.set(float(canary_version or 0), tags=tags)
