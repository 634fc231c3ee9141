"""Ray Tune (ASHA) over the training loop; the best trial is registered like a training run.

Each trial is a small driver function that builds a TorchTrainer whose
``TuneReportCallback`` forwards every epoch's report to Tune (Train V2's way to
combine the two); ASHA stops weak trials early.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from raymlops import filesystem
from raymlops.config import TrainConfig, TuneConfig
from raymlops.errors import JobError
from raymlops.registry import Trigger
from raymlops.registry.lineage import config_hash
from raymlops.train.release import TrainOutcome, load_state_from_checkpoint, release
from raymlops.train.trainer import PreparedInputs, build_trainer, prepare_inputs
from raymlops.tune.space import apply_params, check_space, to_ray_space


def run_trial(trial_config: dict[str, Any]) -> None:
    """One Tune trial: a Ray Train run with this trial's parameters."""
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = apply_params(TrainConfig.model_validate(trial_config["base"]), trial_config["params"])
    inputs = prepare_inputs(cfg)
    name = f"{trial_config['run']}-trial-{uuid.uuid4().hex[:6]}"
    build_trainer(cfg, inputs, name=name, callbacks=[TuneReportCallback()]).fit()


def estimator_trial(trial_config: dict[str, Any]) -> None:
    """One Tune trial of a scikit-learn-API estimator: fit on train, report validation scores."""
    from ray import tune

    from raymlops.data.tables import read_table
    from raymlops.train.estimators import fit_and_score

    cfg = apply_params(TrainConfig.model_validate(trial_config["base"]), trial_config["params"])
    inputs = prepare_inputs(cfg)
    assert cfg.model.estimator is not None
    _, scores = fit_and_score(cfg.model.estimator, dict(cfg.model.params), inputs.schema.to_json(),
                              inputs.train_table, read_table(inputs.valid_uri))
    tune.report(scores)


def _trial_summaries(results) -> list[dict[str, Any]]:
    summaries = []
    for result in results:
        metrics = result.metrics or {}
        summaries.append({
            "params": (result.config or {}).get("params", {}),
            "epochs": metrics.get("training_iteration"),
            "final": {k: metrics[k] for k in ("val_accuracy", "val_rmse_std", "val_rmse", "val_loss", "train_loss")
                      if k in metrics},
            "error": str(result.error) if result.error else None,
        })
    return summaries


def objective(metric: str | None, mode: str | None, task: str) -> tuple[str, str]:
    """The metric trials are ranked by and its direction (defaults follow the task)."""
    metric = metric or ("val_loss" if task == "regression" else "val_accuracy")
    lower = metric.endswith(("loss", "rmse", "rmse_std", "mae"))
    return metric, mode or ("min" if lower else "max")


def run_tuning(cfg: TuneConfig, base_inputs: PreparedInputs | None = None) -> TrainOutcome:
    """Search, then register the best trial with every trial's parameters and final metrics.

    Raises:
        ConfigError / DataError: bad search space or inputs, before any trial starts.
        JobError: no trial finished with a checkpoint.
    """
    from ray import tune
    from ray.train import Checkpoint
    from ray.tune.schedulers import ASHAScheduler

    if base_inputs is None:  # the job entrypoint checks before connecting and passes its result
        check_space(cfg.search_space, cfg.base)
        base_inputs = prepare_inputs(cfg.base)
    metric, mode = objective(cfg.tune.metric, cfg.tune.mode, base_inputs.schema.task)
    if cfg.base.model.estimator:
        return run_estimator_tuning(cfg, metric, mode)
    run = f"{cfg.base.model_name}-tune-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    settings = cfg.tune
    storage_fs, storage_path = filesystem.resolve(cfg.base.storage.path)
    tuner = tune.Tuner(
        tune.with_resources(run_trial, {"cpu": settings.cpus_per_trial_driver}),
        param_space={"base": cfg.base.model_dump(mode="json"), "run": run, "params": to_ray_space(cfg.search_space)},
        tune_config=tune.TuneConfig(
            num_samples=settings.num_samples,
            scheduler=ASHAScheduler(metric=metric, mode=mode, max_t=cfg.base.train.epochs,
                                    grace_period=settings.grace_period, reduction_factor=settings.reduction_factor),
            # The limit goes on the generator: Tune ignores max_concurrent_trials next to a generator instance.
            search_alg=tune.search.BasicVariantGenerator(random_state=settings.seed,
                                                         max_concurrent=settings.max_concurrent_trials),
        ),
        run_config=tune.RunConfig(name=run, storage_path=storage_path, storage_filesystem=storage_fs),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=metric, mode=mode, filter_nan_and_inf=True)
    checkpoint_path = (best.metrics or {}).get("checkpoint_path")
    if not checkpoint_path:
        raise JobError(job_id=run, problem="no trial produced a checkpoint")
    params = (best.config or {})["params"]
    best_cfg = apply_params(cfg.base, params)
    with Checkpoint(checkpoint_path, filesystem=storage_fs).as_directory() as directory:
        state, history = load_state_from_checkpoint(directory)
    extra = {"tune_run": run, "best_params": params, "trials": _trial_summaries(results),
             "tune_config_hash": config_hash(cfg.model_dump(mode="json"))}
    return release(best_cfg, prepare_inputs(best_cfg), state, history, extra_lineage=extra,
                   trigger=Trigger(kind="tune", tune_run=run))


def run_estimator_tuning(cfg: TuneConfig, metric: str, mode: str) -> TrainOutcome:
    """Search an estimator's parameters (each trial one fit, scored on the validation split), then
    fit the best as a Ray task and register it like a training run."""
    from ray import tune

    from raymlops.train.estimators import run_estimator_training

    run = f"{cfg.base.model_name}-tune-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    settings = cfg.tune
    storage_fs, storage_path = filesystem.resolve(cfg.base.storage.path)
    tuner = tune.Tuner(
        tune.with_resources(estimator_trial, {"cpu": cfg.base.scaling.cpus_per_worker}),
        param_space={"base": cfg.base.model_dump(mode="json"), "run": run, "params": to_ray_space(cfg.search_space)},
        tune_config=tune.TuneConfig(num_samples=settings.num_samples, metric=metric, mode=mode,
                                    search_alg=tune.search.BasicVariantGenerator(
                                        random_state=settings.seed, max_concurrent=settings.max_concurrent_trials)),
        run_config=tune.RunConfig(name=run, storage_path=storage_path, storage_filesystem=storage_fs),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=metric, mode=mode, filter_nan_and_inf=True)
    if best.metrics is None or metric not in best.metrics:
        raise JobError(job_id=run, problem=f"no trial reported {metric}")
    params = (best.config or {})["params"]
    best_cfg = apply_params(cfg.base, params)
    extra = {"tune_run": run, "best_params": params, "trials": _trial_summaries(results),
             "tune_config_hash": config_hash(cfg.model_dump(mode="json"))}
    return run_estimator_training(best_cfg, prepare_inputs(best_cfg), extra_lineage=extra,
                                  trigger=Trigger(kind="tune", tune_run=run))
