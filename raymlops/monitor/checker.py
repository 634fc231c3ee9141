"""Drift checks of one version's windows against that version's reference, and the drift
state that decides when an event is due. No Ray here.

The reference is the sample saved with the version at training time — held-out rows the model
did not train on, with the model's own predictions, confidences and the true labels — and the
detector settings saved beside it, so a version is always tested against its own reference, with
thresholds calibrated on it (:mod:`raymlops.monitor.calibration`) to spend its share of the
false-alarm budget (:mod:`raymlops.monitor.budget`).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.data.schema import DatasetSchema
from raymlops.monitor.budget import plan_budget
from raymlops.monitor.calibration import Calibration, calibrate, class_counts, draws_for, exact_class_test, null_min_p
from raymlops.monitor.detectors import MMDTest, TabularReference, build_feature_drift, online_input
from raymlops.monitor.effects import ReferenceEffects, SortedReference, psi
from raymlops.monitor.estimate import AccuracyEstimator
from raymlops.monitor.window import CONFIDENCE, PREDICTION, Window
from raymlops.train.package import LABEL_COLUMN as LABEL
from raymlops.types import DriftReport


@dataclass(frozen=True)
class VersionReference:
    """What a version was trained on, as the monitor needs it: the held-out reference's features,
    the model's predictions on them and (newer versions) its confidences and the true labels."""

    schema: DatasetSchema
    features: dict[str, list]
    predictions: list[Any]
    detector: dict[str, Any]
    confidence: list[float] | None = None
    labels: list[Any] | None = None

    @classmethod
    def from_artifact(cls, directory: str | Path) -> VersionReference:
        """Read reference.parquet, signature.json and detector.json of a downloaded version."""
        import pyarrow.parquet as pq

        directory = Path(directory)
        schema = DatasetSchema.from_json((directory / "signature.json").read_text())
        table = pq.read_table(directory / "reference.parquet")
        features = {f.name: table.column(f.name).to_pylist() for f in schema.watched_features}
        predictions = reference_predictions(schema, table.column(PREDICTION))
        detector = json.loads((directory / "detector.json").read_text())
        names = table.column_names
        confidence = table.column(CONFIDENCE).to_pylist() if CONFIDENCE in names else None
        labels = table.column(LABEL).to_pylist() if LABEL in names else None
        return cls(schema, features, predictions, detector, confidence, labels)

    @classmethod
    def from_registry(cls, registry, model: str, version: int) -> VersionReference:
        """Download (checksums verified) and read a version's reference."""
        with tempfile.TemporaryDirectory() as directory:
            return cls.from_artifact(registry.download(f"{model}:{version}", directory))

    def tabular(self) -> TabularReference:
        numeric = [f.name for f in self.schema.watched_features if f.kind == "numeric"]
        categorical = [f.name for f in self.schema.watched_features if f.kind == "categorical"]
        return TabularReference.build(self.features, numeric, categorical)

    def accuracy_estimator(self) -> tuple[AccuracyEstimator | None, str]:
        """The label-free accuracy estimator of a classifier, and why there is none."""
        if not self.schema.is_classification:
            return None, "not a classifier"
        if self.confidence is None or self.labels is None:
            return None, "the reference has no confidences and labels (retrain to record them)"
        correct = [str(p) == str(y) for p, y in zip(self.predictions, self.labels)]
        try:
            return AccuracyEstimator.fit([np.nan if c is None else c for c in self.confidence], correct), "ready"
        except ValueError as exc:
            return None, str(exc)


class VersionChecker:
    """Every configured detector for one version, with thresholds that spend its share of the
    false-alarm budget (calibrated on the version's reference) and least effect sizes.

    Args:
        model, version: what is checked.
        reference: the version's reference.
        cadence: ``DetectorCadence`` fields (which detectors, how often, backend override, budget).
        window_rows: rows of a full window (the budget's looks per row depend on it).
        seed: seeds calibration and the exact class test.
    """

    def __init__(self, model: str, version: int, reference: VersionReference, cadence: dict[str, Any],
                 window_rows: int = 500, seed: int = 0) -> None:
        self.model, self.version, self.cadence = model, version, cadence
        self.p_val = float(reference.detector.get("p_val", 0.05))
        self.correction = reference.detector.get("correction", "bonferroni")
        self.backend = cadence.get("backend") or reference.detector.get("backend", "alibi")
        self.reference = reference.tabular()
        self.categorical = set(self.reference.categorical)
        self.feature = build_feature_drift(self.backend, self.reference, self.p_val, self.correction)
        self.effects = ReferenceEffects(self.reference.values, self.categorical)
        self.classifier = reference.schema.is_classification
        self.records_embedding = bool(reference.schema.watched)  # tensor inputs: records carry the embedding
        self.plan = plan_budget(cadence, window_rows)
        self.min_effect = cadence["min_effect"]
        self.rng = np.random.default_rng(seed)
        if self.classifier:
            self.output_reference = TabularReference.build({PREDICTION: reference.predictions}, [], [PREDICTION])
        else:
            self.output_reference = TabularReference.build({PREDICTION: reference.predictions}, [PREDICTION], [])
            self.output = build_feature_drift(self.backend, self.output_reference, self.p_val, self.correction)
            self.output_effects = SortedReference(self.output_reference.values[PREDICTION])
        self.calibrations = self._calibrate(window_rows, cadence["calibration"], seed)
        self.estimator, self.estimator_state = (reference.accuracy_estimator() if cadence.get("estimate_accuracy", True)
                                                else (None, "off"))
        self.last_estimate: dict[str, Any] | None = None
        self._mmd: MMDTest | None = None
        self._mmd_last = -math.inf  # time.monotonic() of the last MMD test
        self._windows_since_mmd = 0
        self.windows_checked = 0
        self.online: Any = None  # a calibrated online detector, set by the owner when ready

    def _calibrate(self, window_rows: int, settings: dict[str, Any], seed: int) -> dict[str, Calibration]:
        """Thresholds of the window tests whose p-values are not exact, on the reference."""
        out: dict[str, Calibration] = {}
        allocations = self.plan.allocations
        rows = len(next(iter(self.reference.values.values()), []))
        if rows < 8:
            return out
        size = max(min(window_rows, rows // 2), 2)
        rng = np.random.default_rng(seed)
        if "feature" in allocations:
            null = null_min_p(self.reference.values, self.categorical, window_rows, settings["windows"], rng)
            out["feature"] = calibrate(null, allocations["feature"].alpha or 0.0, len(self.reference.features),
                                       settings["tail"], size, rows - size)
        if "output" in allocations and not self.classifier:
            null = null_min_p(self.output_reference.values, set(), window_rows, settings["windows"], rng)
            out["output"] = calibrate(null, allocations["output"].alpha or 0.0, 1, settings["tail"], size, rows - size)
        return out

    def _report(self, detector: str, backend: str, p_values: dict, distances: dict, threshold: float, drift: bool,
                rows: int, started: float, alpha: float | None = None, effects: dict | None = None,
                min_effect: dict | None = None) -> DriftReport:
        return DriftReport(self.model, self.version, detector, backend, p_values, distances, threshold, drift, rows,
                           time.time(), (time.perf_counter() - started) * 1000, alpha, effects or {}, min_effect or {})

    def _least(self, names: list[str], categorical: set[str]) -> dict[str, float]:
        return {name: float(self.min_effect["psi"] if name in categorical else self.min_effect["wasserstein"])
                for name in names}

    def check(self, window: Window) -> list[DriftReport]:
        """Run the detectors due for this window."""
        reports: list[DriftReport] = []
        self.windows_checked += 1
        self._windows_since_mmd += 1
        features = complete_rows(window.table, self.reference.features)
        rows = len(next(iter(features.values()), []))
        if self.estimator is not None and CONFIDENCE in window.table.column_names:
            confidence = window.table.column(CONFIDENCE).to_numpy(zero_copy_only=False).astype(np.float64)
            estimate = self.estimator.estimate(confidence)
            if estimate is not None:
                self.last_estimate = {"estimated_accuracy": round(estimate, 6), "rows": int(np.isfinite(confidence).sum()),
                                      "time": time.time()}
        if rows == 0:
            return reports
        allocations = self.plan.allocations
        if self.cadence.get("feature_wise", True) and "feature" in allocations:
            reports.append(self._feature_report(features, rows))
        if self.cadence.get("output", True) and "output" in allocations:
            reports.append(self._output_report(window))
        mmd = self.cadence.get("mmd", {})
        if "mmd" in allocations and self._mmd_due(mmd):
            started = time.perf_counter()
            self._mmd_last, self._windows_since_mmd = time.monotonic(), 0
            alpha = self.plan.alpha("mmd")
            if self._mmd is None:
                self._mmd = MMDTest(self.reference, int(mmd.get("reference_rows", 1000)), alpha,
                                    max(int(mmd.get("n_permutations", 100)), math.ceil(5 / alpha)),
                                    method=str(mmd.get("method", "mmd")))
            result = self._mmd.test(features)
            reports.append(self._report("mmd", f"alibi-{mmd.get('method', 'mmd')}", {"mmd": result["p_value"]},
                                        {"mmd": result["distance"]}, alpha, result["drift"], rows, started, alpha,
                                        {"mmd": result["distance"]}))
        return reports

    def _mmd_due(self, settings: dict[str, Any]) -> bool:
        """Every ``every``-th window, and no sooner than ``min_interval_s`` after the last test."""
        return self._windows_since_mmd >= int(settings.get("every", 5)) and \
            time.monotonic() - self._mmd_last >= float(settings.get("min_interval_s", 60.0))

    def _feature_report(self, features: dict[str, np.ndarray], rows: int) -> DriftReport:
        started = time.perf_counter()
        test = self.feature.test(features)
        calibration = self.calibrations.get("feature")
        threshold = calibration.threshold if calibration else self.plan.alpha("feature") / len(test.p_values)
        effects = self.effects.of(self.reference.coded(features))
        least = self._least(list(effects), self.categorical)
        drift = any(test.p_values[name] < threshold and effects[name] >= least[name] for name in test.p_values)
        return self._report("feature", self.feature.name, test.p_values, test.distances, threshold, drift, rows,
                            started, self.plan.alpha("feature"), effects, least)

    def _output_report(self, window: Window) -> DriftReport:
        started = time.perf_counter()
        alpha = self.plan.alpha("output")
        column = window.table.column(PREDICTION).cast(pa.string() if self.classifier else pa.float64())
        predictions = column.to_numpy(zero_copy_only=False)
        predictions = predictions[[p is not None for p in predictions]] if self.classifier else \
            predictions[np.isfinite(predictions.astype(np.float64))]
        reference = self.output_reference.values[PREDICTION]
        if self.classifier:
            codes = self.output_reference.coded({PREDICTION: predictions})[PREDICTION]
            width = len(self.output_reference.categories[PREDICTION])
            statistic, p = exact_class_test(class_counts(reference, width), class_counts(codes, width),
                                            draws_for(alpha), self.rng)
            effect, least, threshold = psi(reference, codes), float(self.min_effect["psi"]), alpha
            backend = "exact"
        else:
            test = self.output.test({PREDICTION: predictions})
            statistic, p = test.distances[PREDICTION], test.p_values[PREDICTION]
            effect, least = self.output_effects.wasserstein_std(predictions), float(self.min_effect["wasserstein"])
            calibration = self.calibrations.get("output")
            threshold, backend = (calibration.threshold if calibration else alpha), self.output.name
        return self._report("output", backend, {"prediction": p}, {"prediction": statistic}, threshold,
                            bool(p < threshold and effect >= least), len(predictions), started, alpha,
                            {"prediction": round(effect, 6)}, {"prediction": least})

    def feed_online(self, window: Window, sample_rate: float, kind: str, rng: np.random.Generator) -> DriftReport | None:
        """Feed a sample of the window's rows to the online detector, row by row; report what it saw
        (``alpha``: the false alarms expected of these rows, their count over the ERT)."""
        if self.online is None:
            return None
        features = complete_rows(window.table, self.reference.features)
        rows = len(next(iter(features.values()), []))
        chosen = np.where(rng.random(rows) < sample_rate)[0]
        if len(chosen) == 0:
            return None
        started = time.perf_counter()
        x = online_input(kind, self.reference, {k: v[chosen] for k, v in features.items()})
        detected, statistic, threshold = False, 0.0, float("nan")
        for row in x:
            result = self.online.predict(row)["data"]
            statistic = float(np.max(result["test_stat"]))
            threshold = float(np.max(result["threshold"])) if result["threshold"] is not None else float("nan")
            if result["is_drift"]:
                detected = True
                self.online.reset_state()
        allocation = self.plan.allocations.get("online")
        expected = len(chosen) / allocation.ert if allocation is not None and allocation.ert else None
        return self._report("online", "alibi", {}, {"online": statistic}, threshold, detected, len(chosen), started,
                            expected)

    def build_online(self, settings: dict[str, Any]) -> Any:
        """A freshly calibrated online detector on this version's reference (slow: do it once)."""
        from raymlops.monitor.detectors import build_online

        return build_online(settings["kind"], self.reference, settings["reference_rows"], settings["ert"],
                            settings["window_size"], settings["n_bootstraps"])

    def describe(self) -> dict[str, Any]:
        """What ``drift status`` shows of this checker: thresholds and their calibration, and the
        accuracy estimate."""
        return {"calibration": {name: c.to_dict() for name, c in self.calibrations.items()},
                "accuracy_estimate": {"state": self.estimator_state,
                                      **(self.estimator.to_dict() if self.estimator else {}),
                                      **(self.last_estimate or {})}}


def reference_predictions(schema: DatasetSchema, column: pa.ChunkedArray) -> list[Any]:
    """A reference's predictions as the records carry them: class names for a classifier (older
    versions stored class indices), numbers for a regression."""
    values = column.to_pylist()
    if not schema.is_classification:
        return [float(v) for v in values]
    if pa.types.is_integer(column.type):
        return [schema.classes[int(i)] for i in values]
    return [str(v) for v in values]


def complete_rows(table: pa.Table, names: list[str]) -> dict[str, np.ndarray]:
    """The columns ``names`` over the rows where every one has a value (none when one is absent)."""
    if any(name not in table.column_names for name in names):
        return {name: np.array([]) for name in names}
    complete = table.select(names).drop_null()
    return {name: complete.column(name).to_numpy(zero_copy_only=False) for name in names}


@dataclass
class DriftStates:
    """The current drift decision per (version, detector); an event is due only when it flips."""

    states: dict[str, bool] = field(default_factory=dict)

    @staticmethod
    def key(version: int, detector: str) -> str:
        return f"{version}/{detector}"

    def update(self, report: DriftReport) -> bool:
        """Record a report's decision; True when it differs from the previous one (first drift included)."""
        key = self.key(report.version, report.detector)
        previous = self.states.get(key, False)
        self.states[key] = report.drift
        return previous != report.drift

    def restore(self, events) -> None:
        """Take the drift state from the registry's ``drift_detected`` / ``drift_cleared`` events,
        oldest first: the events are the truth, so no event is ever written twice."""
        for event in events:
            detector = (event.payload or {}).get("detector")
            if detector and event.version is not None:
                self.states[self.key(event.version, detector)] = event.kind == "drift_detected"

    def drifting(self, version: int) -> list[str]:
        """The detectors that currently say ``version`` drifts."""
        return sorted(k.split("/", 1)[1] for k, v in self.states.items() if v and k.split("/", 1)[0] == str(version))
