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
    app_url: str = ""
    model: str = "penguins"


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


#: A demo-sized monitor: small windows, a quickly calibrated online detector.
DEMO_MONITOR = ["window.size=100", "window.min_samples=50", "window.max_wait_s=5", "detectors.mmd.every=2",
                "detectors.mmd.n_permutations=50", "detectors.online.ert=200", "detectors.online.n_bootstraps=1000",
                "detectors.online.reference_rows=300"]


def step_deploy(ctx: DemoContext) -> str:
    """Start the drift monitor, then serve champion (stable) and candidate (canary at 20%) from the registry."""
    from raymlops.config import ServeConfig
    from raymlops.monitor.client import start_monitor
    from raymlops.serve.deploy import deploy

    cfg = _config("serve", ServeConfig, "traffic.canary_weight=0.2")
    ctx.model = cfg.model_name
    if cfg.records.sink == "monitor":
        start_monitor(cfg.model_name, cfg.monitor, DEMO_MONITOR)  # deploy's own start is then a no-op
    deployed = deploy(cfg)
    ctx.app_url = deployed.url
    ctx.serve_url = f"{deployed.url}/v1/models/{deployed.app_name}/predict"
    user = deployed.user_config
    canary = f", canary v{user['canary_version']} at 20%" if user.get("canary_version") else " (no distinct candidate yet)"
    return f"stable v{user['stable_version']}{canary} at {ctx.serve_url}"


def _drive(ctx: DemoContext, requests: int, shift: float = 0.0) -> str:
    """Send a bounded number of test-split rows (optionally shifted) to the model."""
    import collections

    import httpx

    from raymlops.data.tables import read_table, split_uri

    test = read_table(split_uri(ctx.data_dir, "test")).drop_null().to_pylist()
    counts: collections.Counter = collections.Counter()
    with httpx.Client(timeout=30) as client:
        for index in range(requests):
            row = {k: v for k, v in test[index % len(test)].items() if k != "species"}
            if shift:
                row["bill_length_mm"] += shift
                row["body_mass_g"] += 100 * shift
            response = client.post(ctx.serve_url, json={"instances": [row]})
            counts[(response.status_code, response.headers.get("x-raymlops-arm"), response.headers.get("x-raymlops-version"))] += 1
    return ", ".join(f"{n} × HTTP {status} from {arm} v{version}" for (status, arm, version), n in sorted(counts.items()))


def _drift_summary(ctx: DemoContext) -> str:
    """Ask the monitor to test what it holds now, and summarise its verdict per version."""
    import time

    import httpx

    from raymlops import auth

    time.sleep(0.5)  # replicas flush their records every 100 ms
    url = f"{ctx.app_url}/admin/models/{ctx.model}/drift/check?min_rows=50"
    response = httpx.post(url, headers={"authorization": f"Bearer {auth.ensure_admin_token()}"}, timeout=300)
    if response.status_code != 200:
        raise RaymlopsError(message=f"drift check failed: {response.status_code} {response.text[:200]}")
    parts = []
    for version, info in response.json()["versions"].items():
        feature = info["reports"].get("feature")
        lowest = min(feature["p_values"].items(), key=lambda kv: kv[1]) if feature else None
        state = f"DRIFT ({', '.join(info['drifting'])})" if info["drifting"] else "no drift"
        detail = f", lowest p {lowest[1]:.2g} ({lowest[0]})" if lowest else ""
        parts.append(f"v{version}: {state}{detail}")
    return "; ".join(parts) or "no versions seen yet"


def step_traffic(ctx: DemoContext) -> str:
    """Drive a bounded amount of in-distribution traffic (300 requests) from the test split."""
    answered = _drive(ctx, 300)
    if not ctx.app_url:
        return answered
    return f"{answered}\n    monitor: {_drift_summary(ctx)}"


def step_shift(ctx: DemoContext) -> str:
    """Shift the traffic (longer bills, heavier birds) and show the monitor flag it."""
    answered = _drive(ctx, 300, shift=12.0)
    return f"{answered}\n    monitor: {_drift_summary(ctx)}"


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("prepare the data", step_prepare),
    ("start the local Ray cluster", step_cluster),
    ("train a model (Ray Train, submitted as a Ray job)", step_train),
    ("tune it (Ray Tune with ASHA, submitted as a Ray job)", step_tune),
    ("deploy stable + canary on Ray Serve", step_deploy),
    ("drive traffic through the split; the drift monitor watches", step_traffic),
    ("shift the traffic's distribution; drift is detected", step_shift),
]

NOT_YET = [
    "retrain on drift, canary the new version and promote it (the rollout stage)",
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
