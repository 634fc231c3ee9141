"""Monitor job: ray job submit --working-dir . -- python jobs/monitor.py --config configs/monitor.yaml [--set k=v]

Creates the model's DriftMonitor actor (detached: it outlives this job) if it is not running."""

import sys

from raymlops.config import MonitorConfig
from raymlops.jobs.entry import run_job


def start(cfg: MonitorConfig) -> dict:
    import ray

    from raymlops.monitor.actor import get_or_create
    from raymlops.registry.registry import absolute_settings

    context = ray.init()
    dashboard = context.dashboard_url
    jobs_address = dashboard if not dashboard or "://" in dashboard else f"http://{dashboard}"
    monitor = get_or_create(cfg.model_dump(mode="json"), absolute_settings(cfg.registry), jobs_address)
    return ray.get(monitor.status.remote(), timeout=120)


def describe(status: dict) -> str:
    restored = status["restored_snapshot_age_s"]
    since = f"restored a snapshot {restored:.0f}s old" if restored is not None else "fresh state"
    return f"drift monitor of {status['model']} running ({since}); prediction log: {status['prediction_log']}"


if __name__ == "__main__":
    sys.exit(run_job("Start the drift monitor actor of a model.", "configs/monitor.yaml", MonitorConfig, start, describe))
