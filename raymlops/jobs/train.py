"""Training job: ``ray job submit --working-dir . -- python -m raymlops.jobs.train --config configs/train.yaml``.

``--reproduce NAME:VERSION`` re-runs a registered version from its lineage instead
(:mod:`raymlops.train.reproduce`); the config then only says where the registry and
checkpoints are.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

from raymlops.config import TrainConfig
from raymlops.submission.entry import run_job
from raymlops.train.release import TrainOutcome
from raymlops.train.reproduce import Reproduction


@dataclass(frozen=True)
class Reproduced:
    """A reproduction's outcome: the new version and what it was checked against."""

    outcome: TrainOutcome
    reproduction: Reproduction


def train(cfg: TrainConfig) -> TrainOutcome:
    """Check the inputs, then run Ray Train and register and gate the result."""
    import ray

    from raymlops.train.run import run_training
    from raymlops.train.trainer import prepare_inputs

    inputs = prepare_inputs(cfg)  # bad data or model config fails here, before any worker starts
    ray.init()
    return run_training(cfg, inputs)


def reproduce(ref: str):
    """The job function that re-runs version ``ref`` (``NAME:VERSION``) from its lineage."""

    def run(today: TrainConfig) -> Reproduced:
        import ray

        from raymlops.train.release import open_registry
        from raymlops.train.reproduce import check_reproduction, recorded_config, within_tolerance
        from raymlops.train.run import run_training
        from raymlops.train.trainer import prepare_inputs

        registry = open_registry(today)
        original = registry.get(ref)
        config = recorded_config(original, today)
        inputs = prepare_inputs(config)  # the recorded recipe must still check out here
        reproduction = check_reproduction(original, [*inputs.train_uris, inputs.valid_uri, inputs.test_uri])
        ray.init()
        outcome = run_training(config, inputs, extra_lineage={"reproduction": reproduction.lineage_extra()})
        extra = reproduction.lineage_extra(outcome.metrics)
        registry.add_event(original.name, "reproduced", outcome.version.version,
                           {**extra, "within_tolerance": within_tolerance(extra["metric_differences"])})
        return Reproduced(outcome, reproduction)

    return run


def describe(outcome: TrainOutcome | Reproduced) -> str:
    """The registered version, its metrics, the gate's verdict and the aliases (and, for a
    reproduction, the metric and environment differences)."""
    if isinstance(outcome, Reproduced):
        from raymlops.train.reproduce import describe_reproduction

        return describe(outcome.outcome) + "\n" + describe_reproduction(
            outcome.reproduction, outcome.outcome.metrics, outcome.outcome.version.version)
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(outcome.metrics.items()) if not k.startswith("final_"))
    aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(outcome.aliases.items()))
    return (f"registered {outcome.version.name}:{outcome.version.version}  {metrics}\n"
            f"offline gate: {'passed' if outcome.gate.passed else 'failed'} — {outcome.gate.reason}\n"
            f"aliases: {aliases or '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns its exit code."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--reproduce", metavar="NAME:VERSION", default=None)
    known, rest = parser.parse_known_args(argv)
    if known.reproduce:
        return run_job(f"Re-run {known.reproduce} from its lineage.", "train", reproduce(known.reproduce),
                       describe, rest)
    return run_job("Train, evaluate, register and gate a model (--reproduce NAME:VERSION re-runs a registered "
                   "version from its lineage).", "train", train, describe, rest)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
