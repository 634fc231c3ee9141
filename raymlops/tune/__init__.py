"""Tuning: YAML search spaces → Ray Tune with ASHA; the best trial goes to the registry."""

from raymlops.tune.space import apply_params, check_space

__all__ = ["apply_params", "check_space", "run_tuning"]


def run_tuning(cfg):
    """Run a tuning job (imports Ray lazily); see :func:`raymlops.tune.tuner.run_tuning`."""
    from raymlops.tune.tuner import run_tuning as run

    return run(cfg)
