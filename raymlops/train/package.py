"""A model version's files, and the Predictor that training, evaluation and serving share.

Files of a version (``raymlops.config.DEFAULT_REQUIRED_FILES``):

    model.safetensors   weights (safetensors: loading never unpickles code)
    model.json          builder import path, its parameters, input/output sizes
    preprocessing.json  fitted Preprocessor
    signature.json      input features and output classes (the DatasetSchema)
    reference.parquet   stratified sample of training features, with the model's predictions
    detector.json       drift detector settings the monitor uses for this version
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError
from raymlops.models import build_model
from raymlops.train.preprocessing import Preprocessor


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild the network: builder path, parameters and sizes."""

    builder: str
    params: dict[str, Any]
    input_dim: int
    output_dim: int

    def to_json(self) -> str:
        """Serialize."""
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


class Predictor:
    """Preprocessing + network + class decoding, exactly as served."""

    def __init__(self, model, preprocessor: Preprocessor, schema: DatasetSchema, spec: ModelSpec) -> None:
        self.model = model.eval()
        self.preprocessor = preprocessor
        self.schema = schema
        self.spec = spec

    @classmethod
    def load(cls, directory: str | Path) -> Predictor:
        """Load a version's directory (as written by :func:`write_artifact`).

        Raises:
            ArtifactIntegrityError: a file is missing or unreadable.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        try:
            spec = ModelSpec(**json.loads((directory / "model.json").read_text()))
            preprocessor = Preprocessor.from_json((directory / "preprocessing.json").read_text())
            schema = DatasetSchema.from_json((directory / "signature.json").read_text())
            state = load_file(str(directory / "model.safetensors"))
        except FileNotFoundError as exc:
            raise ArtifactIntegrityError(uri=str(directory), file=Path(exc.filename or "?").name, problem="missing") from None
        model = build_model(spec.builder, spec.params, spec.input_dim, spec.output_dim)
        model.load_state_dict(state)
        return cls(model, preprocessor, schema, spec)

    def predict_proba(self, columns: Mapping[str, Sequence]) -> np.ndarray:
        """Class probabilities, rows × classes."""
        import torch

        features = torch.from_numpy(self.preprocessor.transform(columns))
        with torch.no_grad():
            logits = self.model(features)
        return torch.softmax(logits.float(), dim=1).numpy()

    def predict(self, columns: Mapping[str, Sequence]) -> dict[str, list]:
        """Predicted class names and probabilities per row."""
        proba = self.predict_proba(columns)
        indices = proba.argmax(axis=1)
        return {"class": [self.schema.classes[i] for i in indices], "probabilities": proba.tolist()}


def state_dict_of(model) -> dict:
    """The plain module's state dict (unwrapping DDP), contiguous CPU tensors."""
    module = getattr(model, "module", model)
    return {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}


def write_artifact(directory: str | Path, state: dict, spec: ModelSpec, preprocessor: Preprocessor,
                   schema: DatasetSchema, reference: pa.Table, detector: dict[str, Any]) -> Path:
    """Write every file of a version into ``directory`` and return it."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, str(directory / "model.safetensors"))
    (directory / "model.json").write_text(spec.to_json())
    (directory / "preprocessing.json").write_text(preprocessor.to_json())
    (directory / "signature.json").write_text(schema.to_json())
    (directory / "detector.json").write_text(json.dumps(detector, indent=2, sort_keys=True))
    pq.write_table(reference, directory / "reference.parquet")
    return directory
