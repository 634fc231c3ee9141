"""Feature preprocessing fit on the training split only, saved with the model, and run
unchanged by training, offline evaluation and every serving replica.

Numeric features are standardized (mean/std of the training split); categorical features
are one-hot encoded over the categories the schema knows, plus one column for anything
unseen. A regression's numeric target is standardized too (its mean and std are kept, so
predictions come back in the label's units). Pure numpy: no torch, no Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from raymlops.data.schema import DatasetSchema


@dataclass(frozen=True)
class Preprocessor:
    """Fitted preprocessing state."""

    numeric: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    categorical: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...] = field(default=())
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def output_dim(self) -> int:
        """Width of the feature matrix."""
        return len(self.numeric) + sum(len(c) + 1 for c in self.categories)

    @classmethod
    def fit(cls, schema: DatasetSchema, numeric_columns: Mapping[str, np.ndarray]) -> Preprocessor:
        """Fit on the training split's numeric columns (and, for a regression, its label column);
        categories come from the schema."""
        means, stds = [], []
        for name in schema.numeric:
            mean, std = _moments(numeric_columns[name])
            means.append(mean)
            stds.append(std)
        cats = tuple(tuple(f.categories or ()) for f in schema.features if f.kind == "categorical")
        target = _moments(numeric_columns[schema.label]) if not schema.is_classification else (0.0, 1.0)
        return cls(tuple(schema.numeric), tuple(means), tuple(stds), tuple(schema.categorical), cats, schema.classes,
                   *target)

    @property
    def is_regression(self) -> bool:
        """True when the label is a numeric target (no classes)."""
        return not self.classes

    def transform(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        """Feature matrix (float32, rows × output_dim) for a batch given as columns."""
        parts = []
        if self.numeric:
            numeric = np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in self.numeric])
            parts.append((numeric - np.asarray(self.means)) / np.asarray(self.stds))
        for name, known in zip(self.categorical, self.categories):
            values = np.asarray(columns[name]).astype(str)
            index = {category: i for i, category in enumerate(known)}
            codes = np.fromiter((index.get(v, len(known)) for v in values), dtype=np.int64, count=len(values))
            parts.append(np.eye(len(known) + 1)[codes])
        return np.concatenate(parts, axis=1).astype(np.float32)

    def encode_labels(self, labels: Sequence) -> np.ndarray:
        """Class indices (int64) of label values, or a regression's standardized targets (float32);
        unknown classes raise ValueError."""
        if self.is_regression:
            return ((np.asarray(labels, dtype=np.float64) - self.target_mean) / self.target_std).astype(np.float32)
        index = {name: i for i, name in enumerate(self.classes)}
        try:
            return np.fromiter((index[str(v)] for v in labels), dtype=np.int64, count=len(labels))
        except KeyError as exc:
            raise ValueError(f"label {exc.args[0]!r} is not one of the classes {list(self.classes)}") from None

    def decode_targets(self, outputs: np.ndarray) -> np.ndarray:
        """A regression network's outputs back in the label's units."""
        return np.asarray(outputs, dtype=np.float64).reshape(-1) * self.target_std + self.target_mean

    def to_json(self) -> str:
        """Serialize (a plain JSON document, no pickle)."""
        return json.dumps({
            "numeric": self.numeric, "means": self.means, "stds": self.stds, "categorical": self.categorical,
            "categories": self.categories, "classes": self.classes, "target_mean": self.target_mean,
            "target_std": self.target_std,
        }, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Preprocessor:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        return cls(tuple(data["numeric"]), tuple(data["means"]), tuple(data["stds"]), tuple(data["categorical"]),
                   tuple(tuple(c) for c in data["categories"]), tuple(data.get("classes", ())),
                   float(data.get("target_mean", 0.0)), float(data.get("target_std", 1.0)))


def _moments(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean()) if len(values) else 0.0
    std = float(values.std()) if len(values) else 1.0
    return mean, std if std > 1e-12 else 1.0
