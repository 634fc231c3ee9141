"""Batch scoring throughput: rows/s per core of `raymlops score` (Ray Data over an actor pool)
against the baseline of the same version scored in one plain Python process.

Both score the same parquet input with the same registered version, loaded through its flavor
(checksums verified). The baseline reads the file with pyarrow, calls ``model.predict`` per
batch of ``--batch-size`` rows and writes parquet — what a user's own script would do. The
Ray path is :func:`raymlops.serve.batch.score` on a local Ray cluster of ``--cpus`` CPUs,
with ``--actors`` scoring actors; its time includes reading, writing and the drift test of
the sample (not Ray's start-up). Each configuration runs ``--repeats`` times; the table shows
the median and the spread (min–max).

    python benchmarks/batch_scoring.py --write
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from benchmarks_common import machine_description, write_section  # noqa: E402

TITLE = "Batch scoring (raymlops score)"


def prepare(home: Path, rows: int, flavor: str) -> tuple[str, str]:
    """A registered version and an input of ``rows`` rows like its training data; returns (ref, input)."""
    import pandas as pd

    import raymlops
    from raymlops.config import PrepareConfig, RegistryConfig
    from raymlops.data import prepare_dataset
    from raymlops.data.tables import read_table, split_uri
    from raymlops.registry import Registry

    os.environ["RAYMLOPS_HOME"] = str(home)
    data = prepare_dataset(PrepareConfig(dataset="diabetes")).directory
    train = read_table(split_uri(data, "train")).to_pandas()
    x, y = train.drop(columns=["target"]), train["target"]
    if flavor == "sklearn-hgb":
        from sklearn.ensemble import HistGradientBoostingRegressor
        estimator = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(x, y)
    else:
        from sklearn.linear_model import Ridge
        estimator = Ridge().fit(x, y)
    registry = Registry.from_config(RegistryConfig())
    raymlops.register_model("bench", estimator, train, "target", read_table(split_uri(data, "test")),
                            registry=registry)
    registry.close()
    big = pd.concat([x] * (rows // len(x) + 1), ignore_index=True).iloc[:rows]
    path = home / "input.parquet"
    big.to_parquet(path, row_group_size=max(rows // 8, 1))
    return "bench@champion", str(path)


def baseline(ref: str, input_path: str, output: str, batch_size: int) -> float:
    """One process: load the version, predict per batch, write parquet; returns seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from raymlops.config import RegistryConfig
    from raymlops.models import load_model
    from raymlops.registry import Registry

    started = time.perf_counter()
    registry = Registry.from_config(RegistryConfig())
    found = registry.get(ref)
    with tempfile.TemporaryDirectory() as directory:
        model = load_model(registry.download(ref, directory), found.manifest)
    registry.close()
    table = pq.read_table(input_path)
    parts = []
    for start in range(0, table.num_rows, batch_size):
        batch = table.slice(start, batch_size)
        prediction = model.predict({name: batch.column(name).to_numpy() for name in model.signature.input_names})
        parts.append(batch.append_column("value", pa.array(prediction.outputs["value"])))
    pq.write_table(pa.concat_tables(parts), output)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--flavor", choices=["sklearn-ridge", "sklearn-hgb"], default="sklearn-hgb")
    parser.add_argument("--write", action="store_true", help="record the table in RESULTS.md")
    args = parser.parse_args()

    import ray

    from raymlops.registry.registry import absolute_settings
    from raymlops.serve.batch import score

    home = Path(tempfile.mkdtemp(prefix="raymlops-bench-score-"))
    ref, input_path = prepare(home, args.rows, args.flavor)
    plain = [baseline(ref, input_path, str(home / f"plain-{i}.parquet"), args.batch_size) for i in range(args.repeats)]
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    settings = absolute_settings(None)
    distributed = []
    for i in range(args.repeats):
        outcome = score(ref, input_path, str(home / f"scored-{i}"), settings, batch_size=args.batch_size,
                        max_actors=args.actors, num_cpus=max(args.cpus / args.actors - 0.2, 0.1))
        assert outcome.rows == args.rows
        distributed.append(outcome.seconds)
    ray.shutdown()

    def row(name: str, seconds: list[float], cores: int) -> str:
        rates = [args.rows / s for s in seconds]
        median = statistics.median(rates)
        return (f"| {name} | {cores} | {median:,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
                f"{median / cores:,.0f} | {statistics.median(seconds):.2f} |")

    table = "\n".join([
        "| path | cores | rows/s, median (min–max) | rows/s per core | seconds |",
        "|---|---|---|---|---|",
        row("one process: pyarrow + model.predict (baseline)", plain, 1),
        row(f"raymlops score: Ray Data, {args.actors} actors", distributed, args.cpus),
    ])
    body = (f"{args.rows:,} rows × 10 features (diabetes, repeated), `{args.flavor}`, batches of "
            f"{args.batch_size}, {args.repeats} runs each; Ray times include reading, writing and the drift test "
            f"of a 5,000-row sample, not Ray's start-up. Machine: {machine_description()}.\n\n{table}\n")
    print(body)
    if args.write:
        write_section(TITLE, body)


if __name__ == "__main__":
    main()
