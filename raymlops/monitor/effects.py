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


def wasserstein_std(reference: np.ndarray, window: np.ndarray) -> float:
    """Wasserstein-1 distance in reference standard deviations (absolute distance when the
    reference is constant)."""
    from scipy.stats import wasserstein_distance

    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(window, dtype=np.float64)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        return 0.0
    scale = float(ref.std()) or 1.0
    return float(wasserstein_distance(ref, cur) / scale)


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


def effect_sizes(reference: Mapping[str, np.ndarray], window: Mapping[str, np.ndarray],
                 categorical: set[str]) -> dict[str, float]:
    """Per column: PSI for categorical (coded) columns, Wasserstein in reference std otherwise."""
    return {name: round(psi(ref, window[name]) if name in categorical else wasserstein_std(ref, window[name]), 6)
            for name, ref in reference.items()}


def large_enough(effects: Mapping[str, float], categorical: set[str], min_wasserstein: float,
                 min_psi: float) -> dict[str, bool]:
    """Per column: whether its effect reaches the minimum of its kind."""
    return {name: value >= (min_psi if name in categorical else min_wasserstein) for name, value in effects.items()}
