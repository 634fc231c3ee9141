"""Drift checks of one version's windows against that version's reference, and the drift
state that decides when an event is due. No Ray here.

The reference is the sample saved with the version at training time (features plus the
model's own predictions) and the detector settings saved beside it, so a version is always
tested against the data it was trained on.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.data.schema import DatasetSchema
from raymlops.monitor.detectors import MMDTest, TabularReference, build_feature_drift, online_input
from raymlops.monitor.window import PREDICTION, Window
from raymlops.types import DriftReport


@dataclass(frozen=True)
class VersionReference:
    """What a version was trained on, as the monitor needs it."""

    schema: DatasetSchema
    features: dict[str, list]
    predictions: list[Any]
    detector: dict[str, Any]

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
        return cls(schema, features, predictions, detector)

    @classmethod
    def from_registry(cls, registry, model: str, version: int) -> VersionReference:
        """Download (checksums verified) and read a version's reference."""
        with tempfile.TemporaryDirectory() as directory:
            return cls.from_artifact(registry.download(f"{model}:{version}", directory))

    def tabular(self) -> TabularReference:
        numeric = [f.name for f in self.schema.watched_features if f.kind == "numeric"]
        categorical = [f.name for f in self.schema.watched_features if f.kind == "categorical"]
        return TabularReference.build(self.features, numeric, categorical)


class VersionChecker:
    """Every configured detector for one version.

    Args:
        model, version: what is checked.
        reference: the version's reference.
        cadence: ``DetectorCadence`` fields (which detectors, how often, backend override).
    """

    def __init__(self, model: str, version: int, reference: VersionReference, cadence: dict[str, Any]) -> None:
        self.model, self.version, self.cadence = model, version, cadence
        self.p_val = float(reference.detector.get("p_val", 0.05))
        self.correction = reference.detector.get("correction", "bonferroni")
        self.backend = cadence.get("backend") or reference.detector.get("backend", "alibi")
        self.reference = reference.tabular()
        self.feature = build_feature_drift(self.backend, self.reference, self.p_val, self.correction)
        self.classifier = reference.schema.is_classification
        self.records_embedding = bool(reference.schema.watched)  # tensor inputs: records carry the embedding
        output_reference = (TabularReference.build({PREDICTION: reference.predictions}, [], [PREDICTION]) if self.classifier
                            else TabularReference.build({PREDICTION: reference.predictions}, [PREDICTION], []))
        self.output = build_feature_drift(self.backend, output_reference, self.p_val, self.correction)
        self._mmd: MMDTest | None = None
        self.windows_checked = 0
        self.online: Any = None  # a calibrated online detector, set by the owner when ready

    def _report(self, detector: str, backend: str, p_values: dict, distances: dict, threshold: float, drift: bool,
                rows: int, started: float) -> DriftReport:
        return DriftReport(self.model, self.version, detector, backend, p_values, distances, threshold, drift, rows,
                           time.time(), (time.perf_counter() - started) * 1000)

    def check(self, window: Window) -> list[DriftReport]:
        """Run the detectors due for this window."""
        reports: list[DriftReport] = []
        self.windows_checked += 1
        features = complete_rows(window.table, self.reference.features)
        rows = len(next(iter(features.values()), []))
        if rows == 0:
            return reports
        if self.cadence.get("feature_wise", True):
            started = time.perf_counter()
            test = self.feature.test(features)
            reports.append(self._report("feature", self.feature.name, test.p_values, test.distances, test.threshold,
                                        test.drift, rows, started))
        if self.cadence.get("output", True):
            started = time.perf_counter()
            predictions = window.table.column(PREDICTION).cast(pa.string() if self.classifier else pa.float64()) \
                .to_numpy(zero_copy_only=False)
            test = self.output.test({PREDICTION: predictions})
            reports.append(self._report("output", self.output.name, {"prediction": test.p_values[PREDICTION]},
                                        {"prediction": test.distances[PREDICTION]}, test.threshold, test.drift,
                                        window.rows, started))
        mmd = self.cadence.get("mmd", {})
        if mmd.get("enabled", True) and self.windows_checked % int(mmd.get("every", 5)) == 0:
            started = time.perf_counter()
            if self._mmd is None:
                self._mmd = MMDTest(self.reference, int(mmd.get("reference_rows", 1000)), self.p_val,
                                    int(mmd.get("n_permutations", 100)), method=str(mmd.get("method", "mmd")))
            result = self._mmd.test(features)
            reports.append(self._report("mmd", f"alibi-{mmd.get('method', 'mmd')}", {"mmd": result["p_value"]}, {"mmd": result["distance"]},
                                        result["threshold"], result["drift"], rows, started))
        return reports

    def feed_online(self, window: Window, sample_rate: float, kind: str, rng: np.random.Generator) -> DriftReport | None:
        """Feed a sample of the window's rows to the online detector, row by row; report what it saw."""
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
        return self._report("online", "alibi", {}, {"online": statistic}, threshold, detected, len(chosen), started)


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
