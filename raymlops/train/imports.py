"""Bring in a model trained elsewhere: from a notebook's object, a saved file, or MLflow.

The model is wrapped in its flavor, its signature inferred from reference data (features and
label; the task from the estimator or the label's type) unless given, the reference sample
for drift drawn with the model's own predictions, the offline gate run on test data against
the champion, and the version registered with lineage that says ``import`` and carries the
source's sha256. From then on it travels the loop like a version raymlops trained.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from raymlops.config import DetectorSettings
from raymlops.data.prepare import infer_schema
from raymlops.data.schema import DatasetSchema
from raymlops.data.tables import read_table
from raymlops.errors import ConfigError, DataError
from raymlops.models.contract import Model
from raymlops.models.environment import environment_of
from raymlops.registry import Registry, Trigger, collect_lineage
from raymlops.train.gate import GateDecision
from raymlops.train.package import evaluate, reference_sample, write_artifact
from raymlops.train.release import apply_gate, champion_score, gate_metric
from raymlops.types import ModelVersion


@dataclass(frozen=True)
class ImportOutcome:
    """What an import registered: the version, its test metrics, and the gate (None without test data)."""

    version: ModelVersion
    metrics: dict[str, float]
    gate: GateDecision | None
    aliases: dict[str, int]


def as_table(data: Any, what: str) -> tuple[pa.Table, list[str]]:
    """A table from a path/URI (parquet or CSV), a pyarrow table or a pandas DataFrame; with the
    URIs to fingerprint (none for in-memory data).

    Raises:
        DataError: the data is of no known kind.
    """
    if isinstance(data, (str, Path)):
        return read_table(str(data)), [str(data)]
    if isinstance(data, pa.Table):
        return data, []
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a pandas DataFrame
        return pa.Table.from_pandas(data, preserve_index=False), []
    raise DataError(path=what, problem=f"give a parquet/CSV path, a pyarrow Table or a pandas DataFrame, "
                    f"not {type(data).__name__}")


def task_of(estimator: Any, table: pa.Table, label: str) -> str:
    """``classification`` or ``regression``: from a scikit-learn estimator's type when it says, else
    from the label's type (numbers that are not all integers mean a regression)."""
    try:
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(estimator):
            return "classification"
        if is_regressor(estimator):
            return "regression"
    except (ImportError, AttributeError):  # not a scikit-learn estimator: the label decides
        pass
    kind = table.schema.field(label).type
    return "regression" if pa.types.is_floating(kind) else "classification"


def signature_for(model_name: str, estimator: Any, reference: pa.Table, label: str,
                  categorical: Sequence[str] | None) -> DatasetSchema:
    """The signature inferred from reference data with its label column."""
    if label not in reference.column_names:
        raise DataError(path="reference", problem=f"label column {label!r} not found (columns: "
                        f"{', '.join(reference.column_names)})")
    task = task_of(estimator, reference, label)
    return infer_schema(reference, model_name, label, list(categorical) if categorical is not None else None,
                        "reference", task)


@dataclass(frozen=True)
class TorchSource:
    """A PyTorch network file — TorchScript, or a state dict with its builder; its signature
    comes from the reference data."""

    path: Path
    builder: str | None = None
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class MlflowSource:
    """An MLflow model directory whose flavor raymlops serves through MLflow's pyfunc."""

    directory: Path


def load_mlflow(uri: str, allow_pickle: bool) -> Any:
    """The model at an MLflow model directory or URI (``models:/name/1``, ``runs:/id/model``,
    ``s3://…``; URIs need ``MLFLOW_TRACKING_URI`` as MLflow does): a scikit-learn estimator —
    stored again by raymlops with skops — or, for any other flavor, an :class:`MlflowSource`.

    Raises:
        NotAvailableError: MLflow is not installed (naming the extra).
        ConfigError: no ``allow_pickle`` (MLflow pickles its models).
    """
    from raymlops.models.mlflow import import_mlflow

    mlflow = import_mlflow()
    if not allow_pickle:
        raise ConfigError(file="<register>", problems=[("path", "MLflow stores models with pickle/cloudpickle: loading "
                                                        "one runs its code; opt in with --allow-pickle if you trust it")])
    local = Path(uri) if Path(uri).is_dir() else Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    flavors = mlflow.models.Model.load(str(local)).flavors
    if "sklearn" in flavors:
        import mlflow.sklearn

        return mlflow.sklearn.load_model(str(local))
    if "python_function" not in flavors:
        raise ConfigError(file="<register>", problems=[("path", f"the MLflow model has no python_function flavor "
                                                        f"({', '.join(flavors)})")])
    return MlflowSource(local)


def wrap(model: Any, signature: DatasetSchema, trust: Sequence[str], allow_pickle: bool) -> Model:
    """A :class:`Model` as it is, or a scikit-learn-API estimator in the ``sklearn`` flavor.

    Raises:
        ConfigError: an object raymlops cannot wrap (naming what to do instead).
    """
    if isinstance(model, Model):
        return model
    if isinstance(model, MlflowSource):
        from raymlops.models.mlflow import MlflowModel

        return MlflowModel(model.directory, signature)
    if isinstance(model, TorchSource):
        from raymlops.models.torch_module import TorchModuleModel

        if model.builder:
            return TorchModuleModel.from_state_dict(model.path, signature, model.builder, dict(model.params))
        return TorchModuleModel.from_script(model.path, signature)
    if hasattr(model, "predict") and hasattr(model, "fit"):
        from raymlops.models.sklearn import SklearnModel

        return SklearnModel(model, signature, trust, allow_pickle)
    raise ConfigError(file="<register>", problems=[("model", f"a {type(model).__name__} is neither a raymlops.Model "
                                                    "nor a scikit-learn-API estimator; wrap it in a Model subclass")])


def digest_of(path: str | Path | None, table: pa.Table | None = None) -> str:
    """sha256 of a source file (or directory, file by file in order), else of a table's Arrow data."""
    digest = hashlib.sha256()
    if path is not None and not Path(path).exists():  # a remote URI: what names it
        digest.update(str(path).encode())
    elif path is not None:
        source = Path(path)
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for file in files:
            digest.update(file.relative_to(source).as_posix().encode() if source.is_dir() else b"")
            digest.update(file.read_bytes())
    elif table is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        digest.update(sink.getvalue().to_pybytes())
    return digest.hexdigest()


def register_model(name: str, model: Any, reference: Any, label: str, test: Any = None, *,
                   registry: Registry | None = None, categorical: Sequence[str] | None = None,
                   trust: Sequence[str] = (), allow_pickle: bool = False, source: str | Path | None = None,
                   detector: dict[str, Any] | None = None, gate_margin: float = 0.0, metric: str | None = None,
                   bootstrap_champion: bool = True, description: str = "") -> ImportOutcome:
    """Register a model trained elsewhere as a new version of ``name``.

    Args:
        name: the registry name of the model.
        model: a fitted scikit-learn-API estimator (or Pipeline), or a :class:`raymlops.Model`.
        reference: data like the training data, with the ``label`` column (path, Table or
            DataFrame): the signature is inferred from it, and the drift reference drawn from it
            when no ``test`` data is given (pass data the model did not train on).
        label: the label column.
        test: labelled test data; with it, the offline gate compares the version with the champion
            and the drift reference is drawn from it (held out, so thresholds calibrate honestly).
        registry: where to register (default: the default registry).
        categorical: categorical feature columns (default: every string column).
        trust: types outside scikit-learn/numpy/scipy/XGBoost/LightGBM that skops may rebuild.
        allow_pickle: store with pickle when skops cannot (verified by sha256 before loading).
        source: the file or directory the model came from (its sha256 goes into the lineage).
        detector: ``DetectorSettings`` fields for the monitor.
        gate_margin, metric, bootstrap_champion: the offline gate (as in ``train.yaml``'s ``gate``).

    Raises:
        DataError / ConfigError: unusable data or model, naming the problem.
    """
    registry = registry or Registry.from_config()
    reference_table, data_uris = as_table(reference, "reference")
    signature = model.signature if isinstance(model, Model) else signature_for(name, model, reference_table, label,
                                                                                 categorical)
    wrapped = wrap(model, signature, trust, allow_pickle)
    settings = DetectorSettings.model_validate(detector or {})
    test_table, test_uris = as_table(test, "test") if test is not None else (None, [])
    # the monitor calibrates on the reference: held-out test data when given
    sample = reference_sample(test_table if test_table is not None else reference_table, wrapped,
                              settings.reference_rows, seed=0)
    gate = gate_metric(metric, signature.task)
    with tempfile.TemporaryDirectory() as directory:
        artifact = write_artifact(Path(directory) / "model", wrapped, sample, settings.model_dump())
        from raymlops.models import load_model

        reloaded = load_model(artifact, None if not allow_pickle else _manifest(artifact))
        metrics = evaluate(reloaded, test_table) if test_table is not None else {}
        champion, champion_value = champion_score(registry, name, gate, test_table) if test_table is not None \
            else (None, None)
        lineage = collect_lineage(
            {"imported": {"flavor": wrapped.flavor, "task": signature.task, "label": label}}, [*data_uris, *test_uris],
            parent_version=champion, trigger=Trigger(kind="import"),
            extra={"imported": {"flavor": wrapped.flavor, "source": str(source) if source else None,
                                "source_sha256": digest_of(model.directory if isinstance(model, MlflowSource)
                                                           else source, None if source else sample)}},
            environment=environment_of(reloaded))
        version = registry.register(name, artifact, metrics=metrics, lineage=lineage,
                                    description=description or f"imported {wrapped.flavor} model")
    decision = None
    if test_table is not None:
        decision = apply_gate(registry, name, version, gate, gate_margin, champion, champion_value, bootstrap_champion)
    return ImportOutcome(version, metrics, decision, registry.aliases(name))


def load_source(flavor: str, path: str | Path, trust: Sequence[str] = (), allow_pickle: bool = False,
                builder: str | None = None, params: dict[str, Any] | None = None) -> Any:
    """The model saved at ``path`` in a flavor's form: for ``sklearn`` a skops file (trusted types
    only) or, opted in, a pickle/joblib file; for ``mlflow`` an MLflow model directory or URI
    (opted in); for ``torch-module`` a ``torch.jit.save`` file or, with ``builder`` (and its
    ``params``), a state dict file; for ``torch-tabular`` or a user's flavor (``package.module:Class``) a version
    directory with its ``model.json``.

    Raises:
        DataError: the path is missing or of the wrong form.
        ConfigError: untrusted types, a pickle without the opt-in, or an unknown flavor.
    """
    if flavor == "mlflow":
        return load_mlflow(str(path), allow_pickle)
    source = Path(path)
    if not source.exists():
        raise DataError(path=str(source), problem="not found")
    if flavor == "torch-module":
        if not source.is_file():
            raise DataError(path=str(source), problem="a torch-module model is one file: torch.jit.save's archive, "
                            "or a state dict (.safetensors, or torch.save of state_dict()) with --builder")
        return TorchSource(source, builder, tuple(sorted((params or {}).items())))
    if flavor != "sklearn":
        from raymlops.models.flavors import flavor_class, read_spec

        if not source.is_dir():
            raise DataError(path=str(source), problem=f"a {flavor} model is a directory with model.json")
        cls = flavor_class(read_spec(source).get("flavor", flavor) if flavor == "torch-tabular" else flavor)
        return cls.load(source, read_spec(source))
    if source.suffix == ".skops":
        import skops.io

        from raymlops.models.sklearn import trusted_types

        return skops.io.load(source, trusted=trusted_types(skops.io.get_untrusted_types(file=source), trust))
    if source.suffix in (".pkl", ".pickle", ".joblib"):
        if not allow_pickle:
            raise ConfigError(file="<register>", problems=[("path", f"{source.name} is a pickle: loading it runs code "
                                                            "from the file; opt in with --allow-pickle if you trust it, "
                                                            "or save the model with skops")])
        import joblib

        return joblib.load(source)  # opted in: the user trusts this file
    raise DataError(path=str(source), problem="an sklearn model is a .skops file (or, opted in, .pkl/.joblib)")


def _manifest(directory: Path) -> dict[str, str]:
    from raymlops.registry.artifacts import build_manifest

    return build_manifest(directory)
