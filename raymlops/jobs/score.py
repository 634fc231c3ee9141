"""Batch scoring job: ``python -m raymlops.jobs.score MODEL[@ALIAS|:VERSION] --input URI --output URI``.

Scores a file (or a directory of files) with Ray Data over an actor pool, writes every row with
the version that scored it, tests a sample against the version's reference, prints a summary and
the JSON outcome (also written as ``<output>.summary.json`` for local outputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from raymlops.errors import RaymlopsError
from raymlops.serve.batch import SUMMARY_MARK


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The job's arguments."""
    parser = argparse.ArgumentParser(description="Score a batch with a registered model version.")
    parser.add_argument("model", help="NAME (its champion), NAME@ALIAS or NAME:VERSION")
    parser.add_argument("--input", required=True, help="Parquet or CSV file or directory (any pyarrow URI)")
    parser.add_argument("--output", required=True, help="Output directory (any pyarrow URI)")
    parser.add_argument("--input-format", choices=["parquet", "csv"], default=None)
    parser.add_argument("--output-format", choices=["parquet", "csv"], default=None)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--max-actors", type=int, default=2, help="The actor pool grows up to this many")
    parser.add_argument("--num-cpus", type=float, default=0.5, help="CPUs per actor")
    parser.add_argument("--num-gpus", type=float, default=None, help="GPUs per actor (default: 1 if the cluster has GPUs)")
    parser.add_argument("--drift-rows", type=int, default=5000, help="Rows tested against the reference")
    parser.add_argument("--registry", default="configs/registry.yaml", help="Registry config")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns its exit code (2 for a bad input, naming it)."""
    args = parse_args(argv)
    try:
        import ray

        from raymlops.registry.registry import absolute_settings
        from raymlops.serve.batch import score

        ray.init(log_to_driver=False)
        outcome = score(args.model, args.input, args.output, absolute_settings(args.registry),
                        input_format=args.input_format, output_format=args.output_format,
                        batch_size=args.batch_size, max_actors=args.max_actors, num_cpus=args.num_cpus,
                        num_gpus=args.num_gpus, drift_rows=args.drift_rows)
    except RaymlopsError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    drift = outcome.drift
    verdict = "DRIFT" if drift["drift"] else "no drift"
    details = "; ".join(f"{name} {'drift' if d['drift'] else 'ok'} (lowest p "
                        f"{min(d['p_values'].values()):.3g})" for name, d in drift["detectors"].items() if d["p_values"])
    print(f"scored {outcome.rows} rows with {outcome.model}:{outcome.version} in {outcome.seconds:.1f}s "
          f"({outcome.rows / max(outcome.seconds, 1e-9):.0f} rows/s) → {outcome.output}")
    print(f"batch vs reference of v{outcome.version}: {verdict} on {drift['rows_tested']} rows — {details or 'no tests'}")
    print(SUMMARY_MARK + json.dumps(outcome.to_json(), sort_keys=True, default=float), flush=True)
    if "://" not in outcome.output:
        from pathlib import Path

        Path(outcome.output.rstrip("/") + ".summary.json").write_text(json.dumps(outcome.to_json(), indent=2,
                                                                                  default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
