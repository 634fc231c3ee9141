"""The model server: a Ray Serve deployment with a FastAPI ingress that answers /v1, the Open
Inference Protocol (v2) and the admin endpoints for one model.

In the ``colocated`` layout it holds every live version itself and decides the split
in-process (no extra hop per request); in the ``separate`` layout it routes to one
deployment per version through handles. Traffic settings arrive as the deployment's
``user_config``; Serve turns a change into ``reconfigure()`` on the running replicas, so
weights move live without restarting any.

Every answered request becomes PredictionRecords in the replica's bounded buffer, flushed to
the configured sink; shadow copies run in the background and are compared, never returned.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Request``
annotation through Serve's ingress wrapper, or it takes it for a query parameter.)
"""


import asyncio
import json
import logging
import time
import uuid
from functools import partial
from typing import Any, Optional

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from raymlops.errors import (AuthenticationError, ClusterError, InvalidRequestError, NotFoundError, PermissionDeniedError,
                             RaymlopsError)
from raymlops.serve import operations, v2
from raymlops.serve.split import Route, TrafficPolicy, route
from raymlops.serve.validation import parse_body

log = logging.getLogger("ray.serve")

api = FastAPI(
    title="raymlops model server",
    description="Predictions from the live versions of a registered model (stable, canary, shadow), the Open "
    "Inference Protocol (v2) endpoints, and admin endpoints (bearer token) to change traffic live.",
)


def error_response(status: int, field: str, problem: str, request_id: str, headers: dict | None = None) -> JSONResponse:
    """The one error body of the HTTP edge: the field and the problem."""
    return JSONResponse({"error": {"field": field, "problem": problem}, "request_id": request_id},
                        status_code=status, headers=headers)


class Outcome:
    """What a request turned out to be, for its metrics and records."""

    __slots__ = ("version", "arm", "latency_ms", "recorded")

    def __init__(self) -> None:
        self.version: Optional[int] = None
        self.arm = "none"
        self.latency_ms = 0.0
        self.recorded = False


@serve.deployment(name="ModelServer")
@serve.ingress(api)
class ModelServer:
    """Every live version of one model behind /v1, /v2 and /admin."""

    def __init__(self, settings: dict, handles: Optional[dict] = None) -> None:
        from raymlops.config import RegistryConfig
        from raymlops.registry import Registry
        from raymlops.serve.access import AccessPolicy
        from raymlops.serve.app import AppArgs
        from raymlops.serve.metrics import ServerMetrics
        from raymlops.serve.records import RecordBuffer
        from raymlops.serve.stream import RecordStream, build_sink
        from raymlops.serve.versions import DeploymentVersions, LocalVersions

        args = AppArgs.model_validate(settings)
        self.model_name = args.model_name
        self.limits = args.limits
        self.registry = Registry.from_config(RegistryConfig.model_validate(args.registry))
        self.registry_settings = args.registry
        self.access = AccessPolicy(args.admin_token_sha256, frozenset(args.access.api_key_sha256),
                                   args.access.require_api_key)
        if handles is not None:
            self.backend = DeploymentVersions(handles)
        else:
            self.backend = LocalVersions(self.registry, self.model_name, args.batching.model_dump())
        records = args.records
        if records.sink == "monitor":
            from raymlops.monitor.actor import NAMESPACE, monitor_name

            sink = build_sink("actor", {"actor_name": monitor_name(self.model_name), "namespace": NAMESPACE,
                                        **records.options})
        else:
            sink = build_sink(records.sink, records.options)
        self.stream = RecordStream(sink,
                                   RecordBuffer(records.capacity, records.flush_rows, records.flush_ms))
        self.metrics = ServerMetrics(self.model_name)
        self.shadow_max_in_flight = args.shadow_max_in_flight
        self._shadow_tasks: set = set()
        self._reported_sent = 0
        self.policy: Optional[TrafficPolicy] = None
        self.sticky_field: Optional[str] = None
        # Serve calls reconfigure() only when a user_config is given: serve the champion until then.
        self.reconfigure({})

    def reconfigure(self, config: dict) -> None:
        """Apply new traffic settings, loading versions that are not loaded yet (checksums verified).

        Without ``stable_version`` the model's current ``champion`` is the stable version.
        """
        if config.get("stable_version") is None:
            config = {**config, "stable_version": self.registry.resolve(self.model_name, "champion")}
        policy = TrafficPolicy.from_user_config(config)
        self.backend.sync(policy.live_versions)
        self.policy = policy
        self.sticky_field = config.get("sticky_field")
        self.metrics.set_weights(policy)

    def check_health(self) -> None:
        """Fail when a live version cannot predict (Serve replaces the replica after 3 failures)."""
        self.backend.check_health()

    async def __del__(self) -> None:
        """Graceful shutdown: let shadow calls finish briefly, then flush the last records."""
        if self._shadow_tasks:
            await asyncio.wait(list(self._shadow_tasks), timeout=2)
        await self.stream.close()

    # ------------------------------------------------------------------ request plumbing

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        if len(raw) > self.limits.max_body_bytes:
            raise InvalidRequestError(field="body", problem=f"{len(raw)} bytes is more than the limit of "
                                      f"{self.limits.max_body_bytes}", status=413)
        try:
            return json.loads(raw)
        except ValueError as exc:
            problem = f"not valid JSON ({getattr(exc, 'msg', exc)})"
            raise InvalidRequestError(field="body", problem=problem) from None

    def _check_model(self, name: str) -> None:
        if name != self.model_name:
            raise NotFoundError(what="model", name=name)

    def _sticky_key(self, request: Request, body: Any) -> Optional[str]:
        key = request.headers.get("x-raymlops-key")
        if key is None and self.sticky_field and isinstance(body, dict) and self.sticky_field in body:
            key = str(body[self.sticky_field])
        return key

    def _record(self, request_id: str, outcome: Outcome, status: int, columns: dict, result: Optional[dict]) -> None:
        meta = {"request_id": request_id, "time": time.time(), "model": self.model_name, "version": outcome.version,
                "arm": outcome.arm, "latency_ms": outcome.latency_ms, "status": status}
        if result is None:
            self.stream.add(meta, {}, [None])
        else:
            confidences = [max(p) for p in result["probabilities"]]
            self.stream.add(meta, columns, result["class"], confidences)
        sent = self.stream.sent_rows
        self.metrics.records(sent - self._reported_sent, self.stream.lost_rows)
        self._reported_sent = sent

    async def _guarded(self, handler, request: Request, inference: bool = True, **kwargs) -> JSONResponse:
        """Run a handler; map raymlops errors to 4xx (500 for anything else); count and record it.

        Serve's proxy gives every request an ``x-request-id`` (kept when the caller sends one) and
        returns it as a response header; the body repeats it."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        outcome = Outcome()
        try:
            if inference:
                self.access.check_inference(request.headers.get("x-api-key"), request.headers.get("authorization"))
            response = await handler(request, request_id, outcome, **kwargs)
        except AuthenticationError as exc:
            response = error_response(401, "authorization", str(exc), request_id, {"www-authenticate": "Bearer"})
        except PermissionDeniedError as exc:
            response = error_response(403, "authorization", str(exc), request_id)
        except InvalidRequestError as exc:
            response = error_response(exc.fields.get("status", 422), exc.field, exc.problem, request_id)
        except NotFoundError as exc:
            response = error_response(404, exc.what, str(exc), request_id)
        except ClusterError as exc:
            response = error_response(503, "cluster", str(exc), request_id)
        except RaymlopsError as exc:
            response = error_response(400, "request", str(exc), request_id)
        except Exception as exc:  # noqa: BLE001 - a failing model answers 500, the replica lives on
            log.exception("prediction failed for request %s", request_id)
            response = error_response(500, "model", f"prediction failed: {type(exc).__name__}", request_id)
        if inference:
            self.metrics.observe_request(outcome.version, outcome.arm, response.status_code, outcome.latency_ms)
            if not outcome.recorded:
                self._record(request_id, outcome, response.status_code, {}, None)
        return response

    async def _predict_rows(self, request_id: str, outcome: Outcome, choice: Route, columns: dict) -> dict:
        """Predict on the chosen version, record it, and start its shadow copy."""
        outcome.version, outcome.arm = choice.version, choice.arm
        started = time.perf_counter()
        result = await self.backend.predict(choice.version, columns)
        outcome.latency_ms = (time.perf_counter() - started) * 1000
        self._record(request_id, outcome, 200, columns, result)
        outcome.recorded = True
        if choice.shadow_version is not None:
            self._start_shadow(request_id, choice, columns, result)
        return result

    # ------------------------------------------------------------------ shadow traffic

    def _start_shadow(self, request_id: str, choice: Route, columns: dict, answered: dict) -> None:
        if len(self._shadow_tasks) >= self.shadow_max_in_flight:
            self.metrics.skip_shadow()
            return
        task = asyncio.get_running_loop().create_task(self._shadow(request_id, choice, columns, answered))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow(self, request_id: str, choice: Route, columns: dict, answered: dict) -> None:
        shadow = Outcome()
        shadow.version, shadow.arm = choice.shadow_version, "shadow"
        try:
            started = time.perf_counter()
            result = await self.backend.predict(choice.shadow_version, columns, background=True)
            shadow.latency_ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # noqa: BLE001 - a failing shadow is recorded, never seen by the caller
            log.warning("shadow version %s failed on request %s: %s", choice.shadow_version, request_id, exc)
            self.metrics.observe_request(shadow.version, "shadow", 500, 0.0)
            self._record(request_id, shadow, 500, {}, None)
            return
        disagreements = sum(a != b for a, b in zip(answered["class"], result["class"]))
        self.metrics.observe_shadow(choice.version, choice.shadow_version, len(result["class"]), disagreements)
        self.metrics.observe_request(shadow.version, "shadow", 200, shadow.latency_ms)
        self._record(request_id, shadow, 200, columns, result)

    # ------------------------------------------------------------------ /v1

    @api.post("/v1/models/{name}/predict")
    async def predict(self, name: str, request: Request) -> JSONResponse:
        """Predict from rows (`instances`) or columns (`inputs`); the answer names its version and arm."""
        return await self._guarded(self._predict, request, name=name)

    async def _predict(self, request: Request, request_id: str, outcome: Outcome, name: str) -> JSONResponse:
        self._check_model(name)
        body = await self._body(request)
        choice = route(self.policy, self._sticky_key(request, body))
        outcome.version, outcome.arm = choice.version, choice.arm
        if isinstance(body, dict) and self.sticky_field:
            body = {k: v for k, v in body.items() if k != self.sticky_field}
        schema = await self.backend.schema(choice.version)
        columns = parse_body(body, schema, self.limits.max_rows)
        result = await self._predict_rows(request_id, outcome, choice, columns)
        payload = {
            "model": name, "version": choice.version, "arm": choice.arm, "request_id": request_id,
            "predictions": [{"class": c, "probabilities": dict(zip(schema.classes, p))}
                            for c, p in zip(result["class"], result["probabilities"])],
            "latency_ms": outcome.latency_ms,
        }
        return JSONResponse(payload, headers={"x-raymlops-version": str(choice.version), "x-raymlops-arm": choice.arm})

    @api.get("/v1/models/{name}")
    async def describe(self, name: str, request: Request) -> JSONResponse:
        """The live versions, the current traffic split, and the HTTP endpoints that serve it
        (Serve's proxy, or with direct ingress each replica's own port)."""
        async def handler(_request, _request_id, _outcome):
            from raymlops.serve.endpoints import app_endpoints

            self._check_model(name)
            endpoints = await app_endpoints(serve.get_replica_context().app_name)
            return JSONResponse({"model": name, **self._traffic(), "live_versions": sorted(self.backend.versions),
                                 "endpoints": endpoints})
        return await self._guarded(handler, request, inference=False)

    def _traffic(self) -> dict:
        policy = self.policy
        return {"stable_version": policy.stable_version, "canary_version": policy.canary_version,
                "canary_weight": policy.canary_weight, "shadow_version": policy.shadow_version,
                "shadow_share": policy.shadow_share, "sticky_field": self.sticky_field}

    # ------------------------------------------------------------------ operations (raymlops.serve.operations)

    @api.get("/v1/models/{name}/drift")
    async def drift(self, name: str, request: Request) -> JSONResponse:
        """Drift state, latest reports per version and detector, and the monitor's counters."""
        return await self._guarded(partial(operations.drift_status, self), request, inference=False, name=name)

    @api.post("/admin/models/{name}/drift/check")
    async def drift_check(self, name: str, request: Request, min_rows: int = 1) -> JSONResponse:
        """Check every open window of at least `min_rows` rows now (bearer admin token)."""
        return await self._guarded(partial(operations.drift_check, self), request, inference=False, name=name,
                                   min_rows=min_rows)

    @api.post("/v1/models/{name}/feedback")
    async def feedback(self, name: str, request: Request) -> JSONResponse:
        """Labels for answered requests: `{"request_id": ..., "label": ...}`, `"labels": [...]` for
        multi-row requests, or a list of those. Joined to the logged predictions by the monitor."""
        return await self._guarded(partial(operations.feedback, self), request, name=name)

    @api.get("/admin/models/{name}/rollout")
    async def rollout_status(self, name: str, request: Request) -> JSONResponse:
        """The current rollout, its last decision and its numbers (bearer admin token)."""
        return await self._guarded(partial(operations.rollout, self), request, inference=False, name=name,
                                   action="status")

    @api.post("/admin/models/{name}/rollout/{action}")
    async def rollout_action(self, name: str, action: str, request: Request) -> JSONResponse:
        """`start` (body: rollout config fields), `pause`, `resume`, `promote`, `abort`, `rollback`."""
        return await self._guarded(partial(operations.rollout, self), request, inference=False, name=name,
                                   action=action)

    @api.put("/admin/models/{name}/traffic")
    async def set_traffic(self, name: str, request: Request) -> JSONResponse:
        """Change the split live on every replica (bearer admin token). Body: any of `canary_weight`,
        `canary_version`, `stable_version`, `shadow_version`, `shadow_share`, `sticky_field`."""
        return await self._guarded(partial(operations.set_traffic, self), request, inference=False, name=name)

    @property
    def _separate(self) -> bool:
        from raymlops.serve.versions import DeploymentVersions

        return isinstance(self.backend, DeploymentVersions)

    # ------------------------------------------------------------------ Open Inference Protocol v2

    @api.get("/v2/health/live")
    async def live(self) -> dict:
        """The server process is up."""
        return {"live": True}

    @api.get("/v2/health/ready")
    async def ready(self) -> dict:
        """Every live version is loaded."""
        return {"ready": self.policy is not None and self.policy.live_versions <= self.backend.versions}

    @api.get("/v2/models/{name}")
    async def metadata(self, name: str, request: Request) -> JSONResponse:
        """Model metadata: versions, inputs and outputs."""
        return await self._guarded(partial(v2.metadata, self), request, inference=False, name=name)

    @api.get("/v2/models/{name}/ready")
    async def model_ready(self, name: str, request: Request) -> JSONResponse:
        """Whether the model can answer."""
        return await self._guarded(partial(v2.model_ready, self), request, inference=False, name=name)

    @api.post("/v2/models/{name}/infer")
    async def infer(self, name: str, request: Request) -> JSONResponse:
        """v2 inference through the traffic split."""
        return await self._guarded(partial(v2.infer, self), request, name=name, version=None)

    @api.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(self, name: str, version: str, request: Request) -> JSONResponse:
        """v2 inference pinned to one live version."""
        return await self._guarded(partial(v2.infer, self), request, name=name, version=version)
