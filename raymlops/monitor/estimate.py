"""Accuracy without labels: confidence-based performance estimation (in the spirit of NannyML's
CBPE). Pure.

On the version's out-of-sample reference the monitor knows, per row, the model's confidence
(the probability of the class it predicted) and whether it was right. An isotonic regression of
correctness on confidence calibrates the confidence into ``P(correct | confidence)``; the
expected accuracy of any set of live rows is the mean of that calibrated probability. It holds
while the relation between confidence and correctness holds (covariate shift, not concept
drift), which is why it is shown next to the accuracy measured from feedback labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, Union

import numpy as np

#: Reference rows with labels needed before an estimator is fit.
MIN_ROWS = 30


@dataclass(frozen=True)
class AccuracyEstimator:
    """``P(correct | confidence)`` as a monotone step function (isotonic regression's knots).

    Attributes:
        knots_x, knots_y: confidence values and the calibrated probability at each.
        reference_accuracy: the reference's realised accuracy.
        rows: reference rows it was fit on.
    """

    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]
    reference_accuracy: float
    rows: int

    @classmethod
    def fit(cls, confidence: Sequence[float], correct: Sequence[bool]) -> AccuracyEstimator:
        """Fit on the reference's confidences and correctness.

        Raises:
            ValueError: fewer than :data:`MIN_ROWS` usable rows.
        """
        from sklearn.isotonic import IsotonicRegression

        x = np.asarray(confidence, dtype=np.float64)
        y = np.asarray(correct, dtype=np.float64)
        keep = np.isfinite(x)
        x, y = x[keep], y[keep]
        if len(x) < MIN_ROWS:
            raise ValueError(f"{len(x)} reference rows with a confidence and a label; {MIN_ROWS} needed")
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        return cls(tuple(float(v) for v in model.X_thresholds_), tuple(float(v) for v in model.y_thresholds_),
                   float(y.mean()), int(len(x)))

    def probabilities(self, confidence: Union[Sequence[float], np.ndarray]) -> np.ndarray:
        """``P(correct)`` per row (rows without a confidence are dropped)."""
        x = np.asarray(confidence, dtype=np.float64)
        x = x[np.isfinite(x)]
        return np.interp(x, self.knots_x, self.knots_y)

    def estimate(self, confidence: Union[Sequence[float], np.ndarray]) -> float | None:
        """The expected accuracy of rows with these confidences; None without any."""
        p = self.probabilities(confidence)
        return float(p.mean()) if p.size else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {"reference_accuracy": round(self.reference_accuracy, 6), "rows": self.rows}
