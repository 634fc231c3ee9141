"""Training: data, model, loop, scaling, gate and lineage (``configs/train.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel


class TrainDataConfig(StrictModel):
    """Where the prepared data set is."""

    path: str = Field(
        "$RAYMLOPS_HOME/data/penguins",
        description="Directory written by `raymlops data prepare` (schema.json + train/valid/test parquet), any "
        "pyarrow URI. `$RAYMLOPS_HOME` and `~` expand, so jobs running in a working-dir copy find it; "
        "use s3:// on multi-node clusters.",
    )
    extra_train: list[str] = Field(
        default_factory=list, description="More parquet files/directories appended to the training split "
        "(e.g. the labelled prediction log for retraining).",
    )
    cache: bool = Field(
        True, description="Materialize the preprocessed training split in Ray's object store once, instead of "
        "streaming it from storage every epoch (turn off when it does not fit in memory).",
    )


class ModelConfig(StrictModel):
    """Which network to build — or which scikit-learn-API estimator to fit."""

    builder: str = Field("raymlops.models:mlp", description="Import path `package.module:function` of the builder.")
    params: dict[str, Any] = Field(
        default_factory=lambda: {"hidden": [64, 64], "dropout": 0.0}, description="Keyword arguments of the builder "
        "(or of the estimator)."
    )
    estimator: str | None = Field(
        None, description="A scikit-learn-API estimator `package.module:Class` (e.g. "
        "`sklearn.ensemble:HistGradientBoostingClassifier`, `xgboost:XGBClassifier`) to fit instead of a network; "
        "`params` are its keyword arguments. Categorical features are one-hot encoded in front of it; the fit "
        "runs as a Ray task of the job and the result is registered in the sklearn flavor.")

    @model_validator(mode="before")
    @classmethod
    def _estimator_params(cls, data: Any) -> Any:
        # the network's default parameters mean nothing to an estimator: without params, it gets none
        if isinstance(data, dict) and data.get("estimator") and "params" not in data:
            return {**data, "params": {}}
        return data


class LoopConfig(StrictModel):
    """The per-worker training loop."""

    loop: str | None = Field(
        None, description="Your per-worker loop `package.module:function`, called as `loop(config, context)` on "
        "every worker (see raymlops.train.context.LoopContext); unset = the built-in loop. raymlops keeps the "
        "checkpoints, restarts, evaluation, registration, lineage and the offline gate.")
    loop_params: dict[str, Any] = Field(default_factory=dict, description="Your loop's own settings, given to it "
                                        "as `config['loop_params']` (searchable by Tune as train.loop_params.*).")

    epochs: int = Field(20, ge=1, description="Passes over the training split.")
    batch_size: int = Field(32, ge=1, description="Rows per batch on each worker.")
    lr: float = Field(0.01, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    seed: int = Field(0, description="Seed of initialization and shuffling; same seed, same metrics on CPU.")
    shuffle_buffer: int = Field(1000, ge=0, description="Rows in each worker's local shuffle buffer (0 = no shuffle).")


class ScalingSettings(StrictModel):
    """Workers and their resources."""

    num_workers: int = Field(2, ge=1, description="Ray Train workers (PyTorch DDP processes).")
    use_gpu: Literal["auto", True, False] = Field(
        "auto", description="`auto` uses GPUs when the cluster has them; true requires them; false never."
    )
    cpus_per_worker: float = Field(0.5, gt=0, description="CPUs reserved per worker; fractional on small machines "
                                   "leaves room for Ray Data's read tasks.")
    gpus_per_worker: float = Field(1.0, gt=0, description="GPUs per worker when GPUs are used.")
    max_failures: int = Field(2, ge=-1, description="Worker-group restarts from the last checkpoint (-1 = forever).")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How the workers' placement group spreads over nodes: `PACK` fills few nodes "
        "(fast DDP), `SPREAD`/`STRICT_SPREAD` one worker per node where possible/always.")


class RunStorageConfig(StrictModel):
    """Where checkpoints go."""

    path: str = Field("$RAYMLOPS_HOME/runs", description="storage_path of runs (any pyarrow URI).")
    checkpoints_to_keep: int = Field(2, ge=1, description="Checkpoints kept per run (one is written every epoch).")


class DetectorSettings(StrictModel):
    """Drift detector settings saved with each version for the monitor."""

    backend: Literal["alibi", "scipy"] = Field("alibi", description="Detector backend.")
    p_val: float = Field(0.05, gt=0, lt=1, description="Significance level of the feature-wise tests.")
    correction: Literal["bonferroni", "fdr"] = Field("bonferroni", description="Multiple-testing correction.")
    reference_rows: int = Field(5000, ge=10, description="Rows of the stratified reference sample (capped by the "
                                "training split; more rows keep false alarms nearer the significance level).")


class GateConfig(StrictModel):
    """The offline gate against the champion."""

    metric: Literal["accuracy", "macro_f1", "log_loss", "rmse", "mae", "r2"] | None = Field(
        None, description="Test-split metric compared (classification: accuracy, macro_f1, log_loss; regression: "
        "rmse, mae, r2). Unset: accuracy for a classifier, rmse for a regression.")
    margin: float = Field(0.0, description="How much better than the champion a new version must be.")
    bootstrap_champion: bool = Field(
        True, description="When the model has no champion yet, the first passing version also becomes champion."
    )


class LineageSettings(StrictModel):
    """Why this run happens; set by the retrain trigger, `manual` otherwise."""

    trigger: Literal["manual", "tune", "drift", "performance", "schedule", "reproduce"] = Field(
        "manual", description="Trigger kind (`reproduce`: set by `raymlops train --reproduce`).")
    parent_version: int | None = Field(None, ge=1, description="Version this run derives from (unset = champion).")
    drift_event_id: int | None = Field(None, description="Registry event that triggered this run.")


class TrainConfig(StrictModel):
    """``configs/train.yaml``: one Ray Train run, evaluated, registered and gated."""

    model_name: str = Field("penguins", description="Registry name of the model.")
    data: TrainDataConfig = Field(default_factory=TrainDataConfig, description="Input data.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Network.")
    train: LoopConfig = Field(default_factory=LoopConfig, description="Training loop.")
    scaling: ScalingSettings = Field(default_factory=ScalingSettings, description="Workers.")
    storage: RunStorageConfig = Field(default_factory=RunStorageConfig, description="Checkpoints.")
    detector: DetectorSettings = Field(default_factory=DetectorSettings, description="Drift detector for the version.")
    gate: GateConfig = Field(default_factory=GateConfig, description="Offline gate.")
    lineage: LineageSettings = Field(default_factory=LineageSettings, description="Trigger and parent.")
    code: list[str] = Field(
        default_factory=list, description="Local paths of your code (a module file or a package directory: "
        "builders, loops, flavors) that `raymlops train`/`tune` ship to the job and every worker through Ray's "
        "runtime_env `py_modules`; relative paths are from where you run the command.")
    registry: str | None = Field(
        "configs/registry.yaml", description="Registry config file (relative to the job's working directory); "
        "unset = defaults.",
    )
