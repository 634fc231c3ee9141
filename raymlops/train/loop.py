"""The per-worker training loop run by Ray Train (and by every Ray Tune trial).

Each worker reads its shard of the preprocessed training split through Ray Data
(``iter_torch_batches``), trains the DDP-wrapped model, and every epoch reports its
metrics together with a checkpoint (model, optimizer and epoch), so a restarted worker
group resumes from the last finished epoch. Rank 0 evaluates the validation split and
prints one progress line per epoch into the job log.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any

CHECKPOINT_STATE = "state.pt"
CHECKPOINT_INFO = "progress.json"


def _device_and_autocast(use_gpu: bool):
    import contextlib

    import torch

    if use_gpu and torch.cuda.is_available():
        import ray.train.torch

        device = ray.train.torch.get_device()
        return device, lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return torch.device("cpu"), contextlib.nullcontext


def _restore(model, optimizer) -> tuple[int, list[dict[str, float]]]:
    """Load the last checkpoint if this is a restart; returns (first epoch to run, history)."""
    import ray.train
    import torch

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return 0, []
    with checkpoint.as_directory() as directory:
        # weights_only: a checkpoint holds tensors and plain containers, never code.
        state = torch.load(os.path.join(directory, CHECKPOINT_STATE), map_location="cpu", weights_only=True)
        info = json.loads(open(os.path.join(directory, CHECKPOINT_INFO)).read())
    getattr(model, "module", model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return info["epoch"] + 1, info["history"]


def task_loss(task: str, outputs, labels, reduction: str = "mean"):
    """Cross-entropy of logits against class indices, or the squared error of a regression's
    single output against its standardized target."""
    import torch

    if task == "regression":
        return torch.nn.functional.mse_loss(outputs[:, 0], labels, reduction=reduction)
    return torch.nn.functional.cross_entropy(outputs, labels, reduction=reduction)


def _validate(model, batches, device, task: str) -> dict[str, float]:
    import torch

    correct = total = 0
    loss_sum = 0.0
    model.eval()
    with torch.no_grad():
        for batch in batches:
            outputs = model(batch["x"].to(device)).float()
            labels = batch["y"].to(device)
            loss_sum += float(task_loss(task, outputs, labels, reduction="sum"))
            if task != "regression":
                correct += int((outputs.argmax(dim=1) == labels).sum())
            total += len(labels)
    model.train()
    quality = {"val_rmse_std": (loss_sum / max(total, 1)) ** 0.5} if task == "regression" else \
        {"val_accuracy": correct / max(total, 1)}
    return {"val_loss": loss_sum / max(total, 1), **quality}


def _checkpoint(directory: str, model, optimizer, epoch: int, history: list[dict[str, float]]) -> None:
    import torch

    torch.save({"model": getattr(model, "module", model).state_dict(), "optimizer": optimizer.state_dict()},
               os.path.join(directory, CHECKPOINT_STATE))
    with open(os.path.join(directory, CHECKPOINT_INFO), "w") as handle:
        json.dump({"epoch": epoch, "history": history}, handle)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config`` carries plain values (see ``loop_config`` in trainer)."""
    import ray.train
    import ray.train.torch
    import torch

    from raymlops.models import build_model

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.manual_seed(config["seed"])
    device, autocast = _device_and_autocast(config["use_gpu"])
    model = build_model(config["builder"], config["params"], config["input_dim"], config["output_dim"])
    model = ray.train.torch.prepare_model(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    start_epoch, history = _restore(model, optimizer)
    if start_epoch and rank == 0:
        print(f"[raymlops] resumed from checkpoint: continuing at epoch {start_epoch + 1}/{config['epochs']}", flush=True)

    train_shard = ray.train.get_dataset_shard("train")
    valid = ray.train.get_dataset_shard("valid")
    task = config.get("task", "classification")
    dtypes = {"x": torch.float32, "y": torch.float32 if task == "regression" else torch.long}
    for epoch in range(start_epoch, config["epochs"]):
        started, rows, loss_sum = time.perf_counter(), 0, 0.0
        batches = train_shard.iter_torch_batches(
            batch_size=config["batch_size"], dtypes=dtypes,
            local_shuffle_buffer_size=config["shuffle_buffer"] or None,
            local_shuffle_seed=config["seed"] * 10_007 + epoch * 101 + rank if config["shuffle_buffer"] else None,
        )
        for batch in batches:
            features, labels = batch["x"].to(device), batch["y"].to(device)
            with autocast():
                loss = task_loss(task, model(features).float(), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rows += len(labels)
            loss_sum += float(loss.detach()) * len(labels)
        elapsed = max(time.perf_counter() - started, 1e-9)
        metrics = {"epoch": epoch + 1, "train_loss": loss_sum / max(rows, 1), "samples_per_s": rows * world / elapsed}
        if rank == 0:
            metrics.update(_validate(model, valid.iter_torch_batches(batch_size=1024, dtypes=dtypes), device, task))
        history.append({k: float(v) for k, v in metrics.items()})
        with tempfile.TemporaryDirectory() as directory:
            if rank == 0:
                _checkpoint(directory, model, optimizer, epoch, history)
                quality = "  ".join(f"{k} {metrics[k]:.4f}" for k in ("val_loss", "val_accuracy", "val_rmse_std")
                                    if k in metrics)
                print(f"[raymlops] epoch {epoch + 1}/{config['epochs']}  loss {metrics['train_loss']:.4f}  "
                      f"{quality}  {metrics['samples_per_s']:.0f} samples/s", flush=True)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(directory))
            else:
                ray.train.report(metrics, checkpoint=None)
