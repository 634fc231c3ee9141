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

from typing import Mapping

import numpy as np

#: Shares are floored at this before PSI's logarithm.
PSI_FLOOR = 1e-4


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


class ReferenceEffects:
    """Effect sizes of windows against one reference (coded columns): numeric columns sorted once."""

    def __init__(self, reference: Mapping[str, np.ndarray], categorical: set[str]) -> None:
        self.reference, self.categorical = reference, categorical
        self.sorted = {name: SortedReference(ref) for name, ref in reference.items() if name not in categorical}

    def of(self, window: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Per column: PSI for categorical (coded) columns, Wasserstein in reference std otherwise."""
        return {name: round(psi(ref, window[name]) if name in self.categorical
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
