"""Training job: ray job submit --working-dir . -- python jobs/train.py --config configs/train.yaml [--set k=v]"""

import sys

from raymlops.config import TrainConfig
from raymlops.jobs.entry import run_job
from raymlops.train.release import TrainOutcome


def train(cfg: TrainConfig) -> TrainOutcome:
    import ray

    from raymlops.train.run import run_training
    from raymlops.train.trainer import prepare_inputs

    inputs = prepare_inputs(cfg)  # bad data or model config fails here, before any worker starts
    ray.init()
    return run_training(cfg, inputs)


def describe(outcome: TrainOutcome) -> str:
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items()) if not k.startswith("final_"))
    aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(outcome.aliases.items()))
    return (f"registered {outcome.version.name}:{outcome.version.version}  {metrics}\n"
            f"offline gate: {'passed' if outcome.gate.passed else 'failed'} — {outcome.gate.reason}\n"
            f"aliases: {aliases or '-'}")


if __name__ == "__main__":
    sys.exit(run_job("Train, evaluate, register and gate a model.", "configs/train.yaml", TrainConfig, train, describe))
