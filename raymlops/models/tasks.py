"""Offline metrics per task, computed from a model's answer through the contract. Pure numpy.

Classification: accuracy, log loss, macro F1 (and the majority-class baseline).
Regression: RMSE, MAE, R² (and the RMSE of always predicting the mean).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.models.contract import Prediction

#: Metrics where lower is better (the offline gate flips its comparison for them).
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})
#: The offline gate's metric when the config leaves it unset.
DEFAULT_GATE_METRIC = {"classification": "accuracy", "regression": "rmse"}
#: The metrics each task reports (a gate metric must be one of its task's).
TASK_METRICS = {"classification": ("accuracy", "log_loss", "macro_f1"), "regression": ("rmse", "mae", "r2")}


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better."""
    return metric not in LOWER_IS_BETTER


def classification_metrics(labels: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """accuracy, log loss and macro F1 of class probabilities against integer labels."""
    predicted = proba.argmax(axis=1)
    eps = 1e-12
    log_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(labels)), labels], eps, 1.0))))
    f1s = []
    for cls in range(proba.shape[1]):
        tp = np.sum((predicted == cls) & (labels == cls))
        fp = np.sum((predicted == cls) & (labels != cls))
        fn = np.sum((predicted != cls) & (labels == cls))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0)
    return {"accuracy": float(np.mean(predicted == labels)), "log_loss": log_loss, "macro_f1": float(np.mean(f1s))}


def regression_metrics(targets: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of predicted values against the true targets."""
    targets, values = np.asarray(targets, dtype=np.float64), np.asarray(values, dtype=np.float64)
    errors = values - targets
    total = float(np.sum((targets - targets.mean()) ** 2)) if len(targets) else 0.0
    return {"rmse": float(np.sqrt(np.mean(errors ** 2))), "mae": float(np.mean(np.abs(errors))),
            "r2": 1.0 - float(np.sum(errors ** 2)) / total if total > 0 else 0.0}


def majority_baseline(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class."""
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def task_metrics(signature: DatasetSchema, labels: Sequence, prediction: Prediction) -> dict[str, float]:
    """The task's metrics of an answer against the true labels (class names, or numbers)."""
    if signature.is_classification:
        index = {name: i for i, name in enumerate(signature.classes)}
        try:
            encoded = np.fromiter((index[str(v)] for v in labels), dtype=np.int64, count=len(labels))
        except KeyError as exc:
            raise ValueError(f"label {exc.args[0]!r} is not one of the classes {list(signature.classes)}") from None
        proba = prediction.outputs.get("probabilities")
        if proba is None:  # a classifier without probabilities: one-hot of its classes
            proba = np.eye(len(signature.classes))[[index[str(c)] for c in prediction.predicted]]
        return {**classification_metrics(encoded, np.asarray(proba)), "majority_baseline": majority_baseline(encoded)}
    targets = np.asarray(labels, dtype=np.float64)
    baseline = float(np.sqrt(np.mean((targets - targets.mean()) ** 2))) if len(targets) else 0.0
    return {**regression_metrics(targets, np.asarray(prediction.predicted, dtype=np.float64)),
            "mean_baseline_rmse": baseline}
