"""The ``torch-tabular`` flavor: fitted tabular preprocessing → a ``torch.nn.Module`` built by
an import-path builder → class probabilities (classification) or a value in the label's
units (regression).

Files of a version besides the common ones (``signature.json``, ``reference.parquet``,
``detector.json``):

    model.json          flavor, builder import path, its parameters, input/output sizes
    model.safetensors   weights (safetensors: loading never unpickles code)
    preprocessing.json  the fitted Preprocessor
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError
from raymlops.models.builders import build_model
from raymlops.models.contract import (
    MODEL_FILE,
    SIGNATURE_FILE,
    Columns,
    Model,
    Prediction,
    logits_prediction,
    values_prediction,
)
from raymlops.models.preprocessing import Preprocessor

WEIGHTS_FILE = "model.safetensors"
PREPROCESSING_FILE = "preprocessing.json"


@dataclass(frozen=True)
class ModelSpec:
    """How to rebuild the network: builder path, parameters and sizes (``model.json``)."""

    builder: str
    params: dict[str, Any]
    input_dim: int
    output_dim: int
    flavor: str = "torch-tabular"

    def to_json(self) -> str:
        """Serialize."""
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def pick_device(cuda_available: bool, visible_devices: str | None) -> str:
    """``cuda`` when a GPU is both present and given to this process (Ray sets
    ``CUDA_VISIBLE_DEVICES`` to the GPUs it reserved; empty when it reserved none), else ``cpu``."""
    if not cuda_available:
        return "cpu"
    return "cpu" if visible_devices is not None and not visible_devices.strip() else "cuda"


def current_device() -> str:
    """The device this process should predict on (see :func:`pick_device`)."""
    import torch

    return pick_device(torch.cuda.is_available(), os.environ.get("CUDA_VISIBLE_DEVICES"))


class TorchTabularModel(Model):
    """Preprocessing + network + decoding, exactly as trained, evaluated and served."""

    flavor = "torch-tabular"
    requirements = ("torch", "numpy")

    def __init__(self, network, preprocessor: Preprocessor, signature: DatasetSchema, spec: ModelSpec,
                 device: str = "cpu") -> None:
        self.device = device
        self.network = network.to(device).eval()
        self.preprocessor = preprocessor
        self.signature = signature
        self.spec = spec

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> TorchTabularModel:
        """Rebuild the network from its builder and load its safetensors weights.

        Raises:
            ArtifactIntegrityError: a file is missing.
        """
        network, preprocessing, signature, model_spec = load_network(directory, spec)
        return cls(network, Preprocessor.from_json(preprocessing), signature, model_spec, current_device())

    def forward(self, columns: Columns) -> np.ndarray:
        """The network's raw outputs (float32, rows × outputs) for a batch of columns."""
        import torch

        features = torch.from_numpy(self.preprocessor.transform(columns)).to(self.device)
        with torch.no_grad():
            return self.network(features).float().cpu().numpy()

    def predict(self, columns: Columns) -> Prediction:
        """Classes with their probabilities, or values in the label's units."""
        outputs = self.forward(columns)
        if self.signature.is_classification:
            return logits_prediction(outputs, self.signature.classes)
        return values_prediction(self.preprocessor.decode_targets(outputs[:, 0]))

    def save(self, directory: Path) -> None:
        """Write this flavor's files (weights from the network on the CPU)."""
        save_torch_tabular(directory, state_dict_of(self.network), self.spec, self.preprocessor, self.signature)


def load_network(directory: Path, spec: dict[str, Any]) -> tuple[Any, str, DatasetSchema, ModelSpec]:
    """What the torch flavors store: the network rebuilt by its builder with its safetensors
    weights, the preprocessing's JSON, the signature and the spec.

    Raises:
        ArtifactIntegrityError: a file is missing.
    """
    from safetensors.torch import load_file

    try:
        model_spec = ModelSpec(**{k: v for k, v in spec.items() if not k.startswith("_")})
        preprocessing = (directory / PREPROCESSING_FILE).read_text()
        signature = DatasetSchema.from_json((directory / SIGNATURE_FILE).read_text())
        state = load_file(str(directory / WEIGHTS_FILE))
    except FileNotFoundError as exc:
        raise ArtifactIntegrityError(uri=str(directory), file=Path(exc.filename or "?").name, problem="missing") from None
    network = build_model(model_spec.builder, model_spec.params, model_spec.input_dim, model_spec.output_dim)
    network.load_state_dict(state)
    return network, preprocessing, signature, model_spec


def state_dict_of(model) -> dict:
    """The plain module's state dict (unwrapping DDP), contiguous CPU tensors."""
    module = getattr(model, "module", model)
    return {key: value.detach().cpu().contiguous() for key, value in module.state_dict().items()}


def save_torch_tabular(directory: Path, state: dict, spec: ModelSpec, preprocessor: Preprocessor,
                       signature: DatasetSchema) -> None:
    """Write weights, ``model.json``, preprocessing and signature into ``directory`` (both torch
    flavors store these four)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, str(directory / WEIGHTS_FILE))
    (directory / MODEL_FILE).write_text(spec.to_json())
    (directory / PREPROCESSING_FILE).write_text(preprocessor.to_json())
    (directory / SIGNATURE_FILE).write_text(signature.to_json())
