"""The ``torch-module`` flavor: a PyTorch network trained elsewhere, brought in either as a
TorchScript archive (``torch.jit.save``) or as a state dict with the builder that rebuilds it.

The network takes what the signature says — the numeric features as one float32 matrix in
signature order (tabular), or the tensor input — and returns logits (a classifier: one per
class, softmaxed here) or one value per row (a regression); its own preprocessing, if any, is
inside it. Neither form unpickles Python objects: a TorchScript archive goes through torch's
restricted loader, weights through safetensors. Files besides the common ones: ``model.json``
and ``model.pt`` (TorchScript) or ``model.safetensors`` (weights; ``model.json`` names the
builder, its parameters and sizes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError, ConfigError
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
from raymlops.models.torch_tabular import WEIGHTS_FILE, current_device, state_dict_of

SCRIPT_FILE = "model.pt"


def read_state_dict(path: Path) -> dict:
    """Weights from a safetensors file, or a ``torch.save``-d state dict read with
    ``weights_only`` (tensors and plain containers, never code).

    Raises:
        DataError: the file holds something else.
    """
    import torch

    from raymlops.errors import DataError

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch and safetensors raise many types for a bad file
        raise DataError(path=str(path), problem=f"not a state dict ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(state, dict):
        raise DataError(path=str(path), problem=f"holds a {type(state).__name__}, not a state dict")
    return state


class TorchModuleModel(Model):
    """A PyTorch network over the signature's numeric features (or its tensor input).

    Args:
        network: a loaded TorchScript module, or an ``nn.Module`` built by ``builder``.
        signature: inputs, task, label and classes.
        builder: with ``params`` and the sizes, how to rebuild ``network`` (None for TorchScript).
    """

    flavor = "torch-module"
    requirements = ("torch", "numpy")

    def __init__(self, network: Any, signature: DatasetSchema, builder: dict[str, Any] | None = None,
                 device: str = "cpu") -> None:
        categorical = [f.name for f in signature.features if f.kind != "numeric"]
        if categorical:
            raise ConfigError(file="<signature>", problems=[("features", f"a torch-module model takes numbers; "
                                                             f"encode {', '.join(categorical)} inside it or drop them")])
        self.signature, self.builder, self.device = signature, builder, device
        self.network = network.to(device).eval()

    @classmethod
    def from_script(cls, path: Path, signature: DatasetSchema) -> TorchModuleModel:
        """A TorchScript archive, read with torch's TorchScript loader."""
        import torch

        return cls(torch.jit.load(str(path), map_location="cpu"), signature)

    @classmethod
    def from_state_dict(cls, path: Path, signature: DatasetSchema, builder: str, params: dict[str, Any]
                        ) -> TorchModuleModel:
        """Weights rebuilt into ``builder(input_dim, output_dim, **params)`` (input_dim: the numbers
        per row; output_dim: the classes, or 1)."""
        input_dim = len(signature.feature_names) if signature.features else \
            int(np.prod(signature.tensors[0].shape))
        output_dim = len(signature.classes) if signature.is_classification else 1
        network = build_model(builder, params, input_dim, output_dim)
        network.load_state_dict(read_state_dict(path))
        return cls(network, signature, {"builder": builder, "params": dict(params), "input_dim": input_dim,
                                        "output_dim": output_dim})

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> TorchModuleModel:
        """Load ``model.pt`` (TorchScript) or rebuild the builder's network with ``model.safetensors``.

        Raises:
            ArtifactIntegrityError: a file is missing.
        """
        signature = DatasetSchema.from_json((directory / SIGNATURE_FILE).read_text())
        if spec.get("builder"):
            if not (directory / WEIGHTS_FILE).exists():
                raise ArtifactIntegrityError(uri=str(directory), file=WEIGHTS_FILE, problem="missing")
            network = build_model(spec["builder"], spec.get("params", {}), spec["input_dim"], spec["output_dim"])
            network.load_state_dict(read_state_dict(directory / WEIGHTS_FILE))
            builder = {k: spec[k] for k in ("builder", "params", "input_dim", "output_dim")}
            return cls(network, signature, builder, current_device())
        if not (directory / SCRIPT_FILE).exists():
            raise ArtifactIntegrityError(uri=str(directory), file=SCRIPT_FILE, problem="missing")
        import torch

        return cls(torch.jit.load(str(directory / SCRIPT_FILE), map_location="cpu"), signature, None, current_device())

    def _inputs(self, columns: Columns) -> np.ndarray:
        if self.signature.tensors:
            tensor = self.signature.tensors[0]
            return np.stack([np.asarray(v, dtype=np.float32) for v in columns[tensor.name]]).reshape(-1, *tensor.shape)
        return np.column_stack([np.asarray(columns[n], dtype=np.float32) for n in self.signature.feature_names])

    def predict(self, columns: Columns) -> Prediction:
        """Softmaxed logits of a classifier, or the values of a regression."""
        import torch

        with torch.no_grad():
            outputs = self.network(torch.from_numpy(self._inputs(columns)).to(self.device)).float().cpu().numpy()
        if not self.signature.is_classification:
            return values_prediction(outputs.reshape(len(outputs), -1)[:, 0])
        return logits_prediction(outputs, self.signature.classes)

    def save(self, directory: Path) -> None:
        """The TorchScript archive, or the weights as safetensors; ``model.json`` and the signature."""
        import torch

        directory.mkdir(parents=True, exist_ok=True)
        if self.builder is None:
            torch.jit.save(self.network, str(directory / SCRIPT_FILE))
            spec: dict[str, Any] = {"flavor": self.flavor, "format": "torchscript"}
        else:
            from safetensors.torch import save_file

            save_file(state_dict_of(self.network), str(directory / WEIGHTS_FILE))
            spec = {"flavor": self.flavor, "format": "state_dict", **self.builder}
        (directory / MODEL_FILE).write_text(json.dumps(spec, indent=2, sort_keys=True))
        (directory / SIGNATURE_FILE).write_text(self.signature.to_json())
