"""scikit-learn-API estimators trained as a Ray job (and searched with Ray Tune).

With ``model.estimator: package.module:Class`` the training job fits that estimator, with
``model.params`` as its keyword arguments, inside a Pipeline that one-hot encodes the
categorical features (unknown categories are ignored at serving time). The fit runs as a
Ray task with ``scaling.cpus_per_worker`` CPUs; the result is evaluated, registered in the
``sklearn`` flavor (skops) with its lineage and gated exactly like a network.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.config import TrainConfig
from raymlops.data.schema import DatasetSchema
from raymlops.models.sklearn import build_estimator
from raymlops.models.tasks import task_metrics


def frame_of(table: pa.Table, schema: DatasetSchema):
    """The feature columns of a table as a pandas DataFrame (what the Pipeline fits on)."""
    return table.select(schema.feature_names).to_pandas()


def fit_and_score(path: str, params: dict[str, Any], schema_json: str, train: pa.Table,
                  valid: pa.Table) -> tuple[Any, dict[str, float]]:
    """Fit on the training split and score on the validation split (``val_accuracy`` and
    ``val_loss`` (log loss) for a classifier; ``val_loss`` (mean squared error) and ``val_rmse``
    for a regression). Runs in a Ray task."""
    from raymlops.models.sklearn import SklearnModel

    schema = DatasetSchema.from_json(schema_json)
    pipeline = build_estimator(path, params, schema)
    labels = train.column(schema.label).to_pylist()
    pipeline.fit(frame_of(train, schema), labels if schema.is_classification else np.asarray(labels, dtype=np.float64))
    model = SklearnModel(pipeline, schema)
    answer = model.predict({n: valid.column(n).to_numpy(zero_copy_only=False) for n in schema.feature_names})
    scored = task_metrics(schema, valid.column(schema.label).to_pylist(), answer)
    if schema.is_classification:
        return pipeline, {"val_accuracy": scored["accuracy"], "val_loss": scored["log_loss"]}
    return pipeline, {"val_loss": scored["rmse"] ** 2, "val_rmse": scored["rmse"]}


def fit_remote(cfg: TrainConfig, schema: DatasetSchema, train: pa.Table, valid: pa.Table) -> tuple[Any, dict[str, float]]:
    """:func:`fit_and_score` as a Ray task with ``scaling.cpus_per_worker`` CPUs."""
    import ray

    assert cfg.model.estimator is not None
    task = ray.remote(fit_and_score).options(num_cpus=cfg.scaling.cpus_per_worker, max_retries=cfg.scaling.max_failures)
    return ray.get(task.remote(cfg.model.estimator, dict(cfg.model.params), schema.to_json(), train, valid))


def run_estimator_training(cfg: TrainConfig, inputs, extra_lineage: dict[str, Any] | None = None, trigger=None):
    """Fit the configured estimator as a Ray task, then evaluate, register and gate it."""
    from raymlops.data.tables import read_table
    from raymlops.models.sklearn import SklearnModel
    from raymlops.train.release import release_model

    pipeline, scores = fit_remote(cfg, inputs.schema, inputs.train_table, read_table(inputs.valid_uri))
    print(f"[raymlops] fitted {cfg.model.estimator}  " + "  ".join(f"{k} {v:.4f}" for k, v in scores.items()),
          flush=True)
    return release_model(cfg, inputs, SklearnModel(pipeline, inputs.schema), [{"epoch": 1.0, **scores}],
                         extra_lineage, trigger)
