"""Batch scoring with Ray Data: the same registered versions the model server answers with,
over a file or a directory of files, on an autoscaling pool of actors (GPUs when present).

Every output row is the input row plus the model's outputs (an output that names its last axis,
such as class probabilities, becomes a struct of label → value) and ``model_name`` /
``model_version``. After scoring, a sample of the batch is tested against the version's
reference with the monitor's detectors: features (tabular models) and the predicted output.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.data.files import IO_CPUS, data_files, read_dataset
from raymlops.errors import ConfigError

#: Marks the line of a scoring job's log that holds its outcome as JSON.
SUMMARY_MARK = "[raymlops:score] "


@dataclass
class ScoreOutcome:
    """What a scoring job did."""

    model: str
    version: int
    rows: int
    output: str
    seconds: float
    drift: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """As printed by ``raymlops score --json`` and written next to the output."""
        return asdict(self)


def scoring_ref(text: str) -> str:
    """``NAME`` means the version serving as ``champion``; ``NAME@ALIAS`` and ``NAME:VERSION`` as written."""
    return text if ("@" in text or ":" in text) else f"{text}@champion"


def file_format(uri: str, given: str | None) -> str:
    """``parquet`` or ``csv``: as given, else from the URI's suffix (a directory: parquet).

    Raises:
        ConfigError: naming ``--format`` for anything else.
    """
    fmt = given or ("csv" if uri.rstrip("/").endswith(".csv") else "parquet")
    if fmt not in ("parquet", "csv"):
        raise ConfigError(file="<arguments>", problems=[("--format", f"{fmt!r}: use parquet or csv")])
    return fmt


def output_columns(prediction, taken: set[str]) -> dict[str, pa.Array]:
    """The prediction as Arrow columns (named after the outputs; ``predicted_<name>`` when an
    input column already has that name)."""
    columns = {}
    for spec in prediction.specs:
        values = prediction.outputs[spec.name]
        name = spec.name if spec.name not in taken else f"predicted_{spec.name}"
        if spec.labels:
            array: pa.Array = pa.StructArray.from_arrays([pa.array(values[:, i]) for i in range(len(spec.labels))],
                                                         names=list(spec.labels))
        elif values.ndim > 1:
            array = pa.array(values.tolist())
        else:
            array = pa.array(values.tolist() if values.dtype == object else values)
        columns[name] = array
    return columns


class VersionScorer:
    """One Ray Data actor: downloads the version once (checksums verified), loads it through its
    flavor, and scores batches."""

    def __init__(self, registry: dict[str, Any], ref: str) -> None:
        from raymlops.config import RegistryConfig
        from raymlops.models import load_model
        from raymlops.registry import Registry

        registry_client = Registry.from_config(RegistryConfig.model_validate(registry))
        try:
            found = registry_client.get(ref)
            with tempfile.TemporaryDirectory() as directory:
                self.model = load_model(registry_client.download(ref, directory), found.manifest)
        finally:
            registry_client.close()
        self.name, self.version = found.name, found.version
        self.inputs = self.model.signature.input_names

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Score one batch; returns it with the output and model columns."""
        columns = {}
        for name in self.inputs:
            column = batch.column(name)
            numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
            columns[name] = column.to_numpy(zero_copy_only=False) if numeric else column.to_pylist()
        prediction = self.model.predict(columns)
        for name, array in output_columns(prediction, set(batch.column_names)).items():
            batch = batch.append_column(name, array)
        batch = batch.append_column("model_name", pa.array([self.name] * batch.num_rows))
        return batch.append_column("model_version", pa.array([self.version] * batch.num_rows, pa.int64()))


def score(ref: str, input_uri: str, output_uri: str, registry: dict[str, Any], *, input_format: str | None = None,
          output_format: str | None = None, batch_size: int = 1024, max_actors: int = 2, num_cpus: float = 0.5,
          num_gpus: float | None = None, drift_rows: int = 5000) -> ScoreOutcome:
    """Score ``input_uri`` with the version ``ref`` names and write ``output_uri``. Needs Ray.

    Args:
        ref: ``NAME`` (its champion), ``NAME@ALIAS`` or ``NAME:VERSION``.
        registry: registry settings as :func:`raymlops.registry.registry.absolute_settings` gives them.
        max_actors: the actor pool grows from 1 to this many.
        num_gpus: per actor; unset = 1 when the cluster has GPUs, else 0.
        drift_rows: rows of the batch tested against the version's reference.

    Raises:
        ConfigError: the input lacks a column the model needs (naming it), or a bad format.
        NotFoundError: no such model, alias or version.
    """
    import ray

    from raymlops.config import RegistryConfig
    from raymlops.monitor.checker import VersionReference
    from raymlops.registry import Registry

    ref = scoring_ref(ref)
    client = Registry.from_config(RegistryConfig.model_validate(registry))
    try:
        version = client.get(ref)
        reference = VersionReference.from_registry(client, version.name, version.version)
    finally:
        client.close()
    pinned = f"{version.name}:{version.version}"  # an alias that moves mid-job does not mix versions
    light = {"num_cpus": IO_CPUS}  # reads and writes must not wait for a whole CPU on a busy cluster
    fmt = file_format(input_uri, input_format)
    files = data_files(input_uri, fmt)
    missing = [name for name in reference.schema.input_names if name not in file_columns(files[0], fmt)]
    if missing:
        raise ConfigError(file=input_uri, problems=[(name, "column missing: the model needs it") for name in missing])
    if num_gpus is None:
        num_gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    started = time.perf_counter()
    scored = read_dataset(files, fmt).map_batches(
        VersionScorer, fn_constructor_kwargs={"registry": registry, "ref": pinned}, batch_format="pyarrow",
        batch_size=batch_size, compute=ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, max_actors)),
        num_cpus=num_cpus, num_gpus=num_gpus)
    written_format = file_format(output_uri, output_format)
    if written_format == "csv":
        scored.write_csv(output_uri, ray_remote_args=light)
    else:
        scored.write_parquet(output_uri, ray_remote_args=light)
    seconds = time.perf_counter() - started
    rows, table = read_sample(output_uri, written_format, drift_rows)
    drift = batch_drift(reference, table)
    return ScoreOutcome(version.name, version.version, rows, output_uri, seconds, drift)


def file_columns(uri: str, fmt: str) -> list[str]:
    """The column names of one data file."""
    import pyarrow.dataset as pads

    from raymlops import filesystem

    fs, path = filesystem.resolve(uri)
    return pads.dataset(path, filesystem=fs, format=fmt).schema.names


def read_sample(uri: str, fmt: str, rows: int, seed: int = 0) -> tuple[int, pa.Table | None]:
    """The number of rows written under ``uri`` and a uniform random sample of ``rows`` of them."""
    import pyarrow.dataset as pads

    from raymlops import filesystem

    fs, path = filesystem.resolve(uri)
    table = pads.dataset(path, filesystem=fs, format=fmt).to_table()
    if table.num_rows == 0:
        return 0, None
    chosen = np.sort(np.random.default_rng(seed).choice(table.num_rows, min(rows, table.num_rows), replace=False))
    return table.num_rows, table.take(pa.array(chosen))


def batch_drift(reference, table: pa.Table | None) -> dict[str, Any]:
    """Test a sample of the scored batch against the version's reference
    (:class:`~raymlops.monitor.checker.VersionReference`): each watched feature (tabular models)
    and the predicted output, with the version's detector settings."""
    from raymlops.monitor.detectors import TabularReference, build_feature_drift

    if table is None or table.num_rows == 0:
        return {"drift": False, "rows_tested": 0, "detectors": {}}
    p_val = float(reference.detector.get("p_val", 0.05))
    correction = reference.detector.get("correction", "bonferroni")
    backend = reference.detector.get("backend", "alibi")
    detectors: dict[str, Any] = {}
    tabular = reference.tabular()
    if tabular.features and all(feature in table.column_names for feature in tabular.features):
        features = {f: np.asarray(table.column(f).to_pylist(), dtype=object if f in tabular.categorical else float)
                    for f in tabular.features}
        test = build_feature_drift(backend, tabular, p_val, correction).test(features)
        detectors["feature"] = {"drift": bool(test.drift), "p_values": test.p_values, "threshold": test.threshold}
    watched = _watched_output(reference, table)
    if watched is not None:
        classifier = reference.schema.is_classification
        output_reference = TabularReference.build({"prediction": reference.predictions}, [] if classifier else
                                                  ["prediction"], ["prediction"] if classifier else [])
        values = np.asarray(table.column(watched).to_pylist(), dtype=object if classifier else float)
        test = build_feature_drift(backend, output_reference, p_val, correction).test({"prediction": values})
        detectors["output"] = {"drift": bool(test.drift), "p_values": test.p_values, "threshold": test.threshold}
    return {"drift": any(d["drift"] for d in detectors.values()), "rows_tested": table.num_rows,
            "detectors": detectors}


def _watched_output(reference, table: pa.Table) -> str | None:
    """The scored column holding the watched output (the predicted class or value)."""
    from raymlops.models.contract import outputs_of

    specs = outputs_of(reference.schema)
    watched = "class" if reference.schema.is_classification else "value"
    for spec in specs:
        if spec.name == watched:
            for name in (watched, f"predicted_{watched}"):
                if name in table.column_names:
                    return name
    return None
