"""Training throughput: samples/s with 1 and 2 Ray Train workers, and Ray Data ingest alone
vs. ingest with training (is ingest the bottleneck?), all in one run on one local cluster.

    python benchmarks/train_throughput.py [--rows 40000] [--epochs 3] [--gpu]

Prints a markdown table and, with --write, replaces the training section of
benchmarks/RESULTS.md. GPU figures come from the same script on a machine with GPUs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks_common import machine_description, write_section

from raymlops.config import LoopConfig, ScalingSettings, SynthConfig, TrainConfig
from raymlops.data import synthesize
from raymlops.train.loop import CHECKPOINT_INFO
from raymlops.train.trainer import build_trainer, prepare_inputs


def ingest_only_loop(config):
    """Iterate the worker's shard like training does, without a model; history goes in the checkpoint
    (Train V2 keeps only metrics reported with a checkpoint)."""
    import json
    import os
    import tempfile as _tempfile
    import time as _time

    import ray.train
    import torch

    from raymlops.train.loop import CHECKPOINT_INFO

    shard = ray.train.get_dataset_shard("train")
    context = ray.train.get_context()
    history = []
    for epoch in range(config["epochs"]):
        started, rows = _time.perf_counter(), 0
        for batch in shard.iter_torch_batches(batch_size=config["batch_size"], dtypes={"x": torch.float32, "y": torch.long}):
            rows += len(batch["y"])
        history.append({"epoch": epoch + 1, "samples_per_s": rows * context.get_world_size() / (_time.perf_counter() - started)})
        with _tempfile.TemporaryDirectory() as directory:
            checkpoint = None
            if context.get_world_rank() == 0:
                with open(os.path.join(directory, CHECKPOINT_INFO), "w") as handle:
                    json.dump({"epoch": epoch, "history": history}, handle)
                checkpoint = ray.train.Checkpoint.from_directory(directory)
            ray.train.report(history[-1], checkpoint=checkpoint)


def measure(cfg: TrainConfig, ingest_only: bool) -> float:
    """Median samples/s over the epochs after the first (warm-up)."""
    inputs = prepare_inputs(cfg)
    trainer = build_trainer(cfg, inputs)
    if ingest_only:
        trainer.train_loop_per_worker = ingest_only_loop
    start = time.perf_counter()
    result = trainer.fit()
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as directory:
        progress = json.loads((Path(directory) / CHECKPOINT_INFO).read_text())
    history = [round(entry["samples_per_s"]) for entry in progress["history"]]
    print(f"  {'ingest' if ingest_only else 'train'} workers={cfg.scaling.num_workers}: {time.perf_counter() - start:.1f}s, per epoch {history}")
    return statistics.median(history[1:] or history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--gpu", action="store_true", help="use GPUs (one per worker)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args()

    import ray

    ray.init(include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        data = synthesize(SynthConfig(rows=args.rows, output=str(Path(tmp) / "synth"))).directory
        rows = []
        for workers in (1, 2):
            cfg = TrainConfig(
                data={"path": data, "cache": True}, storage={"path": str(Path(tmp) / "runs")},
                train=LoopConfig(epochs=args.epochs, batch_size=args.batch_size, shuffle_buffer=0),
                scaling=ScalingSettings(num_workers=workers, use_gpu=args.gpu, cpus_per_worker=0.5),
                registry=None,
            )
            ingest = measure(cfg, ingest_only=True)
            train = measure(cfg, ingest_only=False)
            rows.append((workers, ingest, train))
    device = "GPU" if args.gpu else "CPU"
    table = [
        f"Synthetic data, {args.rows} rows × 20 features, batch {args.batch_size} per worker, {args.epochs} epochs "
        f"(median of epochs after the first), {device}, preprocessed split cached in the object store.",
        "",
        "| workers | Ray Data ingest alone (samples/s) | ingest + training (samples/s) | training / ingest |",
        "|---:|---:|---:|---:|",
    ]
    for workers, ingest, train in rows:
        table.append(f"| {workers} | {ingest:,.0f} | {train:,.0f} | {train / ingest:.2f} |")
    scaling = rows[1][2] / rows[0][2]
    bottleneck = all(train / ingest > 0.8 for _, ingest, train in rows)
    table += ["", f"2 workers vs 1 (training): {scaling:.2f}×.", "",
              f"Reading: ingest {'is close to' if bottleneck else 'is not'} the bottleneck — Ray Data alone delivers "
              f"{min(i / t for _, i, t in rows):.1f}× or more of what training consumes. The first epoch (left out) "
              "includes reading and preprocessing before the split is cached. With as many workers as cores, a "
              "second DDP worker shares the same cores and pays an all-reduce per step, so it only pays off with "
              "more cores or GPUs. No GPU figures are recorded unless a GPU machine ran `--gpu --write`."]
    text = "\n".join(table)
    print(text)
    if args.write:
        write_section(f"Training throughput ({device})", f"Machine: {machine_description()}\n\n{text}")


if __name__ == "__main__":
    main()
