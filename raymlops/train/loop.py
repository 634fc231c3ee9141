"""The per-worker training loop run by Ray Train (and by every Ray Tune trial).

``train_loop_per_worker`` builds the worker's :class:`~raymlops.train.context.LoopContext` and
runs the configured loop: the built-in one below, or yours (``train.loop``). The built-in loop
trains the DDP-wrapped network with Adam on the worker's shard, and every epoch reports its
metrics with a checkpoint (model, optimizer, epoch), so a restarted worker group resumes from
the last finished epoch. Rank 0 evaluates the validation split.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from raymlops.train.context import CHECKPOINT_INFO, CHECKPOINT_STATE, LoopContext
from raymlops.train.losses import task_loss

__all__ = ["CHECKPOINT_INFO", "CHECKPOINT_STATE", "builtin_loop", "resolve_loop", "task_loss", "train_loop_per_worker"]


def builtin_loop(config: dict[str, Any], context: LoopContext) -> None:
    """Adam over the configured network with the task's loss, one report per epoch."""
    import torch

    torch.manual_seed(config["seed"])
    model = context.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    start = context.restore(model, optimizer)
    for epoch in range(start, context.epochs):
        started, rows, loss_sum = time.perf_counter(), 0, 0.0
        for batch in context.batches("train", epoch):
            with context.autocast():
                loss = task_loss(context.task, model(batch["x"]).float(), batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            rows += len(batch["y"])
            loss_sum += float(loss.detach()) * len(batch["y"])
        elapsed = max(time.perf_counter() - started, 1e-9)
        metrics = {"train_loss": loss_sum / max(rows, 1), "samples_per_s": rows * context.world_size / elapsed}
        context.report({**metrics, **context.validate(model)}, model, optimizer)


def resolve_loop(path: str | None) -> Callable[[dict[str, Any], LoopContext], None]:
    """The loop ``train.loop`` names (``package.module:function``), or the built-in one.

    Raises:
        ConfigError: naming ``train.loop`` when it does not import or is not callable.
    """
    from raymlops.errors import ConfigError
    from raymlops.plugins import load_plugin

    if not path:
        return builtin_loop
    loop = load_plugin(path, {"builtin": builtin_loop}, "train.loop", form="package.module:function")
    if not callable(loop):
        raise ConfigError(file="<config>", problems=[("train.loop", f"{path!r} is not callable")])
    return loop


def train_loop_per_worker(config: dict[str, Any]) -> None:
    """Ray Train entry point; ``config`` carries plain values (see ``loop_config`` in trainer)."""
    resolve_loop(config.get("loop"))(config, LoopContext(config))
