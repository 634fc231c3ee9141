"""What raymlops gives a per-worker training loop — the built-in one and yours alike.

A loop is any function ``loop(config: dict, context: LoopContext) -> None`` named in
``train.loop`` (``package.module:function``). It runs on every Ray Train worker. raymlops
keeps doing the rest: the context builds the configured network (DDP-wrapped, on the
worker's device), feeds the worker's shard of the preprocessed training split, restores the
last checkpoint after a worker-group restart, and turns every ``report`` into Ray Train
metrics plus a checkpoint — from which the job evaluates, registers and gates the model
exactly as for the built-in loop.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator

CHECKPOINT_STATE = "state.pt"
CHECKPOINT_INFO = "progress.json"


class LoopContext:
    """One worker's view of the run.

    Attributes:
        config: the loop's plain values (``epochs``, ``batch_size``, ``lr``, ``seed``, ``task``,
            ``params`` of the builder, and your ``train.loop_params`` under ``loop_params``).
        rank, world_size: this worker's place in the group.
        device: where tensors go (``cuda`` when a GPU was given to the worker, else ``cpu``).
        task: ``classification`` (``y`` holds class indices) or ``regression`` (``y`` holds the
            standardized target).
        history: the metrics reported so far (restored after a restart).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        import ray.train

        self.config = config
        context = ray.train.get_context()
        self.rank, self.world_size = context.get_world_rank(), context.get_world_size()
        self.task = config.get("task", "classification")
        self.device = _device(config.get("use_gpu", False))
        self.history: list[dict[str, float]] = []
        self._epoch = 0

    @property
    def epochs(self) -> int:
        """Epochs the run should train (``train.epochs``)."""
        return int(self.config["epochs"])

    def build_model(self):
        """The configured network (``model.builder`` with its ``params``), moved to the device and
        wrapped for distributed training; raymlops rebuilds the same network to serve it."""
        import ray.train.torch

        from raymlops.models import build_model

        network = build_model(self.config["builder"], self.config["params"], self.config["input_dim"],
                              self.config["output_dim"])
        return ray.train.torch.prepare_model(network)

    def autocast(self):
        """bfloat16 autocast on a GPU, nothing on the CPU."""
        import torch

        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batches(self, split: str = "train", epoch: int = 0, batch_size: int | None = None) -> Iterator[dict]:
        """``{"x": features, "y": labels}`` tensors on the device, from this worker's shard of the
        training split (shuffled per epoch) or the whole validation split (``split="valid"``)."""
        import ray.train
        import torch

        dtypes = {"x": torch.float32, "y": torch.float32 if self.task == "regression" else torch.long}
        shard = ray.train.get_dataset_shard(split)
        shuffle = self.config.get("shuffle_buffer") if split == "train" else 0
        seed = self.config["seed"] * 10_007 + epoch * 101 + self.rank if shuffle else None
        for batch in shard.iter_torch_batches(batch_size=batch_size or (self.config["batch_size"] if split == "train"
                                                                         else 1024),
                                              dtypes=dtypes, local_shuffle_buffer_size=shuffle or None,
                                              local_shuffle_seed=seed):
            yield {"x": batch["x"].to(self.device), "y": batch["y"].to(self.device)}

    def restore(self, model, optimizer=None) -> int:
        """Load the last checkpoint into ``model`` (and ``optimizer``) after a restart; returns the
        epoch to continue from (0 on a fresh start)."""
        import ray.train
        import torch

        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            return 0
        with checkpoint.as_directory() as directory:
            # weights_only: a checkpoint holds tensors and plain containers, never code.
            state = torch.load(os.path.join(directory, CHECKPOINT_STATE), map_location="cpu", weights_only=True)
            info = json.loads(open(os.path.join(directory, CHECKPOINT_INFO)).read())
        getattr(model, "module", model).load_state_dict(state["model"])
        if optimizer is not None and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        self.history, self._epoch = info["history"], info["epoch"] + 1
        if self.rank == 0:
            print(f"[raymlops] resumed from checkpoint: continuing at epoch {self._epoch + 1}/{self.epochs}", flush=True)
        return self._epoch

    def report(self, metrics: dict[str, float], model, optimizer=None) -> None:
        """End an epoch: report ``metrics`` to Ray Train and checkpoint ``model`` (and ``optimizer``)
        from rank 0, so a restarted group resumes here and the job can register the model."""
        import ray.train
        import torch

        self._epoch += 1
        values = {"epoch": float(self._epoch), **{k: float(v) for k, v in metrics.items()}}
        self.history.append(values)
        if self.rank != 0:
            ray.train.report(values, checkpoint=None)
            return
        with tempfile.TemporaryDirectory() as directory:
            torch.save({"model": getattr(model, "module", model).state_dict(),
                        "optimizer": optimizer.state_dict() if optimizer is not None else None},
                       os.path.join(directory, CHECKPOINT_STATE))
            with open(os.path.join(directory, CHECKPOINT_INFO), "w") as handle:
                json.dump({"epoch": self._epoch - 1, "history": self.history}, handle)
            shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "epoch")
            print(f"[raymlops] epoch {self._epoch}/{self.epochs}  {shown}", flush=True)
            ray.train.report(values, checkpoint=ray.train.Checkpoint.from_directory(directory))

    def validate(self, model) -> dict[str, float]:
        """Validation loss, and accuracy (classification) or RMSE in standard deviations of the
        target (regression), over the whole validation split (rank 0 only; others get ``{}``)."""
        import torch

        from raymlops.train.losses import task_loss

        if self.rank != 0:
            return {}
        correct = total = 0
        loss_sum = 0.0
        model.eval()
        with torch.no_grad():
            for batch in self.batches("valid"):
                outputs = model(batch["x"]).float()
                loss_sum += float(task_loss(self.task, outputs, batch["y"], reduction="sum"))
                if self.task != "regression":
                    correct += int((outputs.argmax(dim=1) == batch["y"]).sum())
                total += len(batch["y"])
        model.train()
        mean = loss_sum / max(total, 1)
        quality = {"val_rmse_std": mean ** 0.5} if self.task == "regression" else {"val_accuracy": correct / max(total, 1)}
        return {"val_loss": mean, **quality}


def _device(use_gpu: bool):
    import torch

    if use_gpu and torch.cuda.is_available():
        import ray.train.torch

        return ray.train.torch.get_device()
    return torch.device("cpu")
