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
    serve_url: str = ""


def _config(kind: str, model, *overrides: str):
    path = Path("configs") / f"{kind}.yaml"
    return load_config(path if path.exists() else None, model, overrides)


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


def step_deploy(ctx: DemoContext) -> str:
    """Serve champion (stable) and candidate (canary at 20%) from the registry."""
    from raymlops.config import ServeConfig
    from raymlops.serve.deploy import deploy

    deployed = deploy(_config("serve", ServeConfig, "traffic.canary_weight=0.2"))
    ctx.serve_url = f"{deployed.url}/v1/models/{deployed.app_name}/predict"
    user = deployed.user_config
    canary = f", canary v{user['canary_version']} at 20%" if user.get("canary_version") else " (no distinct candidate yet)"
    return f"stable v{user['stable_version']}{canary} at {ctx.serve_url}"


def step_traffic(ctx: DemoContext) -> str:
    """Drive a bounded amount of traffic (300 requests) from the test split."""
    import collections

    import httpx

    from raymlops.data.tables import read_table, split_uri

    test = read_table(split_uri(ctx.data_dir, "test")).to_pylist()
    counts: collections.Counter = collections.Counter()
    with httpx.Client(timeout=30) as client:
        for index in range(300):
            row = {k: v for k, v in test[index % len(test)].items() if k != "species"}
            response = client.post(ctx.serve_url, json={"instances": [row]})
            counts[(response.status_code, response.headers.get("x-raymlops-arm"), response.headers.get("x-raymlops-version"))] += 1
    return ", ".join(f"{n} × HTTP {status} from {arm} v{version}" for (status, arm, version), n in sorted(counts.items()))


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("prepare the data", step_prepare),
    ("start the local Ray cluster", step_cluster),
    ("train a model (Ray Train, submitted as a Ray job)", step_train),
    ("tune it (Ray Tune with ASHA, submitted as a Ray job)", step_tune),
    ("deploy stable + canary on Ray Serve", step_deploy),
    ("drive traffic through the split", step_traffic),
]

NOT_YET = [
    "shift the traffic, detect drift, retrain, canary and promote (the monitor and rollout stages)",
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
