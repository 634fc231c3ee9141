"""Creating a model's monitor actor on the cluster (the packaged job and tests call it)."""

from __future__ import annotations

from typing import Any

from raymlops.actors import NAMESPACE, monitor_name
from raymlops.monitor.actor import DriftMonitor


def get_or_create(config: dict[str, Any], registry: dict[str, Any], jobs_address: str | None = None):
    """The model's monitor actor (shard 0), created (detached, restartable) when it does not exist
    yet, and with ``shards`` > 1 its other shards (see :mod:`raymlops.monitor.shards`).

    Needs a connected Ray driver.
    """
    import ray

    from raymlops.config import MonitorConfig

    cfg = MonitorConfig.model_validate(config)
    remote = ray.remote(DriftMonitor)

    def shard(index: int):
        return remote.options(name=monitor_name(cfg.model_name, index), namespace=NAMESPACE, lifetime="detached",
                              get_if_exists=True, max_restarts=-1, max_task_retries=0, num_cpus=cfg.num_cpus,
                              max_concurrency=64).remote(config, registry, jobs_address, index)

    leader = shard(0)
    if cfg.shards > 1:  # a monitor already running keeps its own number of shards
        for index in range(1, ray.get(leader.shards.remote(), timeout=120)):
            shard(index)
    return leader
