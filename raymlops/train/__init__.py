"""Training: the per-worker loop, the trainer builder, packaging, and the offline gate."""

from raymlops.train.release import TrainOutcome

__all__ = ["TrainOutcome", "run_training"]


def run_training(cfg):
    """Run a training job (imports Ray lazily); see :func:`raymlops.train.run.run_training`."""
    from raymlops.train.run import run_training as run

    return run(cfg)
