"""A model version's files, and what training and importing share to write them: the test
metrics through the contract, and the reference sample the monitor compares traffic with.

Files of every version (``raymlops.config.DEFAULT_REQUIRED_FILES``), besides the flavor's own
(``model.json`` names the flavor; see :mod:`raymlops.models`):

    model.json          the flavor and its fields
    signature.json      input features, task, label and classes (the DatasetSchema)
    reference.parquet   a sample of held-out features (data the model did not train on), with the
                        model's own predictions, confidences and the true labels
    detector.json       drift detector settings the monitor uses for this version
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymlops.data.schema import DatasetSchema
from raymlops.models.contract import Model
from raymlops.models.tasks import task_metrics

PREDICTION_COLUMN = "__prediction__"
CONFIDENCE_COLUMN = "__confidence__"
LABEL_COLUMN = "__label__"
REFERENCE_FILE = "reference.parquet"
DETECTOR_FILE = "detector.json"


def columns_of(table: pa.Table, names: list[str]) -> dict[str, np.ndarray]:
    """The named columns of a table as numpy (what a model's ``predict`` takes)."""
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in names}


def evaluate(model: Model, table: pa.Table) -> dict[str, float]:
    """The task's metrics of a model on a labelled table, through the serving code path."""
    signature = model.signature
    prediction = model.predict(columns_of(table, signature.input_names))
    return task_metrics(signature, table.column(signature.label).to_pylist(), prediction)


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


def random_sample(table: pa.Table, rows: int, seed: int) -> pa.Table:
    """Up to ``rows`` rows drawn uniformly; deterministic for ``seed``."""
    if table.num_rows <= rows:
        return table
    rng = np.random.default_rng(seed)
    return table.take(pa.array(np.sort(rng.choice(table.num_rows, size=rows, replace=False))))


def reference_sample(table: pa.Table, model: Model, rows: int, seed: int) -> pa.Table:
    """Features — or the embedding a model with tensor inputs computes — of a sample (stratified
    by class for a classifier) with the model's own watched output and confidence, and the true
    label when the table has it: for drift tests of inputs and outputs, their calibration, and
    the label-free accuracy estimate. Pass data the model did not train on."""
    signature = model.signature
    has_label = signature.label in table.column_names
    sample = (stratified_sample(table, signature.label, rows, seed) if signature.is_classification and has_label
              else random_sample(table, rows, seed))
    prediction = model.predict(columns_of(sample, model.signature.input_names))
    if prediction.monitored is not None:  # an embedding of tensor inputs: what the replicas record
        out = pa.table({name: pa.array(values) for name, values in prediction.monitored.items()})
    else:
        out = sample.select(signature.feature_names)
    out = out.append_column(PREDICTION_COLUMN, pa.array(prediction.predicted))
    if prediction.confidence is not None:
        out = out.append_column(CONFIDENCE_COLUMN, pa.array(np.asarray(prediction.confidence, dtype=np.float64)))
    if has_label:
        out = out.append_column(LABEL_COLUMN, sample.column(signature.label))
    return out


def held_out(*tables: pa.Table | None) -> pa.Table:
    """The held-out splits (validation, test) as one table: what the reference is drawn from."""
    given = [t for t in tables if t is not None and t.num_rows]
    return pa.concat_tables(given, promote_options="default") if len(given) > 1 else given[0]


def write_artifact(directory: str | Path, model: Model, reference: pa.Table, detector: dict[str, Any]) -> Path:
    """Write every file of a version (the flavor's through ``model.save``) into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory)
    (directory / DETECTOR_FILE).write_text(json.dumps(detector, indent=2, sort_keys=True))
    pq.write_table(reference, directory / REFERENCE_FILE)
    return directory


def read_signature(directory: str | Path) -> DatasetSchema:
    """The signature of a downloaded version."""
    return DatasetSchema.from_json((Path(directory) / "signature.json").read_text())
