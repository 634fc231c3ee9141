"""The ``torchscript`` flavor: a network trained elsewhere and saved with ``torch.jit.save``.

The scripted module takes what the signature says — the numeric features as one float32
matrix in signature order (tabular), or the tensor input — and returns logits (a classifier:
one per class, softmaxed here) or one value per row (a regression). Its own preprocessing,
if any, is inside the script. A TorchScript archive is loaded by torch's restricted loader,
never by unpickling Python objects. Files besides the common ones: ``model.json`` and
``model.pt``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError, ConfigError
from raymlops.models.contract import (
    MODEL_FILE,
    SIGNATURE_FILE,
    Columns,
    Model,
    Prediction,
    classes_prediction,
    values_prediction,
)
from raymlops.models.torch_tabular import current_device

SCRIPT_FILE = "model.pt"


class TorchScriptModel(Model):
    """A TorchScript module over the signature's numeric features (or its tensor input)."""

    flavor = "torchscript"

    def __init__(self, script: Path, signature: DatasetSchema, device: str = "cpu") -> None:
        import torch

        categorical = [f.name for f in signature.features if f.kind != "numeric"]
        if categorical:
            raise ConfigError(file="<signature>", problems=[("features", f"a TorchScript model takes numbers; "
                                                             f"encode {', '.join(categorical)} inside it or drop them")])
        self.source, self.signature, self.device = Path(script), signature, device
        self.module = torch.jit.load(str(script), map_location=device).eval()

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> TorchScriptModel:
        """Load ``model.pt`` with torch's TorchScript loader.

        Raises:
            ArtifactIntegrityError: a file is missing.
        """
        if not (directory / SCRIPT_FILE).exists():
            raise ArtifactIntegrityError(uri=str(directory), file=SCRIPT_FILE, problem="missing")
        signature = DatasetSchema.from_json((directory / SIGNATURE_FILE).read_text())
        return cls(directory / SCRIPT_FILE, signature, current_device())

    def _inputs(self, columns: Columns) -> np.ndarray:
        if self.signature.tensors:
            tensor = self.signature.tensors[0]
            return np.stack([np.asarray(v, dtype=np.float32) for v in columns[tensor.name]]).reshape(-1, *tensor.shape)
        return np.column_stack([np.asarray(columns[n], dtype=np.float32) for n in self.signature.feature_names])

    def predict(self, columns: Columns) -> Prediction:
        """Softmaxed logits of a classifier, or the values of a regression."""
        import torch

        with torch.no_grad():
            outputs = self.module(torch.from_numpy(self._inputs(columns)).to(self.device)).float().cpu().numpy()
        if not self.signature.is_classification:
            return values_prediction(outputs.reshape(len(outputs), -1)[:, 0])
        shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return classes_prediction(shifted / shifted.sum(axis=1, keepdims=True), self.signature.classes)

    def save(self, directory: Path) -> None:
        """Copy the archive; write ``model.json`` and the signature."""
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.source, directory / SCRIPT_FILE)
        (directory / MODEL_FILE).write_text(json.dumps({"flavor": self.flavor}))
        (directory / SIGNATURE_FILE).write_text(self.signature.to_json())
