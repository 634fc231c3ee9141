"""Monitor job: ``ray job submit --working-dir . -- python -m raymlops.jobs.monitor --set model_name=NAME``.

Creates the model's DriftMonitor actor (detached: it outlives this job) if it is not running;
with ``--replace``, a running one is stopped first and started again with these settings (its
state comes back from its snapshot).
The model's rollout controller starts with it (rollouts judge the monitor's evidence); with
``retrain.enabled`` and ``retrain.auto_rollout`` it watches the registry, so each version a
retraining registers as `candidate` is rolled out."""

from __future__ import annotations

import sys
import time
from typing import Sequence

from raymlops.config import MonitorConfig
from raymlops.submission.entry import run_job


def start(cfg: MonitorConfig, replace: bool = False) -> dict:
    """Create the monitor actor (and the rollout controller) unless they run; returns its status.
    ``replace``: stop a running monitor first, so it runs with ``cfg`` (its state is restored)."""
    import ray

    from raymlops.actors import NAMESPACE, monitor_name, monitor_shard_names
    from raymlops.monitor.launch import get_or_create
    from raymlops.registry.registry import absolute_settings

    context = ray.init()
    if replace:
        for name in [*monitor_shard_names(cfg.model_name), monitor_name(cfg.model_name)]:
            try:
                old = ray.get_actor(name, namespace=NAMESPACE)
                ray.get(old.flush.remote(10**9), timeout=120)  # its latest state goes into the snapshot
                ray.kill(old, no_restart=True)
                for _ in range(300):  # its name is free once it is gone
                    ray.get_actor(name, namespace=NAMESPACE)
                    time.sleep(0.1)
            except ValueError:
                pass  # none running (any more)
    dashboard = context.dashboard_url
    jobs_address = dashboard if not dashboard or "://" in dashboard else f"http://{dashboard}"
    registry = absolute_settings(cfg.registry)
    monitor = get_or_create(cfg.model_dump(mode="json"), registry, jobs_address)
    status = ray.get(monitor.status.remote(), timeout=120)
    # a monitor that was already running keeps the settings it was started with: so does its controller
    running = MonitorConfig.model_validate(ray.get(monitor.config.remote(), timeout=60))
    start_rollout_controller(running, registry)
    return status


def start_rollout_controller(cfg: MonitorConfig, registry: dict) -> None:
    """Start the model's rollout controller; point it at the registry's retraining events when
    retraining rolls out automatically (else it stops watching)."""
    import ray

    from raymlops.config import RolloutConfig, find_config, load_config
    from raymlops.rollout.controller import get_or_create_controller

    retrain = cfg.retrain
    path = find_config(retrain.rollout_config, "rollout")
    rollout = load_config(path, RolloutConfig, [*retrain.rollout_overrides, f"model_name={cfg.model_name}"])
    controller = get_or_create_controller(cfg.model_name, registry, rollout.num_cpus)
    watched = rollout.model_dump(mode="json") if retrain.enabled and retrain.auto_rollout else None
    ray.get(controller.watch.remote(watched), timeout=120)


def describe(status: dict) -> str:
    """One line: the monitor runs, fresh or restored."""
    restored = status["restored_snapshot_age_s"]
    since = f"restored a snapshot {restored:.0f}s old" if restored is not None else "fresh state"
    return f"drift monitor of {status['model']} running ({since}); prediction log: {status['prediction_log']}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job; returns its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    replace = "--replace" in argv
    argv = [arg for arg in argv if arg != "--replace"]
    return run_job("Start the drift monitor actor of a model (--replace: restart a running one with these "
                   "settings).", "monitor", lambda cfg: start(cfg, replace), describe, argv)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
