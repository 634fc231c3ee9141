"""The ``mlflow`` flavor: an MLflow model served through its ``python_function`` interface.

A model brought in from MLflow that raymlops cannot store in a flavor of its own (a PyTorch or
any other pyfunc model) keeps its MLflow directory as it is, under ``mlflow/``. MLflow loads
models with pickle/cloudpickle, so this flavor is opt-in per model (``allow_pickle`` in
``model.json``, set at registration), loads only after every file of the MLflow directory
matched the registry's sha256 manifest, and needs the ``mlflow`` extra wherever it is served.
(A scikit-learn model from MLflow becomes an ``sklearn``-flavor version, stored with skops.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema
from raymlops.errors import ArtifactIntegrityError, NotAvailableError
from raymlops.models.contract import (
    MODEL_FILE,
    SIGNATURE_FILE,
    Columns,
    Model,
    Prediction,
    classes_prediction,
    values_prediction,
)

MLFLOW_DIRECTORY = "mlflow"


def import_mlflow() -> Any:
    """The ``mlflow`` module.

    Raises:
        NotAvailableError: it is not installed (naming the extra to install).
    """
    try:
        import mlflow
        import mlflow.pyfunc  # noqa: F401 - the interface this flavor uses
    except ImportError:
        raise NotAvailableError(feature="MLflow models", reason="install the mlflow extra: "
                                "pip install 'raymlops[mlflow]'") from None
    return mlflow


class MlflowModel(Model):
    """An MLflow pyfunc model over the signature's columns."""

    flavor = "mlflow"
    requirements = ("mlflow", "numpy")

    def __init__(self, source: Path, signature: DatasetSchema, pyfunc: Any = None) -> None:
        self.source = Path(source)
        self.signature = signature
        self.pyfunc = pyfunc or import_mlflow().pyfunc.load_model(str(self.source))

    @classmethod
    def load(cls, directory: Path, spec: dict[str, Any]) -> MlflowModel:
        """Load through MLflow, only when opted in and after every file matched the manifest.

        Raises:
            ArtifactIntegrityError: no opt-in, no manifest, or a file that differs from it.
        """
        source = directory / MLFLOW_DIRECTORY
        if not spec.get("allow_pickle"):
            raise ArtifactIntegrityError(uri=str(directory), file=MLFLOW_DIRECTORY, problem="an MLflow model (pickled) "
                                         "was not opted in")
        manifest = spec.get("_manifest") or {}
        files = sorted(p for p in source.rglob("*") if p.is_file())
        for path in files:
            relative = path.relative_to(directory).as_posix()
            if relative not in manifest:
                raise ArtifactIntegrityError(uri=str(directory), file=relative,
                                             problem="refusing to load MLflow files the registry's manifest does not list")
            if hashlib.sha256(path.read_bytes()).hexdigest() != manifest[relative]:
                raise ArtifactIntegrityError(uri=str(directory), file=relative, problem="sha256 differs from the manifest")
        signature = DatasetSchema.from_json((directory / SIGNATURE_FILE).read_text())
        return cls(source, signature)

    def predict(self, columns: Columns) -> Prediction:
        """The pyfunc's answer — given a DataFrame, or one matrix when the MLflow signature asks
        for a tensor — as class probabilities (a rows × classes output), classes (one-hot), or values."""
        import pandas as pd

        names = self.signature.feature_names
        wanted = self.pyfunc.metadata.get_input_schema()
        if wanted is not None and wanted.is_tensor_spec():  # one matrix of the model's dtype, features in order
            data: Any = np.column_stack([np.asarray(columns[n]) for n in names]).astype(wanted.numpy_types()[0])
        else:
            data = pd.DataFrame({n: np.asarray(columns[n]) for n in names}, columns=names)
        out = np.asarray(self.pyfunc.predict(data))
        if not self.signature.is_classification:
            return values_prediction(out.astype(np.float64).reshape(len(out), -1)[:, 0])
        classes = self.signature.classes
        if out.ndim == 2 and out.shape[1] == len(classes) and out.dtype.kind == "f":
            return classes_prediction(out, classes)
        index = {c: i for i, c in enumerate(classes)}
        return classes_prediction(np.eye(len(classes))[[index[str(v)] for v in out.reshape(-1)]], classes)

    def save(self, directory: Path) -> None:
        """Copy the MLflow directory under ``mlflow/``; ``model.json`` records the opt-in."""
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.source, directory / MLFLOW_DIRECTORY, dirs_exist_ok=True)
        (directory / MODEL_FILE).write_text(json.dumps({"flavor": self.flavor, "allow_pickle": True}))
        (directory / SIGNATURE_FILE).write_text(self.signature.to_json())
