"""A training loop of your own, run by raymlops on every Ray Train worker.

    raymlops train --set train.loop=my_loop:train --set code=[examples/own_loop/my_loop.py] \
                   --set 'train.loop_params={momentum: 0.9}'

raymlops builds the configured network (``context.build_model()``: DDP-wrapped, on the
worker's device), feeds this worker's shard (``context.batches``), resumes after a restart
(``context.restore``), and turns each ``context.report`` into metrics plus a checkpoint; after
the run it evaluates, registers (with lineage) and gates the model as for its own loop.
"""

import torch
import torch.nn.functional as F


def train(config, context):
    """SGD with momentum and a cosine learning-rate schedule; one report per epoch."""
    torch.manual_seed(config["seed"])
    model = context.build_model()
    momentum = float(config["loop_params"].get("momentum", 0.9))
    optimizer = torch.optim.SGD(model.parameters(), lr=config["lr"], momentum=momentum)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=context.epochs)
    start = context.restore(model, optimizer)
    for _ in range(start):
        schedule.step()
    for epoch in range(start, context.epochs):
        loss_sum, rows = 0.0, 0
        for batch in context.batches("train", epoch):
            outputs = model(batch["x"])
            if context.task == "regression":
                loss = F.mse_loss(outputs[:, 0], batch["y"])
            else:
                loss = F.cross_entropy(outputs, batch["y"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(batch["y"])
            rows += len(batch["y"])
        schedule.step()
        metrics = {"train_loss": loss_sum / max(rows, 1), "lr": schedule.get_last_lr()[0]}
        context.report({**metrics, **context.validate(model)}, model, optimizer)
