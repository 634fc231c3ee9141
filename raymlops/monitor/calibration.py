"""Thresholds calibrated on data the model did not train on, and an exact test for predicted
classes. Pure.

A window test's nominal p-value is not what it promises on real data: KS is conservative on
discrete values (pixels, counts), the smallest of many correlated per-feature p-values is far
from Bonferroni's bound, and a reference the model has fit makes its predictions look unlike
live ones. So each version's thresholds are calibrated on its out-of-sample reference:

1. Draw pseudo-windows under no drift: permute the reference, cut it into a pseudo-reference
   and a pseudo-window (the window's size, at most half the reference), run the test.
2. The test's statistic is the smallest p-value of the window (one test: its p-value). Its null
   tail is close to linear — ``P(p_min < t) ≈ c·t`` for small ``t`` (``c`` is the effective
   number of independent tests; below 1 for a conservative test). ``c`` is read off the
   simulated tail at quantile ``q``: ``c = q / t_q``.
3. The threshold that spends a per-look false-alarm probability ``α`` is then ``t = α / c``,
   kept between ``α / m`` (Bonferroni over ``m`` tests, valid whatever the correlation) and
   ``α / 0.1`` (a test at most ten times conservative).

The predicted classes of a classifier are tested exactly instead: the permutation
distribution of the chi-squared statistic of the 2×K table (reference vs window), drawn from
the multivariate hypergeometric — valid for rare classes where the chi-squared approximation
is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

#: Least conservatism factor assumed (a test at most this many times too strict).
MIN_FACTOR = 0.1


@dataclass(frozen=True)
class Calibration:
    """A calibrated threshold.

    Attributes:
        alpha: the per-look false-alarm probability it spends.
        threshold: reject (alarm) when the window's smallest p-value is below it.
        factor: the estimated effective number of tests (``α / threshold``).
        windows: null pseudo-windows simulated.
        window_rows, reference_rows: their sizes.
    """

    alpha: float
    threshold: float
    factor: float
    windows: int
    window_rows: int
    reference_rows: int

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-ready dict."""
        return {k: (round(v, 8) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def window_masks(rows: int, window_rows: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random splits of ``rows`` reference rows (``count × rows`` booleans, True = in the
    pseudo-window of ``min(window_rows, rows // 2)`` rows; the rest is the pseudo-reference)."""
    size = max(min(window_rows, rows // 2), 2)
    keys = rng.random((count, rows))
    return keys < np.partition(keys, size - 1, axis=1)[:, size - 1:size] + 1e-15


def ks_statistics(values: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, float]:
    """Two-sample KS statistics of every split, and the effective sample size ``m·n/(m+n)``
    (rounded) scipy's ``asymp`` method evaluates them at."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    last_of_tie = np.append(ordered[1:] != ordered[:-1], True)
    inside = masks[:, order]
    n = float(inside[0].sum())
    m = inside.shape[1] - n
    cdf_window = np.cumsum(inside, axis=1)[:, last_of_tie] / n
    cdf_reference = np.cumsum(~inside, axis=1)[:, last_of_tie] / m
    return np.abs(cdf_window - cdf_reference).max(axis=1), float(np.round(m * n / (m + n)))


def ks_sf(d: np.ndarray, en: float) -> np.ndarray:
    """KS p-values of statistics ``d`` (:func:`raymlops.monitor.ks.kstwo_sf`: each distinct value
    computed once), rounded to 12 digits first so the float noise of equal statistics of different
    splits does not make them distinct."""
    from raymlops.monitor.ks import kstwo_sf

    return kstwo_sf(np.round(d, 12), en)


def chi2_p_values(codes: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Chi-squared test p-values (scipy's ``chi2_contingency``, Yates' correction at one degree
    of freedom, as alibi-detect's) of every split's category counts."""
    from scipy.stats import chi2

    present, coded = np.unique(codes, return_inverse=True)
    if len(present) < 2:
        return np.ones(len(masks))
    onehot = np.eye(len(present))[coded.ravel()]
    window = masks.astype(np.float64) @ onehot
    table = np.stack([onehot.sum(axis=0) - window, window], axis=1)
    dof = len(present) - 1
    if dof == 1:
        rows, columns = table.sum(axis=2, keepdims=True), table.sum(axis=1, keepdims=True)
        expected = rows * columns / table.sum(axis=(1, 2), keepdims=True)
        diff = expected - table
        table = table + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    return chi2.sf(chi2_statistic(table), dof)


def null_min_p(reference: Mapping[str, np.ndarray], categorical: set[str], window_rows: int, windows: int,
               rng: np.random.Generator) -> np.ndarray:
    """The smallest per-column p-value of the feature-wise test (KS numeric, chi-squared
    categorical) over ``windows`` null pseudo-windows cut from the coded reference columns."""
    rows = len(next(iter(reference.values())))
    masks = window_masks(rows, window_rows, windows, rng)
    smallest = np.ones(windows)
    statistics, en = [], 0.0
    for name, values in reference.items():
        values = np.asarray(values, dtype=np.float64)
        if name in categorical:
            smallest = np.minimum(smallest, chi2_p_values(values, masks))
        else:
            d, en = ks_statistics(values, masks)
            statistics.append(d)
    if statistics:
        smallest = np.minimum(smallest, ks_sf(np.stack(statistics), en).min(axis=0))
    return smallest


def calibrate(null_p: np.ndarray, alpha: float, tests: int, tail: float = 0.1, window_rows: int = 0,
              reference_rows: int = 0) -> Calibration:
    """The threshold spending ``alpha`` per look, from the test's smallest p-values on null
    pseudo-windows (``null_p``; ``tests``: p-values the statistic is the minimum of, which bounds
    the factor; ``tail``: the null quantile the factor is read at)."""
    t_q = float(np.quantile(null_p, tail))
    factor = tail / t_q if t_q > 0 else float(tests)
    factor = float(np.clip(factor, MIN_FACTOR, max(tests, 1)))
    return Calibration(alpha, alpha / factor, factor, len(null_p), window_rows, reference_rows)


def chi2_statistic(table: np.ndarray) -> np.ndarray:
    """Pearson's chi-squared of 2×K tables (``table[..., 0, :]`` reference counts, ``[..., 1, :]``
    window counts); columns empty in both are ignored."""
    table = np.asarray(table, dtype=np.float64)
    rows = table.sum(axis=-1, keepdims=True)
    columns = table.sum(axis=-2, keepdims=True)
    total = rows.sum(axis=-2, keepdims=True)
    expected = rows * columns / np.where(total > 0, total, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return terms.sum(axis=(-2, -1))


def exact_class_test(reference_counts: np.ndarray, window_counts: np.ndarray, draws: int,
                     rng: np.random.Generator) -> tuple[float, float]:
    """Chi-squared statistic of reference vs window class counts and its permutation p-value
    (``(1 + #{null ≥ observed}) / (1 + draws)``), the window drawn from the pooled counts. A class
    only one side has (a prediction the reference never made) is a zero count on the other."""
    width = max(len(reference_counts), len(window_counts))
    reference_counts = np.pad(np.asarray(reference_counts, dtype=np.int64), (0, width - len(reference_counts)))
    window_counts = np.pad(np.asarray(window_counts, dtype=np.int64), (0, width - len(window_counts)))
    observed = float(chi2_statistic(np.vstack([reference_counts, window_counts])))
    pooled = reference_counts + window_counts
    n = int(window_counts.sum())
    if n == 0 or (pooled > 0).sum() < 2:
        return observed, 1.0
    null_window = rng.multivariate_hypergeometric(pooled, n, size=draws)
    null = chi2_statistic(np.stack([pooled - null_window, null_window], axis=1))
    p = (1 + int(np.count_nonzero(null >= observed - 1e-9))) / (1 + draws)
    return observed, float(p)


def class_counts(codes: np.ndarray, width: int) -> np.ndarray:
    """Counts of integer codes ``0..width-1`` (codes past ``width`` widen it)."""
    codes = np.asarray(codes).astype(np.int64)
    return np.bincount(codes, minlength=max(width, int(codes.max(initial=-1)) + 1))


def draws_for(alpha: float, least: int = 1000) -> int:
    """Permutation draws that resolve a p-value threshold ``alpha`` (about 20 null exceedances)."""
    return int(max(least, np.ceil(20 / max(alpha, 1e-6))))
