"""``raymlops demo``: the whole loop on a local cluster, one step after another.

Each step checks that the piece it needs exists; a piece that is not built yet is named
and skipped with a note, never a stack trace. The cluster is stopped at the end unless
``keep_running`` is set (and only when this demo started it).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rich.console import Console

from raymlops.config import DataConfig, LocalClusterConfig, load_config
from raymlops.errors import RaymlopsError

console = Console()


@dataclass
class DemoContext:
    """What the steps share."""

    data_dir: str = "data/penguins"
    started_cluster: bool = False


def _config(kind: str, model):
    path = Path("configs") / f"{kind}.yaml"
    return load_config(path if path.exists() else None, model)


def step_prepare(ctx: DemoContext) -> str:
    """Prepare the data set into parquet splits."""
    from raymlops.data import prepare_dataset

    cfg = _config("data", DataConfig).prepare
    prepared = prepare_dataset(cfg)
    ctx.data_dir = prepared.directory
    return f"{prepared.schema.name}: " + ", ".join(f"{k} {v}" for k, v in prepared.rows.items()) + f" rows in {prepared.directory}"


def step_cluster(ctx: DemoContext) -> str:
    """Start the local cluster (or reuse the running one)."""
    from raymlops.local_head import up

    result = up(_config("local", LocalClusterConfig))
    ctx.started_cluster = result.started
    return result.message


SHOWN_LOG_MARKERS = ("[raymlops]", "registered ", "offline gate", "aliases:", "error:", "Trial status", "test accuracy")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
_last_shown: list[str] = [""]


def _show_job_lines(text: str) -> None:
    """Echo only the lines of a job log a person wants to see during the demo (once each)."""
    for line in ANSI.sub("", text).splitlines():
        line = line.strip()
        if any(marker in line for marker in SHOWN_LOG_MARKERS) and line != _last_shown[0]:
            _last_shown[0] = line
            console.print(f"    {line}", highlight=False, markup=False)


def _job_step(script: str, config: str, *overrides: str) -> str:
    if not Path(script).exists():
        return f"skipped: {script} is not there yet"
    from raymlops.jobs import entrypoint_for, submit_and_follow

    return f"job {submit_and_follow(entrypoint_for(script, config, list(overrides)), echo=_show_job_lines)} succeeded"


def step_train(ctx: DemoContext) -> str:
    """Submit the training job through the Ray Jobs API, as a user would."""
    return _job_step("jobs/train.py", "configs/train.yaml")


def step_tune(ctx: DemoContext) -> str:
    """A small tuning job: two trials, three epochs, ASHA."""
    return _job_step("jobs/tune.py", "configs/tune.yaml", "tune.num_samples=2", "base.train.epochs=3")


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("prepare the data", step_prepare),
    ("start the local Ray cluster", step_cluster),
    ("train a model (Ray Train, submitted as a Ray job)", step_train),
    ("tune it (Ray Tune with ASHA, submitted as a Ray job)", step_tune),
]

NOT_YET = [
    "deploy stable + canary, drive traffic, shift it, detect drift, retrain, canary and promote",
]


def run_demo(keep_running: bool = False) -> int:
    """Run every step in order; return the process exit code (0 ok, 2 a step failed)."""
    ctx = DemoContext()
    code = 0
    logging.getLogger("ray").setLevel(logging.WARNING)  # the SDK's upload/websocket chatter is not the story
    try:
        for number, (title, step) in enumerate(STEPS, start=1):
            with console.status(f"[{number}/{len(STEPS)}] {title} ..."):
                try:
                    outcome = step(ctx)
                except RaymlopsError as exc:
                    console.print(f"[red]✗[/red] [{number}/{len(STEPS)}] {title}: {exc}")
                    code = 2
                    break
            console.print(f"[green]✓[/green] [{number}/{len(STEPS)}] {title}: {outcome}")
        for missing in NOT_YET:
            console.print(f"[yellow]…[/yellow] not there yet: {missing}")
    finally:
        if ctx.started_cluster and not keep_running:
            from raymlops.local_head import down

            console.print(down())
        elif ctx.started_cluster:
            console.print('The cluster keeps running: `raymlops status`, `eval "$(raymlops env)"`, `raymlops down`.')
    return code
