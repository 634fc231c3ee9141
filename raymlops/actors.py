"""Names of raymlops's per-model actors, their namespace, and the lookup every caller shares.

The drift monitor and the rollout controller are detached, named actors, so any process
of the cluster (a replica, a job, the CLI's driver) finds them by name.
"""

from __future__ import annotations

from typing import Any

#: The Ray namespace of every raymlops actor.
NAMESPACE = "raymlops"


#: Monitor shards of one model at most (see :mod:`raymlops.monitor.shards`).
MAX_MONITOR_SHARDS = 16


def monitor_name(model: str, shard: int = 0) -> str:
    """The actor name of a model's drift monitor (``shard`` 0), or of its shard ``shard``."""
    return f"raymlops-monitor-{model}" + (f"-shard{shard}" if shard else "")


def monitor_shard_names(model: str) -> list[str]:
    """The names of the model's monitor shards beyond the first that are alive, in order.
    Needs a connected Ray driver."""
    import ray

    names = []
    for shard in range(1, MAX_MONITOR_SHARDS):
        try:
            ray.get_actor(monitor_name(model, shard), namespace=NAMESPACE)
        except ValueError:
            break
        names.append(monitor_name(model, shard))
    return names


def controller_name(model: str) -> str:
    """The actor name of a model's rollout controller."""
    return f"raymlops-rollout-{model}"


def find_actor(name: str, what: str) -> Any:
    """The named actor's handle. Needs a connected Ray driver.

    Args:
        name: the actor's name (see :func:`monitor_name`, :func:`controller_name`).
        what: what it is, for the error (e.g. ``drift monitor of model penguins``).

    Raises:
        NotFoundError: no such actor is alive.
    """
    import ray

    from raymlops.errors import NotFoundError

    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        raise NotFoundError(what=what, name=name) from None


def schedule_own(method: str) -> None:
    """From an actor's ``__init__``: call its own ``method`` once the actor is up. A restarted
    actor runs ``__init__`` again, so its background loops come back without any caller (a
    task's retries belong to the process that submitted it, which may be long gone). Outside
    an actor (a plain instance in tests) this does nothing."""
    import ray

    if not ray.is_initialized():
        return
    try:
        actor = ray.get_runtime_context().current_actor
    except RuntimeError:  # not inside an actor
        return
    getattr(actor, method).remote()


def connect_driver(gcs: str | None = None) -> None:
    """Connect this process to the cluster as a Ray driver unless it is connected: inside a job
    (or on the head node) ``RAY_ADDRESS`` names it; else ``gcs`` (``host:port``)."""
    import logging
    import os

    import ray

    if ray.is_initialized():
        return
    address = gcs if gcs and not os.environ.get("RAY_ADDRESS", "").startswith(("http://", "https://")) else None
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto", namespace=NAMESPACE,
             log_to_driver=False, logging_level=logging.WARNING)


def stop_model_actors(model: str) -> list[str]:
    """Kill the model's drift monitor and rollout controller (no restart); returns the names of
    those that were alive. Their persisted state (snapshots, registry events) is kept, so a later
    deploy resumes where they stopped. Needs a connected Ray driver."""
    import ray

    stopped = []
    for name in (controller_name(model), monitor_name(model), *monitor_shard_names(model)):
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
            stopped.append(name)
        except ValueError:
            continue
    return stopped
