"""How large a shift is, next to how significant: effect sizes per feature and for the output.
Pure.

- Numeric values: the Wasserstein-1 distance between reference and window, in reference
  standard deviations (0.1 = the window's distribution moved about a tenth of a standard
  deviation on average; a mean shift of d std gives d).
- Categories (and a classifier's predicted classes): the population stability index,
  ``Σ (w − r)·ln(w / r)`` over categories with shares ``r`` (reference) and ``w`` (window),
  shares floored at ``1e-4`` so a new or vanished category counts but stays finite. The usual
  reading: < 0.1 no real change, 0.1–0.25 moderate, > 0.25 large.

At large windows a negligible shift is significant; an alarm therefore needs both a p-value
under the calibrated threshold and an effect of at least the configured minimum.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Mapping

import numpy as np

#: Shares are floored at this before PSI's logarithm.
PSI_FLOOR = 1e-4
#: Elements of the quantile-difference matrix computed at once (columns are taken in chunks below it).
BLOCK_ELEMENTS = 2_000_000
#: Largest reference-quantile matrix kept per window size (elements; 32 MB): a larger reference
#: measures its columns one at a time.
QUANTILE_ELEMENTS = 4_000_000


def _finite_sorted(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.sort(values[np.isfinite(values)])


def wasserstein_sorted(reference: np.ndarray, window: np.ndarray) -> float:
    """Wasserstein-1 distance of two sorted, finite, non-empty samples (the area between their
    empirical CDFs, as ``scipy.stats.wasserstein_distance`` computes it, without its per-call
    checks: a window's feature-wise effects are 20-odd of these)."""
    values = np.concatenate([reference, window])
    values.sort(kind="mergesort")
    edges = values[:-1]
    ref_cdf = np.searchsorted(reference, edges, "right") / reference.size
    cur_cdf = np.searchsorted(window, edges, "right") / window.size
    return float(np.sum(np.abs(ref_cdf - cur_cdf) * np.diff(values)))


def wasserstein_std(reference: np.ndarray, window: np.ndarray) -> float:
    """Wasserstein-1 distance in reference standard deviations (absolute distance when the
    reference is constant)."""
    return SortedReference(reference).wasserstein_std(window)


class SortedReference:
    """One numeric reference column, sorted and its spread taken once, for the effects of many windows."""

    def __init__(self, reference: np.ndarray) -> None:
        self.values = _finite_sorted(reference)
        self.scale = float(self.values.std()) if self.values.size else 1.0

    def wasserstein_std(self, window: np.ndarray) -> float:
        """Wasserstein-1 distance of ``window`` from the reference, in reference standard deviations."""
        cur = _finite_sorted(window)
        if self.values.size == 0 or cur.size == 0:
            return 0.0
        return wasserstein_sorted(self.values, cur) / (self.scale or 1.0)


def psi(reference_codes: np.ndarray, window_codes: np.ndarray) -> float:
    """Population stability index of two samples of category codes."""
    ref = np.asarray(reference_codes).astype(np.int64)
    cur = np.asarray(window_codes).astype(np.int64)
    if ref.size == 0 or cur.size == 0:
        return 0.0
    width = int(max(ref.max(initial=0), cur.max(initial=0))) + 1
    r = np.maximum(np.bincount(ref, minlength=width) / ref.size, PSI_FLOOR)
    w = np.maximum(np.bincount(cur, minlength=width) / cur.size, PSI_FLOOR)
    return float(np.sum((w - r) * np.log(w / r)))


@lru_cache(maxsize=8)
def quantile_steps(n1: int, n2: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The steps on which the empirical quantile functions of an ``n1``- and an ``n2``-value sample
    are both constant: for each, the index into either sorted sample and the step's width in
    probability. ``Σ width · |a[ia] − b[ib]|`` is then the Wasserstein-1 distance of sorted ``a``
    and ``b`` (``∫₀¹ |Q_a(u) − Q_b(u)| du``) — the same for every window of one size against one
    reference, so it is kept."""
    points = np.union1d(np.arange(1, n1 + 1, dtype=np.int64) * n2, np.arange(1, n2 + 1, dtype=np.int64) * n1)
    widths = np.diff(points, prepend=0) / (n1 * n2)
    return (points + n2 - 1) // n2 - 1, (points + n1 - 1) // n1 - 1, widths


class ReferenceEffects:
    """Effect sizes of windows against one reference (coded columns): numeric columns sorted once,
    and those without missing values measured together (:func:`quantile_steps`)."""

    def __init__(self, reference: Mapping[str, np.ndarray], categorical: set[str]) -> None:
        self.reference, self.categorical = reference, categorical
        self.sorted = {name: SortedReference(ref) for name, ref in reference.items() if name not in categorical}
        self.together = [name for name, ref in self.sorted.items() if ref.values.size and
                         ref.values.size == len(reference[name])]
        self.block = (np.stack([self.sorted[name].values for name in self.together]) if self.together
                      else np.empty((0, 0)))  # one sorted reference column per row
        self.scales = np.array([self.sorted[name].scale or 1.0 for name in self.together])
        self._quantiles: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _together(self, window: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Wasserstein in reference std of the columns kept together whose window values are all finite."""
        if not self.together or len(window[self.together[0]]) == 0 or \
                len(self.together) * (self.block.shape[1] + len(window[self.together[0]])) > QUANTILE_ELEMENTS:
            return {}
        values = np.stack([np.asarray(window[name], dtype=np.float64) for name in self.together])
        rows = np.flatnonzero(np.isfinite(values).all(axis=1))
        ordered = np.sort(values[rows] if len(rows) < len(values) else values, axis=1)
        reference, ib, widths = self._steps(ordered.shape[1])
        distances = np.empty(len(rows))
        step = max(1, BLOCK_ELEMENTS // max(len(widths), 1))
        for start in range(0, len(rows), step):
            part = slice(start, start + step)
            gaps = np.take(ordered[part], ib, axis=1)
            gaps -= reference[rows[part]]
            distances[part] = np.einsum("ij,j->i", np.abs(gaps, out=gaps), widths)
        return {self.together[r]: float(d / self.scales[r]) for r, d in zip(rows, distances)}

    def _steps(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For windows of ``rows`` rows: the reference's quantiles on each step (one row per column;
        kept for the two window sizes used last), the window's index on each step, and the widths."""
        steps = self._quantiles.pop(rows, None)
        if steps is None:
            ia, ib, widths = quantile_steps(self.block.shape[1], rows)
            steps = (np.ascontiguousarray(self.block[:, ia]), ib, widths)
            if len(self._quantiles) >= 2:  # the least recently used size goes (a full window's stays)
                self._quantiles.pop(next(iter(self._quantiles)))
        self._quantiles[rows] = steps
        return steps

    def of(self, window: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Per column: PSI for categorical (coded) columns, Wasserstein in reference std otherwise."""
        together = self._together(window)
        return {name: round(psi(ref, window[name]) if name in self.categorical
                            else together[name] if name in together
                            else self.sorted[name].wasserstein_std(window[name]), 6)
                for name, ref in self.reference.items()}


def effect_sizes(reference: Mapping[str, np.ndarray], window: Mapping[str, np.ndarray],
                 categorical: set[str]) -> dict[str, float]:
    """Per column: PSI for categorical (coded) columns, Wasserstein in reference std otherwise."""
    return ReferenceEffects(reference, categorical).of(window)


def large_enough(effects: Mapping[str, float], categorical: set[str], min_wasserstein: float,
                 min_psi: float) -> dict[str, bool]:
    """Per column: whether its effect reaches the minimum of its kind."""
    return {name: value >= (min_psi if name in categorical else min_wasserstein) for name, value in effects.items()}
