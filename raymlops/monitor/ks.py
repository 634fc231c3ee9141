"""Two-sample Kolmogorov-Smirnov tests of many columns against a reference sorted once. Pure.

A window check tests every numeric feature of a version against the same reference. scipy's
``ks_2samp`` sorts both samples on every call and evaluates the exact distribution of the
statistic (``kstwo``, a Python-level recursion) for each column, and its argument handling costs
as much again: three quarters of a window check went there. Here the reference columns are sorted
once per version, a window's columns are sorted together, and each distinct statistic's p-value is
computed once and remembered (a version's windows have one size, so statistics repeat, and discrete
features repeat them often). The statistic and p-value are scipy's two-sided ``asymp`` ones
(alibi-detect's TabularDrift calls it so), bit for bit: the same operations on the same values.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping

import numpy as np

#: Distinct (statistic, effective size) p-values remembered per process.
CACHE_SIZE = 16384

_p_values: OrderedDict[tuple[float, float], float] = OrderedDict()


def effective_size(n1: int, n2: int) -> float:
    """``m·n/(m+n)`` rounded, the sample size scipy's ``asymp`` method evaluates ``kstwo`` at."""
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.round(m * n / (m + n)))


def kstwo_sf(statistics: np.ndarray, en: float) -> np.ndarray:
    """``scipy.stats.kstwo.sf(d, en)`` clipped to [0, 1] for each statistic (NaN stays NaN), each
    distinct value computed once in one vectorised call and remembered across calls."""
    from scipy.stats import kstwo

    statistics = np.asarray(statistics, dtype=np.float64)
    out = np.full(statistics.shape, np.nan)
    finite = ~np.isnan(statistics)
    distinct, inverse = np.unique(statistics[finite], return_inverse=True)
    known = np.array([_p_values.get((float(d), en), np.nan) for d in distinct])
    missing = np.isnan(known)
    if missing.any():
        known[missing] = np.clip(kstwo.sf(distinct[missing], en), 0.0, 1.0)
        for d, p in zip(distinct[missing], known[missing]):
            _p_values[(float(d), en)] = float(p)
        while len(_p_values) > CACHE_SIZE:
            _p_values.popitem(last=False)
    out[finite] = known[inverse.ravel()]
    return out


class KSReference:
    """Numeric reference columns (rows × columns), each sorted once, to test windows against."""

    def __init__(self, columns: np.ndarray) -> None:
        columns = np.asarray(columns, dtype=np.float64)
        columns = columns[:, None] if columns.ndim == 1 else columns
        self.sorted = np.sort(columns, axis=0)
        self.has_nan = np.isnan(columns).any(axis=0)

    @classmethod
    def of(cls, columns: Mapping[str, Any], names: list[str]) -> KSReference:
        """The named columns of a mapping (name → values), side by side in that order."""
        rows = len(next(iter(columns.values()), ()))
        matrix = (np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in names]) if names
                  else np.empty((rows, 0)))
        return cls(matrix)

    @property
    def rows(self) -> int:
        """Reference rows."""
        return self.sorted.shape[0]

    def test(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided KS statistic and p-value of each window column (rows × columns, in the
        reference's order) as ``scipy.stats.ks_2samp(ref, col, method="asymp")`` gives them; a
        column with a missing value (NaN) on either side gets NaN for both, as scipy propagates it.

        Raises:
            ValueError: an empty window or a different number of columns.
        """
        window = np.asarray(window, dtype=np.float64)
        window = window[:, None] if window.ndim == 1 else window
        if window.shape[0] == 0 or self.rows == 0:
            raise ValueError("a KS test needs at least one row on each side")
        if window.shape[1] != self.sorted.shape[1]:
            raise ValueError(f"window has {window.shape[1]} columns, the reference {self.sorted.shape[1]}")
        ordered = np.sort(window, axis=0)
        n1, n2 = self.rows, ordered.shape[0]
        missing = self.has_nan | np.isnan(window).any(axis=0)
        statistics = np.full(window.shape[1], np.nan)
        for column in np.flatnonzero(~missing):
            reference, current = self.sorted[:, column], ordered[:, column]
            pooled = np.concatenate([reference, current])
            differences = (np.searchsorted(reference, pooled, side="right") / n1
                           - np.searchsorted(current, pooled, side="right") / n2)
            below = np.clip(-differences[np.argmin(differences)], 0, 1)
            above = differences[np.argmax(differences)]
            statistics[column] = below if below > above else above
        return statistics, kstwo_sf(statistics, effective_size(n1, n2))
