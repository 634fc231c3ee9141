"""``raymlops demo``: the whole loop on a local cluster, one step after another.

Each step checks that the piece it needs exists; a piece that is not built yet is named
and skipped with a note, never a stack trace. The cluster is stopped at the end unless
``keep_running`` is set (and only when this demo started it).
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from raymlops.config import DataConfig, LocalClusterConfig, MonitorConfig, ServeConfig, load_config
from raymlops.errors import RaymlopsError


@functools.cache
def console() -> Console:
    """The demo's terminal (made on first use, never at import)."""
    return Console()


@dataclass
class DemoContext:
    """What the steps share."""

    data_dir: str = "data/penguins"
    started_cluster: bool = False
    serve_url: str = ""
    app_url: str = ""
    model: str = "penguins"
    live_versions: tuple[int, ...] = ()
    report: Callable[..., None] = lambda done, total=None: None
    """Moves the running step's progress bar: ``report(done, total)``; without a total it pulses."""
    started_at: float = field(default_factory=time.time)
    """When this run began: the registry keeps earlier runs' versions and events, the story is this run's."""


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
EPOCH = re.compile(r"\[raymlops\] epoch (\d+)/(\d+)")
_last_shown: list[str] = [""]


def _job_log_echo(ctx: DemoContext) -> Callable[[str], None]:
    """Echo only the lines of a job log a person wants to see (once each); epoch lines move the bar."""
    def echo(text: str) -> None:
        for line in ANSI.sub("", text).splitlines():
            line = line.strip()
            if (epoch := EPOCH.search(line)) is not None:
                ctx.report(int(epoch.group(1)), int(epoch.group(2)))
            if any(marker in line for marker in SHOWN_LOG_MARKERS) and line != _last_shown[0]:
                _last_shown[0] = line
                console().print(f"    {line}", highlight=False, markup=False)
    return echo


def _job_step(ctx: DemoContext, module: str, config: str, *overrides: str) -> str:
    from raymlops.submission import entrypoint_for, submit_and_follow
    from raymlops.submission.client import project_working_dir

    working_dir = project_working_dir(config)
    job = submit_and_follow(entrypoint_for(module, config if working_dir else None, list(overrides)),
                            working_dir=working_dir, echo=_job_log_echo(ctx))
    return f"job {job} succeeded"


def step_train(ctx: DemoContext) -> str:
    """Submit the training job through the Ray Jobs API, as a user would."""
    return _job_step(ctx, "raymlops.jobs.train", "configs/train.yaml")


def step_tune(ctx: DemoContext) -> str:
    """A small tuning job: two trials, three epochs, ASHA."""
    return _job_step(ctx, "raymlops.jobs.tune", "configs/tune.yaml", "tune.num_samples=2", "base.train.epochs=3")


DEMO_STEPS = ("steps=[{weight: 0.25, min_duration_s: 3, min_canary_requests: 30}, "
              "{weight: 0.5, min_duration_s: 3, min_canary_requests: 30}, "
              "{weight: 1.0, min_duration_s: 3, min_canary_requests: 30}]")
#: A demo-sized monitor: small windows (the budget's per-window α shrinks with them: 1 false alarm
#: per 20,000 rows over windows of 100 rows).
DEMO_MONITOR = ["window.size=100", "window.min_samples=50", "window.max_wait_s=5", "detectors.mmd.every=2",
                "detectors.mmd.reference_rows=300",
                # drift on the champion's features retrains at once, and the result is rolled out in quick steps
                "retrain.enabled=true", "retrain.detectors=[feature]", "retrain.k=2", "retrain.n=2",
                # the monitor keeps its retraining history across restarts: a short cooldown and a large
                # daily budget let the demo run again and again on one machine
                "retrain.cooldown_s=60", "retrain.max_per_day=50",
                "retrain.train_overrides=[train.epochs=10, gate.margin=-0.05]",
                f'retrain.rollout_overrides=["{DEMO_STEPS}", poll_interval_s=1]']


def step_deploy(ctx: DemoContext) -> str:
    """Start the drift monitor, then serve champion (stable) and candidate (canary at 20%) from the registry."""
    from raymlops.monitor.client import start_monitor
    from raymlops.serve.deploy import deploy

    cfg = _config("serve", ServeConfig, "traffic.canary_weight=0.2")
    ctx.model = cfg.model_name
    if cfg.records.sink == "monitor":
        start_monitor(cfg.model_name, cfg.monitor, DEMO_MONITOR)  # deploy's own start is then a no-op
    deployed = deploy(cfg)
    ctx.app_url = deployed.url
    ctx.live_versions = tuple(v for v in (deployed.user_config.get("stable_version"),
                                          deployed.user_config.get("canary_version")) if v is not None)
    ctx.serve_url = f"{deployed.url}/v1/models/{deployed.app_name}/predict"
    user = deployed.user_config
    canary = f", canary v{user['canary_version']} at 20%" if user.get("canary_version") else " (no distinct candidate yet)"
    return f"stable v{user['stable_version']}{canary} at {ctx.serve_url}"


def _drive(ctx: DemoContext, requests: int, shift: float = 0.0, show: bool = True) -> str:
    """Send a bounded number of test-split rows (optionally shifted) to the model (``show``: on the step's bar)."""
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
            if show:
                ctx.report(index + 1, requests)
            counts[(response.status_code, response.headers.get("x-raymlops-arm"), response.headers.get("x-raymlops-version"))] += 1
    return ", ".join(f"{n} × HTTP {status} from {arm} v{version}" for (status, arm, version), n in sorted(counts.items()))


def _drift_summary(ctx: DemoContext) -> str:
    """Ask the monitor to test what it holds now, and summarise its verdict per version."""
    import time

    import httpx

    from raymlops import auth

    time.sleep(_config("serve", ServeConfig).records.flush_ms / 1000 + 0.2)  # every replica has flushed its records
    url = f"{ctx.app_url}/admin/models/{ctx.model}/drift/check?min_rows=50"
    response = httpx.post(url, headers={"authorization": f"Bearer {auth.ensure_admin_token()}"}, timeout=300)
    if response.status_code != 200:
        raise RaymlopsError(message=f"drift check failed: {response.status_code} {response.text[:200]}")
    parts = []
    for version, info in response.json()["versions"].items():
        if ctx.live_versions and int(version) not in ctx.live_versions:
            continue  # a version an earlier run served: the monitor keeps its state, the story is this run's
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


def _registry():
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry
    from raymlops.registry.registry import absolute_settings

    return Registry.from_config(RegistryConfig.model_validate(absolute_settings("configs/registry.yaml")))


def step_retrain(ctx: DemoContext) -> str:
    """The drift triggers a retraining job; its version is canaried step by step under live traffic and promoted."""
    registry = _registry()
    stages = ["retrain_submitted", "retrain_finished", *["rollout_advance"] * DEMO_STEPS.count("weight:"),
              "rollout_promote"]
    try:
        deadline = time.time() + 300
        seen: set[int] = set()
        submitted: set[str] = set()  # this run's retraining jobs (a restarted monitor may close older ones)
        while time.time() < deadline:
            _drive(ctx, 40, shift=12.0, show=False)
            ctx.report(min(len(seen), len(stages) - 1), len(stages))
            for event in registry.events(ctx.model, kinds=["retrain_submitted", "retrain_finished", "rollout_advance",
                                                           "rollout_promote", "rollout_rollback"],
                                         since=ctx.started_at):
                if event.id in seen:
                    continue
                seen.add(event.id)
                payload = event.payload or {}
                detail = payload.get("reason") or payload.get("status") or "; ".join(payload.get("reasons", []))
                weight = f" (canary weight {payload['weight']:.0%})" if "weight" in payload else ""
                console().print(f"    {event.kind}: {detail}{weight}", highlight=False, markup=False)
                if event.kind in ("rollout_promote", "rollout_rollback"):
                    return f"{event.kind.split('_')[1]}: v{event.version} — champion is now " \
                           f"v{registry.resolve(ctx.model, 'champion')}"
                if event.kind == "retrain_submitted":
                    submitted.add(str(payload.get("job_id")))
                made_candidate = payload.get("status") == "SUCCEEDED" and payload.get("candidate")
                if event.kind == "retrain_finished" and payload.get("job_id") in submitted and not made_candidate:
                    return f"retraining ended {payload.get('status')}: no new candidate, no rollout"
        return "no rollout decision within 5 minutes (see `raymlops rollout status`)"
    finally:
        registry.close()


def step_summary(ctx: DemoContext) -> str:
    """Versions and lineage, drift events, rollout decisions, and where to look."""
    from raymlops.cluster import resolve_addresses

    registry = _registry()
    try:
        lines = []
        versions = registry.list_versions(ctx.model)
        earlier = [v for v in versions if v.created_at < ctx.started_at]
        if earlier:
            lines.append(f"earlier runs: v{earlier[0].version}–v{earlier[-1].version}")
        for version in versions[len(earlier):]:
            trigger = version.lineage.get("trigger", {})
            why = trigger.get("kind", "manual") + (f", drift event {trigger['drift_event_id']}"
                                                    if trigger.get("drift_event_id") else "")
            accuracy = version.metrics.get("accuracy")
            parent = version.lineage.get("parent_version")
            lines.append(f"v{version.version}: {why}" + (f", parent v{parent}" if parent else "")
                         + (f", test accuracy {accuracy:.3f}" if accuracy is not None else ""))
        aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(registry.aliases(ctx.model).items()))
        lines.append(f"aliases: {aliases}")
        drift = registry.events(ctx.model, kinds=["drift_detected"], since=ctx.started_at)
        lines.append(f"drift events: {len(drift)} (" + ", ".join(
            f"v{e.version} {e.payload.get('detector')}" for e in drift) + ")")
        for event in registry.events(ctx.model, kinds=["rollout_advance", "rollout_promote", "rollout_rollback"],
                                     since=ctx.started_at):
            numbers = (event.payload or {}).get("numbers", {}).get("canary", {})
            lines.append(f"{event.kind} v{event.version}: {'; '.join(event.payload.get('reasons', []))}"
                         + (f" — canary {numbers.get('requests')} requests, error rate {numbers.get('error_rate')}"
                            if numbers else ""))
        addresses = resolve_addresses()
        lines += [f"Ray dashboard: {addresses.dashboard}", f"Serve endpoint: {ctx.serve_url}",
                  f"OpenAPI docs: {ctx.app_url}/docs", f"metrics: {addresses.metrics}"]
        return "\n    " + "\n    ".join(lines)
    finally:
        registry.close()


STEPS: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("prepare the data", step_prepare),
    ("start the local Ray cluster", step_cluster),
    ("train a model (Ray Train, submitted as a Ray job)", step_train),
    ("tune it (Ray Tune with ASHA, submitted as a Ray job)", step_tune),
    ("deploy stable + canary on Ray Serve", step_deploy),
    ("drive traffic through the split; the drift monitor watches", step_traffic),
    ("shift the traffic's distribution; drift is detected", step_shift),
    ("retrain on drift, canary the new version, promote it", step_retrain),
    ("summary", step_summary),
]

NOT_YET: list[str] = []


def _quiet_ray_loggers() -> None:
    """Ray's SDK logs working-dir packaging, uploads and websockets as it submits jobs: not the story.
    Its loggers are configured when its modules are imported, so import those first."""
    import ray  # noqa: F401
    import ray._private.runtime_env.working_dir  # noqa: F401
    import ray.dashboard.modules.dashboard_sdk  # noqa: F401
    import ray.job_submission  # noqa: F401

    for name in list(logging.root.manager.loggerDict):
        if name == "ray" or name.startswith("ray."):
            logging.getLogger(name).setLevel(logging.ERROR)


class StepProgress:
    """A progress bar for one step (pulsing until the step reports a total), gone when it ends."""

    def __init__(self, title: str) -> None:
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console(), transient=True)
        self.task = self.progress.add_task(title, total=None)

    def __enter__(self) -> Callable[[float, float | None], None]:
        self.progress.start()

        def report(done: float, total: float | None = None) -> None:
            self.progress.update(self.task, completed=done, total=total)
        return report

    def __exit__(self, *exc) -> None:
        self.progress.stop()


def _production_monitor(ctx: DemoContext) -> None:
    """A cluster left running keeps the monitor's configured retraining settings, not the demo's fast
    ones (a 60 s cooldown and 50 retrainings a day): the monitor restarts with configs/monitor.yaml."""
    from raymlops.monitor.client import start_monitor

    if not ctx.model:
        return
    try:
        serve_cfg = _config("serve", ServeConfig)
        start_monitor(ctx.model, serve_cfg.monitor, replace=True)
        retrain = _config("monitor", MonitorConfig).retrain
    except RaymlopsError as exc:
        console().print(f"[yellow]…[/yellow] the monitor keeps the demo's fast retraining settings: {exc}")
        return
    console().print(f"The drift monitor now runs with configs/monitor.yaml: retraining "
                    f"{'on' if retrain.enabled else 'off'}, {retrain.k} of {retrain.n} checks, cooldown "
                    f"{retrain.cooldown_s:.0f} s, at most {retrain.max_per_day} a day.", highlight=False, markup=False)


def run_demo(keep_running: bool = False) -> int:
    """Run every step in order; return the process exit code (0 ok, 2 a step failed)."""
    ctx = DemoContext()
    code = 0
    _quiet_ray_loggers()
    try:
        for number, (title, step) in enumerate(STEPS, start=1):
            with StepProgress(f"[{number}/{len(STEPS)}] {title}") as report:
                ctx.report = report
                try:
                    outcome = step(ctx)
                except RaymlopsError as exc:
                    console().print(f"[red]✗[/red] [{number}/{len(STEPS)}] {title}: {exc}")
                    code = 2
                    break
            console().print(f"[green]✓[/green] [{number}/{len(STEPS)}] {title}: {outcome}")
        for missing in NOT_YET:
            console().print(f"[yellow]…[/yellow] not there yet: {missing}")
    finally:
        if ctx.started_cluster and not keep_running:
            from raymlops.local_head import down

            console().print(down())
            console().print("To look around after the run: `raymlops demo --keep-running` (or `make demo "
                          "DEMO_ARGS=--keep-running`), then the URLs above, `raymlops registry lineage "
                          f"{ctx.model}@champion`, `raymlops rollout status {ctx.model}`, `raymlops down` when done.",
                          highlight=False, markup=False)
        elif ctx.started_cluster or keep_running:
            _production_monitor(ctx)
            console().print(f"The cluster keeps running. Look around: the URLs above, `raymlops status`, "
                          f"`raymlops registry lineage {ctx.model}@champion`, `raymlops drift status {ctx.model}`, "
                          f"`raymlops rollout status {ctx.model}`, `eval \"$(raymlops env)\"` for Ray's CLI; "
                          "`raymlops down` stops it.", highlight=False, markup=False)
    return code
