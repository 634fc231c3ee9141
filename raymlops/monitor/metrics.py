"""The drift monitor's Prometheus metrics through Ray's metrics API (created in the actor)."""

from __future__ import annotations

from raymlops.types import DriftReport


class MonitorMetrics:
    """Gauges and counters of one model's monitor, tagged by model, version and detector."""

    def __init__(self, model: str) -> None:
        from ray.util import metrics

        self.model = model
        self.p_value = metrics.Gauge("raymlops_drift_p_value", description="Latest p-value per feature and detector.",
                                     tag_keys=("model", "version", "detector", "feature"))
        self.distance = metrics.Gauge("raymlops_drift_distance", description="Latest test statistic per feature.",
                                      tag_keys=("model", "version", "detector", "feature"))
        self.effect = metrics.Gauge("raymlops_drift_effect", description="Latest effect size per feature (Wasserstein "
                                    "in reference std, or PSI).", tag_keys=("model", "version", "detector", "feature"))
        self.min_effect = metrics.Gauge("raymlops_drift_min_effect", description="Least effect size that may alarm.",
                                        tag_keys=("model", "version", "detector", "feature"))
        self.alarms = metrics.Gauge("raymlops_drift_alarms", description="Drift alarms of the version's verdict so far.",
                                    tag_keys=("model", "version"))
        self.budget_so_far = metrics.Gauge("raymlops_drift_budget_so_far", description="False alarms the budget "
                                           "allows for the rows checked so far.", tag_keys=("model", "version"))
        self.estimated = metrics.Gauge("raymlops_estimated_accuracy", description="Accuracy estimated from the "
                                       "model's confidence, without labels (recent rows).",
                                       tag_keys=("model", "version"))
        self.flag = metrics.Gauge("raymlops_drift_detected", description="1 while the detector says the version drifts.",
                                  tag_keys=("model", "version", "detector"))
        self.duration = metrics.Histogram("raymlops_drift_check_ms", description="Duration of one drift check.",
                                          boundaries=[1, 5, 20, 50, 200, 1000, 5000, 30000],
                                          tag_keys=("model", "detector"))
        self.accuracy = metrics.Gauge("raymlops_accuracy", description="Accuracy on feedback labels (recent window).",
                                      tag_keys=("model", "version"))
        self.error = metrics.Gauge("raymlops_prediction_error", description="Mean absolute error of a regression on "
                                   "feedback labels (recent window).", tag_keys=("model", "version"))
        self.labelled = metrics.Gauge("raymlops_labelled_rows", description="Feedback labels in the accuracy window.",
                                      tag_keys=("model", "version"))
        self.ingested = metrics.Counter("raymlops_monitor_rows_ingested_total", description="Records ingested.",
                                        tag_keys=("model",))
        self.dropped = metrics.Counter("raymlops_monitor_rows_dropped_total",
                                       description="Rows dropped by the monitor (full check queue).",
                                       tag_keys=("model",))

        self.restarts = metrics.Counter("raymlops_loop_restarts_total", description="Background loops restarted "
                                        "after a failure.", tag_keys=("model", "actor", "loop"))

    def loop_restarted(self, loop: str) -> None:
        """Count a background loop that failed and is started again."""
        self.restarts.inc(1, tags={"model": self.model, "actor": "monitor", "loop": loop})

    def report(self, report: DriftReport, observe_duration: bool = True) -> None:
        """Publish one drift report (``observe_duration=False`` when re-publishing an old one)."""
        tags = {"model": self.model, "version": str(report.version), "detector": report.detector}
        for feature, value in report.p_values.items():
            self.p_value.set(value, tags={**tags, "feature": feature})
        for feature, value in report.distances.items():
            self.distance.set(value, tags={**tags, "feature": feature})
        for feature, value in report.effects.items():
            self.effect.set(value, tags={**tags, "feature": feature})
        for feature, value in report.min_effect.items():
            self.min_effect.set(value, tags={**tags, "feature": feature})
        self.flag.set(1.0 if report.drift else 0.0, tags=tags)
        if observe_duration:
            self.duration.observe(report.duration_ms, tags={"model": self.model, "detector": report.detector})

    def accuracy_of(self, per_version: dict[str, dict]) -> None:
        """Publish per-version accuracy (classifiers) or mean absolute error (regressions) on feedback labels."""
        for version, result in per_version.items():
            tags = {"model": self.model, "version": str(version)}
            self.labelled.set(result["labelled"], tags=tags)
            if result["accuracy"] is not None:
                self.accuracy.set(result["accuracy"], tags=tags)
            if result.get("mae") is not None:
                self.error.set(result["mae"], tags=tags)
            if result.get("estimated_accuracy") is not None:
                self.estimated.set(result["estimated_accuracy"], tags=tags)

    def budget(self, version: int, spent: dict) -> None:
        """Publish a version's verdict alarms against what its budget allows so far."""
        tags = {"model": self.model, "version": str(version)}
        self.alarms.set(spent["alarms"], tags=tags)
        if spent["budget_so_far"] is not None:
            self.budget_so_far.set(spent["budget_so_far"], tags=tags)

    def rows(self, ingested: int, dropped: int) -> None:
        """Count ingested and dropped rows."""
        if ingested:
            self.ingested.inc(ingested, tags={"model": self.model})
        if dropped:
            self.dropped.inc(dropped, tags={"model": self.model})
