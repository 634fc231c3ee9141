"""When drift starts a retraining job: a policy over the champion's drift reports with the
protections users ask for against retrain storms — which detectors count, persistence (k of
the last n checks), a cooldown, one job in flight at most, and a daily budget. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from raymlops.types import DriftReport


@dataclass
class RetrainTrigger:
    """Decides, report by report, whether a retraining job starts now.

    Args:
        detectors: detectors whose reports count.
        k, n: fire when at least ``k`` of the last ``n`` counted checks drifted.
        cooldown_s: least time between two jobs.
        max_per_day: jobs per UTC day at most.
    """

    detectors: tuple[str, ...] = ("feature", "mmd")
    k: int = 2
    n: int = 3
    cooldown_s: float = 3600.0
    max_per_day: int = 3
    history: deque = field(default_factory=deque)
    last_fired: float | None = None
    fired_on: list[float] = field(default_factory=list)
    in_flight: str | None = None

    def observe(self, report: DriftReport, champion: int, now: float, counted: bool = False) -> str | None:
        """Count a report; returns why a job should start now, or None.

        ``counted`` makes a report count whatever its detector (performance reports)."""
        if (report.detector not in self.detectors and not counted) or report.version != champion:
            return None
        self.history.append(bool(report.drift))
        while len(self.history) > self.n:
            self.history.popleft()
        drifted = sum(self.history)
        if drifted < self.k:
            return None
        if self.in_flight is not None:
            return None
        if self.last_fired is not None and now - self.last_fired < self.cooldown_s:
            return None
        today = datetime.fromtimestamp(now, timezone.utc).date()
        if sum(1 for t in self.fired_on if datetime.fromtimestamp(t, timezone.utc).date() == today) >= self.max_per_day:
            return None
        return f"{drifted} of the last {len(self.history)} {'/'.join(self.detectors)} checks of v{champion} drifted"

    def fired(self, job_id: str, now: float) -> None:
        """Record that a job was submitted."""
        self.in_flight, self.last_fired = job_id, now
        self.fired_on.append(now)
        self.history.clear()

    def finished(self) -> None:
        """The job in flight ended (either way)."""
        self.in_flight = None

    def state(self) -> dict[str, Any]:
        return {"history": list(self.history), "last_fired": self.last_fired, "fired_on": list(self.fired_on),
                "in_flight": self.in_flight}

    def restore(self, state: dict[str, Any]) -> None:
        self.history = deque(state.get("history", []))
        self.last_fired, self.fired_on = state.get("last_fired"), list(state.get("fired_on", []))
        self.in_flight = state.get("in_flight")


def performance_report(model: str, champion: int | None, accuracy: dict[str, dict], settings, now: float
                       ) -> DriftReport | None:
    """A drifting "performance" report when the champion's labelled accuracy is below
    ``settings.min_accuracy`` on at least ``settings.min_labels`` labels (backend ``labels``), or
    its label-free estimated accuracy is below ``settings.min_estimated_accuracy`` over at least
    ``settings.min_estimated_rows`` rows (backend ``estimate``); None otherwise."""
    if champion is None:
        return None
    result = accuracy.get(str(champion))
    if not result:
        return None
    if settings.min_accuracy is not None and result["labelled"] >= settings.min_labels \
            and result["accuracy"] is not None and result["accuracy"] < settings.min_accuracy:
        return DriftReport(model, champion, "performance", "labels", {}, {"accuracy": result["accuracy"]},
                           settings.min_accuracy, True, result["labelled"], now)
    estimated = result.get("estimated_accuracy")
    if settings.min_estimated_accuracy is not None and estimated is not None \
            and result.get("estimated_rows", 0) >= settings.min_estimated_rows \
            and estimated < settings.min_estimated_accuracy:
        return DriftReport(model, champion, "performance", "estimate", {}, {"accuracy": estimated},
                           settings.min_estimated_accuracy, True, result["estimated_rows"], now)
    return None


def retrain_overrides(model: str, kind: str, champion: int, drift_event: int | None, extra: list[str],
                      labels_root: str | None) -> list[str]:
    """The training config overrides of a retraining job: the model, its lineage (trigger, parent,
    drift event), the configured extras, and the labelled rows as extra training data."""
    overrides = [f"model_name={model}", f"lineage.trigger={kind}", f"lineage.parent_version={champion}", *extra]
    if drift_event is not None:
        overrides.append(f"lineage.drift_event_id={drift_event}")
    if labels_root is not None:
        overrides.append(f"data.extra_train=[{labels_root}]")
    return overrides
