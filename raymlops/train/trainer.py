"""Build and run a Ray Train ``TorchTrainer`` from a TrainConfig.

Inputs are checked before any worker starts (data, schema, label, builder), so bad
config fails in a second with one line. Ray Data reads the splits from any pyarrow URI,
applies the fitted Preprocessor, and hands each worker its shard.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from raymlops import filesystem
from raymlops.config import TrainConfig
from raymlops.data.files import IO_CPUS, read_dataset
from raymlops.data.schema import DatasetSchema, read_schema
from raymlops.data.tables import read_table, split_uri
from raymlops.errors import ConfigError, DataError
from raymlops.models import build_model
from raymlops.models.preprocessing import Preprocessor
from raymlops.models.tasks import TASK_METRICS
from raymlops.models.torch_tensor import TensorPreprocessor


@dataclass(frozen=True)
class PreparedInputs:
    """Everything checked and fitted on the driver before the workers start."""

    schema: DatasetSchema
    preprocessor: Preprocessor | TensorPreprocessor
    train_uris: list[str]
    valid_uri: str
    test_uri: str
    train_table: pa.Table

    @property
    def output_dim(self) -> int:
        """Network outputs: one per class, or one value for a regression."""
        return len(self.schema.classes) if self.schema.is_classification else 1

    def model_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """The builder's keyword arguments: the configured ones, and for a tensor input its
        ``input_shape`` (e.g. [1, 8, 8])."""
        if self.schema.tensors:
            return {"input_shape": list(self.schema.tensors[0].shape), **params}
        return dict(params)


def _check_split(uri: str, schema: DatasetSchema) -> None:
    fs, path = filesystem.resolve(uri)
    if fs.get_file_info(path).type == filesystem.pafs.FileType.NotFound:
        raise DataError(path=uri, problem="not found; run `raymlops data prepare` or fix data.path")
    try:
        arrow_schema = pq.read_schema(path, filesystem=fs) if path.endswith(".parquet") else read_table(uri).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path=uri, problem=f"not a readable parquet file ({str(exc).splitlines()[0]})") from None
    schema.check_columns(arrow_schema, uri)


def prepare_inputs(cfg: TrainConfig) -> PreparedInputs:
    """Check data and model config and fit preprocessing on the training split only.

    Raises:
        DataError: missing data, schema or label column.
        ConfigError: the model builder does not import or rejects its parameters.
    """
    base = filesystem.expand(cfg.data.path)
    schema = read_schema(base)
    train_uris = [split_uri(base, "train"), *[filesystem.expand(u) for u in cfg.data.extra_train]]
    valid_uri, test_uri = split_uri(base, "valid"), split_uri(base, "test")
    for uri in [*train_uris, valid_uri, test_uri]:
        _check_split(uri, schema)
    columns = schema.input_names + [schema.label]
    train_table = pa.concat_tables([read_table(uri).select(columns).cast(_arrow_schema(schema)) for uri in train_uris])
    if schema.is_classification:
        unknown = set(train_table.column(schema.label).to_pylist()) - set(schema.classes)
        if unknown:
            raise DataError(path=train_uris[0], problem=f"labels {sorted(map(str, unknown))} are not in the schema's classes")
    if cfg.gate.metric is not None and cfg.gate.metric not in TASK_METRICS[schema.task]:
        raise ConfigError(file="<config>", problems=[("gate.metric", f"{cfg.gate.metric} does not fit a {schema.task}; "
                                                      f"use one of {', '.join(TASK_METRICS[schema.task])}")])
    fitted = [*schema.numeric, *[t.name for t in schema.tensors], *([] if schema.is_classification else [schema.label])]
    values = {name: train_table.column(name).to_numpy(zero_copy_only=False) for name in fitted}
    preprocessor = TensorPreprocessor.fit(schema, values) if schema.tensors else Preprocessor.fit(schema, values)
    inputs = PreparedInputs(schema, preprocessor, train_uris, valid_uri, test_uri, train_table)
    if cfg.model.estimator:
        if schema.tensors:
            raise ConfigError(file="<config>", problems=[("model.estimator", "an estimator takes tabular features; "
                                                          "this data set has tensor inputs")])
        from raymlops.models.sklearn import build_estimator

        build_estimator(cfg.model.estimator, dict(cfg.model.params), schema)  # fails here, before any task
        return inputs
    build_model(cfg.model.builder, inputs.model_params(cfg.model.params), preprocessor.output_dim, inputs.output_dim)
    from raymlops.train.loop import resolve_loop

    resolve_loop(cfg.train.loop)  # your loop must import here too (ship it with `code`)
    return inputs


def _arrow_schema(schema: DatasetSchema) -> pa.Schema:
    fields = [pa.field(f.name, pa.float64() if f.kind == "numeric" else pa.string()) for f in schema.features]
    fields += [pa.field(t.name, pa.list_(pa.float32())) for t in schema.tensors]
    return pa.schema(fields + [pa.field(schema.label, pa.string() if schema.is_classification else pa.float64())])


def preprocess_fn(preprocessor: Preprocessor | TensorPreprocessor, label: str):
    """The Ray Data ``map_batches`` function: raw columns → {"x": features, "y": class index or
    standardized target}."""

    def transform(batch: dict[str, Any]) -> dict[str, Any]:
        return {"x": preprocessor.transform(batch), "y": preprocessor.encode_labels(batch[label])}

    return transform


def build_datasets(inputs: PreparedInputs, cache_train: bool) -> dict[str, Any]:
    """Ray datasets of the preprocessed train and valid splits, in order, read and mapped in
    fractional-CPU tasks (a busy cluster still schedules them).

    With ``cache_train`` the preprocessed training split is materialized in the object
    store once instead of being re-read and re-transformed every epoch.
    """
    import ray.data

    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False  # one progress line per epoch is ours; bars would flood job logs
    fn = preprocess_fn(inputs.preprocessor, inputs.schema.label)
    columns = inputs.schema.input_names + [inputs.schema.label]

    def read(uris: list[str]):
        # read and preprocess in fractional-CPU tasks: Ray Data's read_parquet lists files in a task
        # that needs a whole CPU, which never starts on a cluster whose CPUs are partly taken
        return read_dataset(uris, "parquet", columns).map_batches(fn, batch_format="numpy", num_cpus=IO_CPUS)

    train = read(inputs.train_uris)
    # Validation is small and read every epoch by rank 0: materialize it once.
    return {"train": train.materialize() if cache_train else train, "valid": read([inputs.valid_uri]).materialize()}


def resolve_use_gpu(setting: Any) -> bool:
    """``auto`` → whether the connected cluster has GPUs.

    Raises:
        ConfigError: ``true`` on a cluster without GPUs.
    """
    import ray

    has_gpu = ray.cluster_resources().get("GPU", 0) > 0
    if setting is True and not has_gpu:
        raise ConfigError(file="<config>", problems=[("scaling.use_gpu", "true, but the cluster has no GPUs (use auto)")])
    return has_gpu if setting == "auto" else bool(setting)


def loop_config(cfg: TrainConfig, inputs: PreparedInputs, use_gpu: bool) -> dict[str, Any]:
    """The plain values the per-worker loop needs."""
    return {
        "builder": cfg.model.builder, "params": inputs.model_params(cfg.model.params), "input_dim": inputs.preprocessor.output_dim,
        "output_dim": inputs.output_dim, "task": inputs.schema.task, "epochs": cfg.train.epochs, "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr, "weight_decay": cfg.train.weight_decay, "seed": cfg.train.seed,
        "shuffle_buffer": cfg.train.shuffle_buffer, "use_gpu": use_gpu, "loop": cfg.train.loop,
        "loop_params": dict(cfg.train.loop_params),
    }


def run_name(cfg: TrainConfig) -> str:
    """A unique run name: re-using one would silently resume the old run."""
    return f"{cfg.model_name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def build_trainer(cfg: TrainConfig, inputs: PreparedInputs, name: str | None = None, callbacks: list | None = None,
                  train_config: dict[str, Any] | None = None):
    """A TorchTrainer for ``cfg``; ``train_config`` overrides the loop values (Tune trials)."""
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from raymlops.train.loop import train_loop_per_worker

    use_gpu = resolve_use_gpu(cfg.scaling.use_gpu)
    resources = {"CPU": cfg.scaling.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = cfg.scaling.gpus_per_worker
    storage_fs, storage_path = filesystem.resolve(cfg.storage.path)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=train_config or loop_config(cfg, inputs, use_gpu),
        scaling_config=ScalingConfig(num_workers=cfg.scaling.num_workers, use_gpu=use_gpu, resources_per_worker=resources,
                                     placement_strategy=cfg.scaling.placement_strategy),
        datasets=build_datasets(inputs, cfg.data.cache),
        dataset_config=DataConfig(datasets_to_split=["train"]),
        run_config=RunConfig(
            name=name or run_name(cfg), storage_path=storage_path, storage_filesystem=storage_fs,
            failure_config=FailureConfig(max_failures=cfg.scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.storage.checkpoints_to_keep),
            callbacks=callbacks,
        ),
    )
