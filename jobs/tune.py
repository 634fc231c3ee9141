"""Tuning job: ray job submit --working-dir . -- python jobs/tune.py --config configs/tune.yaml [--set k=v]"""

import sys

from raymlops.config import TuneConfig
from raymlops.jobs.entry import run_job
from raymlops.train.release import TrainOutcome


def tune(cfg: TuneConfig) -> TrainOutcome:
    import ray

    from raymlops.train.trainer import prepare_inputs
    from raymlops.tune import check_space
    from raymlops.tune.tuner import run_tuning

    check_space(cfg.search_space, cfg.base)  # a bad search space or data fails before any trial starts
    inputs = prepare_inputs(cfg.base)
    ray.init()
    return run_tuning(cfg, inputs)


def describe(outcome: TrainOutcome) -> str:
    lineage = outcome.version.lineage.get("extra", {})
    return (f"registered {outcome.version.name}:{outcome.version.version} from tune run {lineage.get('tune_run')}"
            f" ({len(lineage.get('trials', []))} trials), best params {lineage.get('best_params')}\n"
            f"test accuracy {outcome.metrics['accuracy']:.4f}; offline gate: "
            f"{'passed' if outcome.gate.passed else 'failed'} — {outcome.gate.reason}")


if __name__ == "__main__":
    sys.exit(run_job("Tune hyperparameters with ASHA and register the best trial.", "configs/tune.yaml",
                     TuneConfig, tune, describe))
