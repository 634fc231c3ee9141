"""``run_training``: the whole training job, as the training job (``python -m raymlops.jobs.train``) calls it."""

from __future__ import annotations

from raymlops.config import TrainConfig
from raymlops.errors import JobError
from raymlops.train.release import TrainOutcome, load_state_from_checkpoint, release
from raymlops.train.trainer import PreparedInputs, build_trainer, prepare_inputs


def run_training(cfg: TrainConfig, inputs: PreparedInputs | None = None,
                 extra_lineage: dict | None = None) -> TrainOutcome:
    """Check inputs, fit with Ray Train, then package, evaluate, register and gate.

    Raises:
        DataError / ConfigError: bad inputs, before any worker starts.
        JobError: the training run failed after its retries.
    """
    inputs = inputs or prepare_inputs(cfg)
    if cfg.model.estimator:  # a scikit-learn-API estimator: one Ray task fits it
        from raymlops.train.estimators import run_estimator_training

        return run_estimator_training(cfg, inputs, extra_lineage)
    trainer = build_trainer(cfg, inputs, callbacks=_progress_callbacks(cfg))
    result = trainer.fit()
    if result.error is not None or result.checkpoint is None:
        raise JobError(job_id=str(trainer.run_config.name), problem=f"training failed: {result.error}")
    with result.checkpoint.as_directory() as directory:
        state, history = load_state_from_checkpoint(directory)
    return release(cfg, inputs, state, history, extra_lineage={"run": trainer.run_config.name, **(extra_lineage or {})})


def _progress_callbacks(cfg: TrainConfig) -> list:
    """As a Ray job: record the first reported epoch (see :mod:`raymlops.train.progress`)."""
    from raymlops.registry.lineage import current_job_id
    from raymlops.registry.registry import absolute_settings
    from raymlops.train.progress import training_started_callback

    job_id = current_job_id()
    if job_id is None:
        return []
    return [training_started_callback(cfg.model_name, absolute_settings(cfg.registry), job_id, cfg.model_name)]
