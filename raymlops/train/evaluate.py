"""Offline metrics and the reference sample: pure numpy, no Ray."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


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


def majority_baseline(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class."""
    return float(np.bincount(labels).max() / len(labels)) if len(labels) else 0.0


def stratified_sample(table: pa.Table, label: str, rows: int, seed: int) -> pa.Table:
    """Up to ``rows`` rows keeping the label mix of ``table``; deterministic for ``seed``."""
    if table.num_rows <= rows:
        return table
    rng = np.random.default_rng(seed)
    labels = np.asarray(table.column(label).to_pylist(), dtype=object)
    picked = []
    for cls in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == cls)
        take = max(1, int(round(rows * len(members) / len(labels))))
        picked.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return table.take(pa.array(np.sort(np.concatenate(picked))[: max(rows, len(picked))]))
