"""The model server's operations handlers: drift state and checks, feedback labels, rollouts
and live traffic changes. The routes stay on :class:`raymlops.serve.server.ModelServer`
(Serve's FastAPI ingress binds them to the replica); each runs one of these through the
server's ``_guarded`` plumbing, which maps raymlops errors to 4xx.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse
from ray import serve

from raymlops.errors import InvalidRequestError, NotFoundError
from raymlops.serve.validation import parse_feedback

if TYPE_CHECKING:
    from fastapi import Request

    from raymlops.serve.server import ModelServer, Outcome

ROLLOUT_ACTIONS = ("status", "start", "pause", "resume", "promote", "abort", "rollback")


def monitor_of(model_name: str):
    """The model's drift monitor actor.

    Raises:
        NotFoundError: no monitor runs for the model.
    """
    import ray

    from raymlops.monitor.actor import NAMESPACE, monitor_name

    try:
        return ray.get_actor(monitor_name(model_name), namespace=NAMESPACE)
    except ValueError:
        raise NotFoundError(what="drift monitor of model", name=model_name) from None


async def drift_status(server: ModelServer, request: Request, request_id: str, outcome: Outcome,
                       name: str) -> JSONResponse:
    """The monitor's drift state, latest reports and counters."""
    server._check_model(name)
    monitor = monitor_of(server.model_name)
    return JSONResponse(await asyncio.wait_for(monitor.status.remote(), timeout=10))


async def drift_check(server: ModelServer, request: Request, request_id: str, outcome: Outcome, name: str,
                      min_rows: int) -> JSONResponse:
    """Check every open window of at least ``min_rows`` rows now (admin)."""
    server.access.check_admin(request.headers.get("authorization"))
    server._check_model(name)
    await server.stream.settle()  # the monitor has every row this replica answered before
    monitor = monitor_of(server.model_name)
    return JSONResponse(await asyncio.wait_for(monitor.flush.remote(min_rows), timeout=300))


async def feedback(server: ModelServer, request: Request, request_id: str, outcome: Outcome,
                   name: str) -> JSONResponse:
    """Join labels to answered requests through the monitor; all or nothing."""
    server._check_model(name)
    body = await server._body(request)
    outcome.recorded = True  # feedback is not a prediction: no record of its own
    schema = await server.backend.schema(server.policy.stable_version)
    items = parse_feedback(body, schema.classes, server.limits.max_rows)
    monitor = monitor_of(server.model_name)
    result = await asyncio.wait_for(monitor.feedback.remote(items, schema.label), timeout=30)
    if result["unknown"]:
        raise NotFoundError(what="answered request ids (nothing was recorded)", name=", ".join(result["unknown"][:20]))
    if result.get("problem"):
        raise InvalidRequestError(field="labels", problem=result["problem"] + " (nothing was recorded)")
    return JSONResponse({"model": name, "accepted": result["accepted"], "request_id": request_id})


async def rollout(server: ModelServer, request: Request, request_id: str, outcome: Outcome, name: str,
                  action: str) -> JSONResponse:
    """A rollout command (admin): ``status``, ``start`` (body: rollout config fields) and the rest."""
    import ray

    from raymlops.serve.controller import NAMESPACE, controller_name, get_or_create_controller

    server.access.check_admin(request.headers.get("authorization"))
    server._check_model(name)
    if action not in ROLLOUT_ACTIONS:
        raise NotFoundError(what="rollout action", name=f"{action} (use one of {', '.join(ROLLOUT_ACTIONS[1:])})")
    if action == "start":
        cfg = _rollout_config(await server._body(request) if (await request.body()) else {}, name)
        controller = await asyncio.to_thread(get_or_create_controller, name, server.registry_settings, cfg.num_cpus)
        call = controller.start.remote(cfg.model_dump(mode="json"))
    else:
        try:
            controller = ray.get_actor(controller_name(name), namespace=NAMESPACE)
        except ValueError:
            raise NotFoundError(what="rollout of model", name=name) from None
        call = controller.status.remote() if action == "status" else controller.command.remote(action)
    try:
        result = await asyncio.wait_for(call, timeout=60)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.as_instanceof_cause()
        if isinstance(cause, ValueError):
            raise InvalidRequestError(field="rollout", problem=str(cause).splitlines()[-1], status=409) from None
        raise
    return JSONResponse(result)


def _rollout_config(body: Any, name: str):
    from pydantic import ValidationError

    from raymlops.config import RolloutConfig

    try:
        return RolloutConfig.model_validate({**(body or {}), "model_name": name,
                                             "app_name": serve.get_replica_context().app_name})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidRequestError(field=".".join(str(p) for p in first["loc"]), problem=first["msg"]) from None


async def set_traffic(server: ModelServer, request: Request, request_id: str, outcome: Outcome,
                      name: str) -> JSONResponse:
    """Change the split live on every replica (admin); one ``traffic_changed`` event."""
    from raymlops.serve.control import apply_in_cluster, checked_traffic

    server.access.check_admin(request.headers.get("authorization"))
    server._check_model(name)
    changes = await server._body(request)
    if not isinstance(changes, dict) or not changes:
        raise InvalidRequestError(field="body", problem="must be a JSON object of traffic settings, "
                                  "e.g. {\"canary_weight\": 0.25}")
    checked_traffic(server._traffic(), changes, server.backend.versions if server._separate else None)
    app_name = serve.get_replica_context().app_name
    user_config = await asyncio.to_thread(apply_in_cluster, app_name, changes)
    await asyncio.to_thread(server.registry.add_event, server.model_name, "traffic_changed",
                            user_config.get("canary_version"), {"changes": changes, "traffic": user_config,
                                                                "via": "http", "request_id": request_id})
    return JSONResponse({"model": name, "traffic": user_config, "request_id": request_id})
