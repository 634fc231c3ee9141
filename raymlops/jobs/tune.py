"""Tuning job: ``ray job submit --working-dir . -- python -m raymlops.jobs.tune --config configs/tune.yaml``."""

from __future__ import annotations

import sys
from typing import Sequence

from raymlops.config import TuneConfig
from raymlops.submission.entry import run_job
from raymlops.train.release import TrainOutcome


def tune(cfg: TuneConfig) -> TrainOutcome:
    """Check the search space and data, then run ASHA and register the best trial."""
    import ray

    from raymlops.train.trainer import prepare_inputs
    from raymlops.tune import check_space
    from raymlops.tune.tuner import run_tuning

    check_space(cfg.search_space, cfg.base)  # a bad search space or data fails before any trial starts
    inputs = prepare_inputs(cfg.base)
    ray.init()
    return run_tuning(cfg, inputs)


def describe(outcome: TrainOutcome) -> str:
    """The registered version, the tune run and the gate's verdict."""
    lineage = outcome.version.lineage.get("extra", {})
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items()) if not k.startswith("final_"))
    return (f"registered {outcome.version.name}:{outcome.version.version} from tune run {lineage.get('tune_run')}"
            f" ({len(lineage.get('trials', []))} trials), best params {lineage.get('best_params')}\n"
            f"test {metrics}; offline gate: {'passed' if outcome.gate.passed else 'failed'} — {outcome.gate.reason}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns its exit code."""
    return run_job("Tune hyperparameters with ASHA and register the best trial.", "tune", tune,  # type: ignore[arg-type]
                   describe, argv)


if __name__ == "__main__":
    sys.exit(main())
