"""Drift detectors behind small protocols, so the backend is a choice.

``alibi`` (default) wraps alibi-detect's TabularDrift (KS for numeric, Chi-squared for
categorical features) and is the only backend of the multivariate MMD test and the online
detectors. ``scipy`` runs the same feature-wise tests with scipy.stats under a permissive
licence; on the same data both give the same p-values (tests hold them to 1e-4). alibi-detect
releases from 0.11.5 are under the Business Source License (non-production use is free).

Categorical values are coded against the reference's categories; values never seen in the
reference get fresh codes, so they count as drift rather than vanishing. Multivariate
detectors see numeric features standardised by the reference and categorical ones one-hot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from raymlops.errors import NotAvailableError
from raymlops.monitor.ks import KSReference
from raymlops.plugins import load_plugin


@dataclass(frozen=True)
class FeatureTest:
    """Per-feature outcome of a feature-wise test."""

    p_values: dict[str, float]
    distances: dict[str, float]
    threshold: float
    drift: bool


def corrected(p_values: np.ndarray, p_val: float, correction: str) -> tuple[bool, float]:
    """The decision and threshold after a multiple-testing correction, exactly as alibi-detect
    decides them (Bonferroni: any p < p_val / n; FDR: Benjamini-Hochberg)."""
    n = len(p_values)
    if correction == "bonferroni":
        threshold = p_val / n
        return bool((p_values < threshold).any()), threshold
    ranks = np.arange(1, n + 1)
    q_threshold = p_val * ranks / n
    below = np.sort(p_values) < q_threshold
    if below.any():
        return True, float(q_threshold[np.where(below)[0].max()])
    return False, float(q_threshold.min())


@dataclass(frozen=True)
class TabularReference:
    """A reference sample, coded once: numeric matrix and categorical codes."""

    numeric: list[str]
    categorical: list[str]
    categories: dict[str, list]
    values: dict[str, np.ndarray]

    @classmethod
    def build(cls, columns: Mapping[str, Any], numeric: list[str], categorical: list[str]) -> TabularReference:
        categories = {name: sorted({str(v) for v in columns[name]}) for name in categorical}
        values = {name: np.asarray(columns[name], dtype=np.float64) for name in numeric}
        for name in categorical:
            values[name] = code(columns[name], categories[name])
        return cls(numeric, categorical, categories, values)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def coded(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """A window's columns coded like the reference."""
        out = {name: np.asarray(columns[name], dtype=np.float64) for name in self.numeric}
        for name in self.categorical:
            out[name] = code(columns[name], self.categories[name])
        return out

    def matrix(self, coded: dict[str, np.ndarray]) -> np.ndarray:
        """Columns side by side in feature order (for alibi's TabularDrift)."""
        return np.column_stack([coded[name] for name in self.features])

    def embedding(self, coded: dict[str, np.ndarray]) -> np.ndarray:
        """Numeric standardised by the reference, categorical one-hot: the multivariate detectors' input."""
        parts = []
        for name in self.numeric:
            ref = self.values[name]
            parts.append(((coded[name] - ref.mean()) / (ref.std() or 1.0))[:, None])
        for name in self.categorical:
            width = len(self.categories[name])
            codes = coded[name].astype(np.int64)
            onehot = np.zeros((len(codes), width), dtype=np.float64)
            known = codes < width
            onehot[np.where(known)[0], codes[known]] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32)


def code(values: Sequence, categories: list[str]) -> np.ndarray:
    """Integer codes of categorical values (compared as text); values the reference never had get
    codes past the reference's, in the order they first appear. A check codes its categorical
    columns on every window, so each distinct value is looked up once (pandas hashes the rest)."""
    import pandas as pd

    column = np.asarray(values, dtype=object)
    positions, distinct = pd.factorize(column)
    if (positions < 0).any():  # a missing value (None, NaN) is coded by its text like any other
        distinct, positions = column, np.arange(len(column))
    index = {c: i for i, c in enumerate(categories)}
    codes = np.empty(len(distinct), dtype=np.float64)
    for position, value in enumerate(distinct):  # in the order they first appear
        key = str(value)
        if key not in index:
            index[key] = len(index)
        codes[position] = index[key]
    return codes[positions]


class FeatureDrift(Protocol):
    """A feature-wise drift test against one version's reference."""

    name: str

    def test(self, window: Mapping[str, Any]) -> FeatureTest:
        """Test a window (feature name → values)."""


class ScipyFeatureDrift:
    """KS / Chi-squared with scipy.stats and the same corrections as alibi-detect."""

    name = "scipy"

    def __init__(self, reference: TabularReference, p_val: float, correction: str) -> None:
        self.reference, self.p_val, self.correction = reference, p_val, correction
        self.numeric = KSReference.of(reference.values, reference.numeric)

    def test(self, window: Mapping[str, Any]) -> FeatureTest:
        coded = self.reference.coded(window)
        p_values, distances = feature_tests(self.reference.values, coded, set(self.reference.categorical), self.numeric)
        ordered = np.array([p_values[name] for name in self.reference.features])
        drift, threshold = corrected(ordered, self.p_val, self.correction)
        return FeatureTest(p_values, distances, threshold, drift)


def feature_tests(reference: Mapping[str, np.ndarray], window: Mapping[str, np.ndarray], categorical: set[str],
                  numeric: KSReference | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """Per coded column: p-value and statistic of KS (numeric) or Chi-squared (categorical), as
    alibi-detect's TabularDrift computes them (``numeric``: the reference's numeric columns sorted
    once, in the reference's order, when the caller keeps them)."""
    from scipy.stats import chi2_contingency

    names = [name for name in reference if name not in categorical]
    numeric = numeric or KSReference.of(reference, names)
    p_values, distances = {}, {}
    if names:
        statistics, p = numeric.test(np.column_stack([np.asarray(window[name], dtype=np.float64) for name in names]))
        for i, name in enumerate(names):
            distances[name], p_values[name] = float(statistics[i]), float(p[i])
    for name in reference:
        if name not in categorical:
            continue
        ref, cur = reference[name], window[name]
        present = np.union1d(np.unique(ref), np.unique(cur))
        table = np.vstack([[np.sum(ref == v) for v in present], [np.sum(cur == v) for v in present]])
        if table.shape[1] < 2:
            distances[name], p_values[name] = 0.0, 1.0
            continue
        statistic, p_value, _, _ = chi2_contingency(table)
        distances[name], p_values[name] = float(statistic), float(p_value)
    return {name: p_values[name] for name in reference}, {name: distances[name] for name in reference}


def feature_p_values(reference: Mapping[str, np.ndarray], window: Mapping[str, np.ndarray],
                     categorical: set[str]) -> dict[str, float]:
    """Per coded column, the p-value of :func:`feature_tests`."""
    return feature_tests(reference, window, categorical)[0]


class AlibiFeatureDrift:
    """alibi-detect's TabularDrift (KS numeric, Chi-squared categorical), built once per version, its
    numeric columns scored against the reference sorted once (:mod:`raymlops.monitor.alibi_tabular`)."""

    name = "alibi"

    def __init__(self, reference: TabularReference, p_val: float, correction: str) -> None:
        try:
            from raymlops.monitor.alibi_tabular import SortedTabularDrift
        except ImportError as exc:  # pragma: no cover - alibi-detect is a core dependency
            raise NotAvailableError(feature="alibi drift backend", reason=f"alibi-detect is not importable ({exc}); "
                                    "set detectors.backend: scipy") from None
        self.reference = reference
        categorical = {i: None for i, name in enumerate(reference.features) if name in reference.categorical}
        self.detector = SortedTabularDrift(reference.matrix(reference.values), p_val=p_val, correction=correction,
                                           categories_per_feature=categorical or None)

    def test(self, window: Mapping[str, Any]) -> FeatureTest:
        result = self.detector.predict(self.reference.matrix(self.reference.coded(window)), drift_type="batch",
                                       return_p_val=True, return_distance=True)["data"]
        names = self.reference.features
        return FeatureTest({n: float(p) for n, p in zip(names, result["p_val"])},
                           {n: float(d) for n, d in zip(names, result["distance"])},
                           float(np.min(result["threshold"])), bool(result["is_drift"]))


#: Feature-wise backends by the name used in ``detectors.backend`` / the version's detector.json.
BACKENDS: dict[str, type] = {"alibi": AlibiFeatureDrift, "scipy": ScipyFeatureDrift}


def build_feature_drift(backend: str, reference: TabularReference, p_val: float, correction: str) -> FeatureDrift:
    """The feature-wise test called ``backend`` (a key of :data:`BACKENDS` or ``package.module:Class``).

    Raises:
        ConfigError: an unknown backend.
    """
    cls = load_plugin(backend, BACKENDS, "backend", "<detector config>")
    return cls(reference, p_val, correction)


class MMDTest:
    """alibi-detect's MMDDrift — or LSDDDrift with ``method="lsdd"`` — (PyTorch backend,
    permutation test) on a subsampled reference."""

    def __init__(self, reference: TabularReference, rows: int, p_val: float, n_permutations: int, seed: int = 0,
                 method: str = "mmd") -> None:
        from alibi_detect.cd import LSDDDrift, MMDDrift

        self.reference = reference
        x_ref = reference.embedding(reference.values)
        if len(x_ref) > rows:
            x_ref = x_ref[np.random.default_rng(seed).choice(len(x_ref), rows, replace=False)]
        test = LSDDDrift if method == "lsdd" else MMDDrift
        self.detector = test(x_ref.astype(np.float32), backend="pytorch", p_val=p_val, n_permutations=n_permutations)

    def test(self, window: Mapping[str, Any]) -> dict[str, Any]:
        result = self.detector.predict(self.reference.embedding(self.reference.coded(window)).astype(np.float32))["data"]
        return {"p_value": float(result["p_val"]), "distance": float(result["distance"]),
                "threshold": float(result["threshold"]), "drift": bool(result["is_drift"])}


def build_online(kind: str, reference: TabularReference, rows: int, ert: float, window_size: int, n_bootstraps: int,
                 seed: int = 0):
    """A freshly calibrated alibi-detect online detector (slow: seconds to a minute; do it once per version)."""
    x_ref = reference.embedding(reference.values)
    if len(x_ref) > rows:
        x_ref = x_ref[np.random.default_rng(seed).choice(len(x_ref), rows, replace=False)]
    if kind == "mmd":
        from alibi_detect.cd import MMDDriftOnline

        return MMDDriftOnline(x_ref, ert=ert, window_size=window_size, backend="pytorch", n_bootstraps=n_bootstraps,
                              verbose=False)
    from alibi_detect.cd import CVMDriftOnline

    numeric = x_ref[:, :len(reference.numeric)]
    return CVMDriftOnline(numeric, ert=ert, window_sizes=[window_size], n_bootstraps=n_bootstraps, verbose=False)


def online_input(kind: str, reference: TabularReference, window: Mapping[str, Any]) -> np.ndarray:
    """Rows for an online detector built by :func:`build_online`."""
    x = reference.embedding(reference.coded(window))
    return x if kind == "mmd" else x[:, :len(reference.numeric)]
