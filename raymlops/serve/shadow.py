"""Comparing a shadow version's answer with the answer the caller got. Pure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raymlops.models.contract import Prediction

#: Relative difference above which two predicted values disagree (regressions).
VALUE_TOLERANCE = 0.01


@dataclass(frozen=True)
class ShadowComparison:
    """How a shadow answer compares with the live one, row by row."""

    rows: int
    disagreements: int

    @property
    def agreement(self) -> float:
        """Share of rows where both versions predicted the same (1.0 for no rows)."""
        return 1.0 - self.disagreements / self.rows if self.rows else 1.0


def compare(live: Prediction, shadow: Prediction) -> ShadowComparison:
    """Compare the watched outputs (classes, or values within 1 %) of the live and the shadow
    answer for the same rows.

    Raises:
        ValueError: the answers cover different numbers of rows (a broken shadow version).
    """
    answered, shadowed = live.outputs[live.watched], shadow.outputs[shadow.watched]
    if len(answered) != len(shadowed):
        raise ValueError(f"the shadow answered {len(shadowed)} rows for {len(answered)}")
    if answered.dtype.kind in "fiu" and shadowed.dtype.kind in "fiu":
        same = np.isclose(answered.astype(np.float64), shadowed.astype(np.float64), rtol=VALUE_TOLERANCE)
    else:
        same = answered == shadowed
    return ShadowComparison(len(answered), int(len(answered) - np.count_nonzero(same)))
