"""The model server's operations: drift state and checks, feedback labels, rollout commands and
live traffic changes. Each takes exactly what it works with (the model's name, the record
stream, the registry, the current traffic) — never the whole server — and raises raymlops
errors, which the HTTP edge maps to statuses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from raymlops.actors import controller_name, find_actor, monitor_name
from raymlops.errors import InvalidRequestError, NotFoundError

ROLLOUT_ACTIONS = ("status", "start", "pause", "resume", "promote", "abort", "rollback")
#: Longest wait for an actor's answer, by call.
TIMEOUTS_S = {"status": 10.0, "flush": 300.0, "feedback": 30.0, "rollout": 60.0}


def monitor_of(model: str):
    """The model's drift monitor actor.

    Raises:
        NotFoundError: no monitor runs for the model.
    """
    return find_actor(monitor_name(model), f"drift monitor of model {model}")


async def drift_status(model: str) -> dict[str, Any]:
    """The monitor's drift state, latest reports and counters."""
    return await asyncio.wait_for(monitor_of(model).status.remote(), timeout=TIMEOUTS_S["status"])


async def drift_report(model: str, version: int | None) -> dict[str, Any]:
    """The monitor's drift report of a version (see ``DriftMonitor.report``)."""
    return await asyncio.wait_for(monitor_of(model).report.remote(version), timeout=TIMEOUTS_S["status"])


async def drift_check(model: str, stream, min_rows: int) -> dict[str, Any]:
    """Check every open window of at least ``min_rows`` rows now, once the monitor has every row
    this replica's ``stream`` answered before."""
    await stream.settle()
    return await asyncio.wait_for(monitor_of(model).flush.remote(min_rows), timeout=TIMEOUTS_S["flush"])


async def submit_feedback(model: str, items: list[dict[str, Any]], label_column: str) -> int:
    """Join labels to answered requests through the monitor, all or nothing; returns the rows labelled.

    Raises:
        NotFoundError: request ids the monitor does not remember.
        InvalidRequestError: labels that do not fit their requests.
    """
    result = await _actor_call(monitor_of(model).feedback.remote(items, label_column), TIMEOUTS_S["feedback"])
    return int(result["accepted"])


async def rollout_command(model: str, action: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A rollout command to the model's rollout controller (started with its drift monitor):
    ``status``, ``start`` (``config``: a validated RolloutConfig's fields) and the rest.

    Raises:
        NotFoundError: an unknown action, or no rollout controller for the model.
        RolloutError: the command conflicts with the rollout's state.
    """
    if action not in ROLLOUT_ACTIONS:
        raise NotFoundError(what="rollout action", name=f"{action} (use one of {', '.join(ROLLOUT_ACTIONS[1:])})")
    controller = find_actor(controller_name(model), f"rollout controller (it starts with the model's drift monitor: "
                            f"deploy with `records.sink: monitor`) of model {model}")
    if action == "start":
        call = controller.start.remote(config)
    else:
        call = controller.status.remote() if action == "status" else controller.command.remote(action)
    return await _actor_call(call, TIMEOUTS_S["rollout"])


async def _actor_call(call, timeout_s: float) -> Any:
    """Await an actor call; a raymlops error raised in the actor is raised here as itself."""
    import ray

    from raymlops.errors import RaymlopsError

    try:
        return await asyncio.wait_for(call, timeout=timeout_s)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RaymlopsError):
            raise exc.cause from None
        raise


def rollout_config(body: Any, model: str, app_name: str):
    """A RolloutConfig from a request body (may be empty), for ``model`` served by ``app_name``.

    Raises:
        InvalidRequestError: naming the first field that does not validate.
    """
    from pydantic import ValidationError

    from raymlops.config import RolloutConfig

    if body is not None and not isinstance(body, dict):
        raise InvalidRequestError(field="body", problem="must be a JSON object of rollout settings")
    try:
        return RolloutConfig.model_validate({**(body or {}), "model_name": model, "app_name": app_name})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRequestError(field=".".join(str(p) for p in first["loc"]), problem=first["msg"]) from None


async def change_traffic(registry, model: str, app_name: str, current: dict[str, Any], changes: Any,
                         deployed: set[int] | None, request_id: str, if_match: str | None = None) -> dict[str, Any]:
    """Change the split live on every replica of ``app_name`` through the cluster's traffic
    writer; one ``traffic_changed`` event. Returns the new traffic settings.

    Raises:
        InvalidRequestError: not a JSON object of traffic settings, or an impossible split.
        ConflictError: ``if_match`` (an ``If-Match`` header) names another traffic version than the current.
    """
    from raymlops.serve.control import checked_traffic
    from raymlops.serve.writer import change_traffic_in_cluster

    if not isinstance(changes, dict) or not changes:
        raise InvalidRequestError(field="body", problem="must be a JSON object of traffic settings, "
                                  "e.g. {\"canary_weight\": 0.25}")
    expected_version = None
    if if_match is not None:
        try:
            expected_version = int(if_match.strip().strip('"'))
        except ValueError:
            raise InvalidRequestError(field="if-match", problem="must be the traffic_version the change applies to, "
                                      "as GET /v1/models/<name> reports it") from None
    checked_traffic(current, changes, deployed)
    user_config = await asyncio.to_thread(change_traffic_in_cluster, app_name, changes, expected_version)
    await asyncio.to_thread(registry.add_event, model, "traffic_changed", user_config.get("canary_version"),
                            {"changes": changes, "traffic": user_config, "via": "http", "request_id": request_id})
    return user_config


async def admit_versions(registry, model: str, backend, versions: list) -> None:
    """Refuse a traffic change that would load a version this replica's environment cannot
    serve faithfully, before any replica tries (``versions``: numbers, or aliases).

    Raises:
        EnvironmentMismatchError: a version trained with other releases of its packages.
    """
    from raymlops.serve.versions import LocalVersions

    if not isinstance(backend, LocalVersions):
        return  # separate layout: each version deployment checked itself when it started
    for version in versions:
        ref = f"{model}@{version}" if isinstance(version, str) else f"{model}:{version}"
        try:
            found = await asyncio.to_thread(registry.get, ref)
        except NotFoundError:
            continue  # the change itself names the missing version
        if found.version not in backend.versions:
            backend.admit(found)
