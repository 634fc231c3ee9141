"""Telling the loop that training has really begun: a retraining job waits in the cluster's queue
(workers, data reads) before its first epoch, and on a busy cluster it may wait forever. The first
epoch every worker reported becomes one ``training_started`` registry event naming the job, so
the drift monitor that submitted it can stop a job that never gets going (``retrain.start_timeout_s``).
"""

from __future__ import annotations

from typing import Any

#: The registry event the first reported epoch of a job's training run records.
TRAINING_STARTED = "training_started"


def training_started_callback(model: str, registry: dict[str, Any], job_id: str, run: str) -> Any:
    """A Ray Train ``UserCallback`` (it runs in the run's controller) that records
    :data:`TRAINING_STARTED` for ``job_id`` once, at the first report of the workers."""
    from ray.train import UserCallback

    class TrainingStarted(UserCallback):
        def __init__(self) -> None:
            self.recorded = False

        def after_report(self, run_context, metrics, checkpoint) -> None:
            if self.recorded:
                return
            from raymlops.config import RegistryConfig
            from raymlops.registry import Registry

            opened = Registry.from_config(RegistryConfig.model_validate(registry))
            try:
                opened.add_event(model, TRAINING_STARTED, payload={"job_id": job_id, "run": run}, actor="trainer")
                self.recorded = True
            finally:
                opened.close()

    return TrainingStarted()
