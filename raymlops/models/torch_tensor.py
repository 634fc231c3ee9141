"""The ``torch-tensor`` flavor: any ``torch.nn.Module`` over tensor inputs (images, sequences),
with a standardizing preprocessing step, a classification or regression head, and an
embedding the drift monitor watches.

A network that has ``embed(x)`` and ``head(e)`` (``forward = head(embed(x))``, as
:func:`raymlops.models.builders.small_cnn`) has its embedding watched; any other is watched on
its flattened input. The watched columns (``emb_0``, …) are part of the version's signature,
so the monitor tests exactly what the replicas record. Files of a version besides the common
ones: ``model.json`` (flavor, builder, parameters), ``model.safetensors``, ``preprocessing.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema, FeatureSpec
from raymlops.models.contract import (
    Columns,
    Model,
    Prediction,
    logits_prediction,
    values_prediction,
)
from raymlops.models.torch_tabular import (
    ModelSpec,
    current_device,
    load_network,
    save_torch_tabular,
    state_dict_of,
)


@dataclass(frozen=True)
class TensorPreprocessor:
    """Standardization of one tensor input by the training split's mean and std, reshaping to
    ``shape`` per row; the labels as class indices or a standardized target."""

    name: str
    shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 1.0
    classes: tuple[str, ...] = field(default=())
    target_mean: float = 0.0
    target_std: float = 1.0

    @property
    def output_dim(self) -> int:
        """Numbers per row (the builder's ``input_dim``)."""
        return int(np.prod(self.shape))

    @classmethod
    def fit(cls, schema: DatasetSchema, columns: Columns) -> TensorPreprocessor:
        """Fit on the training split (the first tensor input, and a regression's label)."""
        tensor = schema.tensors[0]
        values = stack(columns[tensor.name], tensor.shape)
        std = float(values.std()) or 1.0
        target = (0.0, 1.0)
        if not schema.is_classification:
            labels = np.asarray(columns[schema.label], dtype=np.float64)
            target = (float(labels.mean()), float(labels.std()) or 1.0)
        return cls(tensor.name, tuple(tensor.shape), float(values.mean()), std, schema.classes, *target)

    def transform(self, columns: Columns) -> np.ndarray:
        """Rows × shape, float32, standardized."""
        return ((stack(columns[self.name], self.shape) - self.mean) / self.std).astype(np.float32)

    def encode_labels(self, labels) -> np.ndarray:
        """Class indices (int64), or a regression's standardized targets (float32)."""
        if not self.classes:
            return ((np.asarray(labels, dtype=np.float64) - self.target_mean) / self.target_std).astype(np.float32)
        index = {name: i for i, name in enumerate(self.classes)}
        return np.fromiter((index[str(v)] for v in labels), dtype=np.int64, count=len(labels))

    def decode_targets(self, outputs: np.ndarray) -> np.ndarray:
        """A regression network's outputs back in the label's units."""
        return np.asarray(outputs, dtype=np.float64).reshape(-1) * self.target_std + self.target_mean

    def to_json(self) -> str:
        """Serialize (plain JSON)."""
        return json.dumps({**self.__dict__, "shape": list(self.shape), "classes": list(self.classes)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> TensorPreprocessor:
        """Parse :meth:`to_json` output."""
        data = json.loads(text)
        return cls(**{**data, "shape": tuple(data["shape"]), "classes": tuple(data["classes"])})


def stack(values: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Rows of nested lists or arrays (or one array) as a float64 array of rows × ``shape``."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        array = values.astype(np.float64)
    else:
        array = np.stack([np.asarray(v, dtype=np.float64) for v in values]) if len(values) else np.zeros((0, *shape))
    return array.reshape(-1, *shape)


def embedding_columns(width: int) -> tuple[FeatureSpec, ...]:
    """The watched columns of an embedding ``width`` wide."""
    return tuple(FeatureSpec(name=f"emb_{i}", kind="numeric", dtype="double") for i in range(width))


class TorchTensorModel(Model):
    """Preprocessing + network (+ its embedding) + decoding."""

    flavor = "torch-tensor"
    requirements = ("torch", "numpy")

    def __init__(self, network, preprocessor: TensorPreprocessor, signature: DatasetSchema, spec: ModelSpec,
                 device: str = "cpu") -> None:
        self.device = device
        self.network = network.to(device).eval()
        self.preprocessor = preprocessor
        self.spec = spec
        self.signature = signature if signature.watched else signature.model_copy(
            update={"watched": embedding_columns(self._embed(np.zeros((1, *preprocessor.shape), np.float32))[0].shape[1])})

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> TorchTensorModel:
        """Rebuild the network and load its weights.

        Raises:
            ArtifactIntegrityError: a file is missing.
        """
        network, preprocessing, signature, model_spec = load_network(directory, spec)
        return cls(network, TensorPreprocessor.from_json(preprocessing), signature, model_spec, current_device())

    def _embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding, outputs) of a preprocessed batch."""
        import torch

        tensor = torch.from_numpy(x).to(self.device)
        with torch.no_grad():
            if hasattr(self.network, "embed") and hasattr(self.network, "head"):
                embedded = self.network.embed(tensor)
                outputs = self.network.head(embedded)
            else:
                embedded, outputs = tensor.reshape(len(tensor), -1), self.network(tensor)
        return embedded.float().cpu().numpy(), outputs.float().cpu().numpy()

    def predict(self, columns: Columns) -> Prediction:
        """Classes with probabilities, or values; the embedding goes to the monitor."""
        embedded, outputs = self._embed(self.preprocessor.transform(columns))
        if self.signature.is_classification:
            answer = logits_prediction(outputs, self.signature.classes)
        else:
            answer = values_prediction(self.preprocessor.decode_targets(outputs[:, 0]))
        monitored = {f"emb_{i}": embedded[:, i].astype(np.float64) for i in range(embedded.shape[1])}
        return Prediction(answer.outputs, answer.specs, answer.watched, answer.confidence, monitored)

    def probe(self) -> dict[str, list]:
        """One all-zero input."""
        return {t.name: [np.zeros(t.shape).tolist()] for t in self.signature.tensors}

    def save(self, directory: Path) -> None:
        """Weights, ``model.json``, preprocessing and signature (with its watched embedding)."""
        save_torch_tabular(directory, state_dict_of(self.network), self.spec, self.preprocessor,  # type: ignore[arg-type]
                           self.signature)
