"""The model server: a Ray Serve deployment with a FastAPI ingress that answers /v1, the Open
Inference Protocol (v2) and the admin endpoints for one model.

In the ``colocated`` layout it holds every live version itself and decides the split
in-process (no extra hop per request); in the ``separate`` layout it routes to one
deployment per version through handles. Traffic settings arrive as the deployment's
``user_config``; Serve turns a change into ``reconfigure()`` on the running replicas, so
weights move live without restarting any.

Predictions skip FastAPI's middleware and router (:mod:`raymlops.serve.fast_routes`).
Every answered request becomes PredictionRecords in the replica's bounded buffer, flushed to
the configured sink; shadow copies run in the background and are compared, never returned.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Request``
annotation through Serve's ingress wrapper, or it takes it for a query parameter.)
"""


import logging
from typing import Any, Literal, Optional

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from ray import serve

from raymlops.errors import NotFoundError, RaymlopsError
from raymlops.serve import edge, openapi, operations, v2
from raymlops.serve.edge import REQUEST_ID_HEADER, Outcome, error_response, read_body, response_for
from raymlops.serve.exposure import TimedCache, redact
from raymlops.serve.fast_routes import ServerApp
from raymlops.serve.grpc_ingress import GrpcInference
from raymlops.serve.split import Route, TrafficPolicy, route
from raymlops.serve.validation import parse_body, parse_feedback

log = logging.getLogger("ray.serve")

api = ServerApp(
    title="raymlops model server",
    description="Predictions from the live versions of a registered model (stable, canary, shadow), the Open "
    "Inference Protocol (v2) endpoints, and admin endpoints (bearer token) to change traffic live.",
    docs_url=None, redoc_url=None, openapi_url=None,  # served below, behind the API key when one is required
)
#: Seconds a replica keeps describe and drift status answers.
STATUS_CACHE_S = 1.0


@serve.deployment(name="ModelServer")
@serve.ingress(api)
class ModelServer(GrpcInference):
    """Every live version of one model behind /v1, /v2 and /admin, and the v2 gRPC service."""

    def __init__(self, settings: dict, handles: Optional[dict] = None) -> None:
        from raymlops.config import RegistryConfig
        from raymlops.plugins import trust_only
        from raymlops.registry import Registry
        from raymlops.serve.access import AccessPolicy
        from raymlops.serve.args import AppArgs
        from raymlops.serve.buffer import RecordBuffer
        from raymlops.serve.metrics import ServerMetrics
        from raymlops.serve.monitor_sink import records_sink
        from raymlops.serve.predictions import Predictions
        from raymlops.serve.stream import RecordStream
        from raymlops.serve.versions import DeploymentVersions, LocalVersions

        args = AppArgs.model_validate(settings)
        trust_only(args.access.trusted_modules)  # before any version or sink is loaded
        self.model_name = args.model_name
        self.limits = args.limits
        self.registry = Registry.from_config(RegistryConfig.model_validate(args.registry))
        self.access = AccessPolicy(args.admin_token_sha256, frozenset(args.access.api_key_sha256),
                                   args.access.require_api_key, frozenset(args.access.feedback_key_sha256))
        self.request_key = self.registry.signing_key("requests")
        self.status_cache = TimedCache(STATUS_CACHE_S)
        self.backend: LocalVersions | DeploymentVersions
        self.separate = handles is not None
        if handles is not None:
            self.backend = DeploymentVersions(handles)
        else:
            self.backend = LocalVersions(self.registry, self.model_name, args.batching.model_dump(),
                                         args.environment.on_mismatch)
        records = args.records
        self.metrics = ServerMetrics(self.model_name)
        self.stream = RecordStream(records_sink(self.model_name, records.sink, records.options), RecordBuffer(
            records.capacity, records.flush_rows, records.flush_ms), self.metrics.records)
        self.label_wait_s = 1.0 + 5 * records.flush_ms / 1000  # every replica has flushed an answer by then
        self.replica = serve.get_replica_context().replica_tag
        self.predictions = Predictions(self.model_name, self.backend, self.stream, self.metrics,
                                       args.shadow_max_in_flight)
        self.policy: TrafficPolicy  # set by reconfigure() below, before any request
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
        self.sticky_field, self.traffic_version = config.get("sticky_field"), int(config.get("traffic_version") or 0)
        self.metrics.set_weights(policy)

    def check_health(self) -> None:
        """Fail when a live version cannot predict (Serve replaces the replica after 3 failures)."""
        self.backend.check_health()

    async def __del__(self) -> None:
        """Graceful shutdown: let shadow calls finish briefly, then flush the last records."""
        await self.predictions.close()

    # ------------------------------------------------------------------ request plumbing

    async def _body(self, request: Request, allow_empty: bool = False) -> Any:
        return await read_body(request, self.limits.max_body_bytes, allow_empty)

    def _check_model(self, name: str) -> None:
        if name != self.model_name:
            raise NotFoundError(what="model", name=name)

    def _sticky_key(self, request: Request, body: Any) -> Optional[str]:
        key = request.headers.get("x-raymlops-key")
        if key is None and self.sticky_field and isinstance(body, dict) and self.sticky_field in body:
            key = str(body[self.sticky_field])
        return key

    async def _guarded(self, handler, request: Request, scope: str = "inference", record: bool = True,
                       v2_errors: bool = False, **kwargs) -> Response:
        """Check the caller for ``scope`` (``inference``, ``feedback``, ``pinned``; ``admin``
        handlers check the admin token themselves), run a handler, map raymlops errors to 4xx
        (500 for anything else), and count and record a prediction.

        The request id is issued here (random and signed: feedback labels are accepted only for
        ids a server of this cluster issued); a caller's ``x-request-id`` is kept as the answer's
        ``correlation_id`` only. ``v2_errors``: error bodies in the Open Inference Protocol's shape."""
        from raymlops.signing import issue_request_id

        request_id = issue_request_id(self.request_key)
        outcome = Outcome()
        try:
            self.access.check(scope, request.headers.get("x-api-key"), request.headers.get("authorization"))
            response = await handler(request, request_id, outcome, **kwargs)
            response.headers[REQUEST_ID_HEADER] = request_id
        except RaymlopsError as exc:
            response = response_for(exc, request_id, v2_errors)
        except Exception as exc:  # noqa: BLE001 - a failing model answers 500, the replica lives on
            log.exception("request %s failed", request_id)
            response = error_response(500, "model", f"prediction failed: {type(exc).__name__}", request_id,
                                      v2=v2_errors)
        if record:
            self._account(request_id, outcome, response.status_code)
        return response

    def _account(self, request_id: str, outcome: Outcome, status: int) -> None:
        """Count a prediction call in the metrics, and record it when it was refused before answering."""
        self.metrics.observe_request(outcome.version, outcome.arm, status, outcome.latency_ms)
        if not outcome.recorded:
            self.predictions.record(request_id, outcome, status, {}, None)

    # ------------------------------------------------------------------ /v1

    @api.post("/v1/models/{name}/predict", openapi_extra=openapi.body("predict"))
    async def predict(self, name: str, request: Request) -> Response:
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
        result = await self.predictions.answer(request_id, outcome, choice, columns)
        payload = {
            "model": name, "version": choice.version, "arm": choice.arm, "request_id": request_id,
            "predictions": result.rows(),
            "latency_ms": outcome.latency_ms,
        }
        if request.headers.get("x-request-id"):
            payload["correlation_id"] = request.headers["x-request-id"]
        return JSONResponse(payload, headers={"x-raymlops-version": str(choice.version), "x-raymlops-arm": choice.arm})

    @api.get("/v1/models/{name}")
    async def describe(self, name: str, request: Request) -> Response:
        """The live versions, the current traffic split, the HTTP endpoints that serve it (Serve's
        proxy, or with direct ingress each replica's own port), and the answering replica's record
        stream (rows sent, lost, waiting for delivery)."""
        async def handler(_request, _request_id, _outcome):
            from raymlops.serve.endpoints import app_endpoints

            self._check_model(name)
            endpoints = await self.status_cache.get("endpoints", lambda: app_endpoints(
                serve.get_replica_context().app_name))
            environment = await self.status_cache.get(("environment", frozenset(self.backend.versions)),
                                                      self.backend.environment)
            return JSONResponse({"model": name, **self._traffic(), "live_versions": sorted(self.backend.versions),
                                 "endpoints": endpoints, "environment": environment,
                                 "records": {**self.stream.counts(), "replica": self.replica}})
        return await self._guarded(handler, request, record=False)

    def _traffic(self) -> dict:
        policy = self.policy
        return {"stable_version": policy.stable_version, "canary_version": policy.canary_version,
                "canary_weight": policy.canary_weight, "shadow_version": policy.shadow_version, "shadow_share":
                policy.shadow_share, "sticky_field": self.sticky_field, "traffic_version": self.traffic_version}

    # ------------------------------------------------------------------ operations (raymlops.serve.operations)

    @api.get("/v1/models/{name}/drift")
    async def drift(self, name: str, request: Request) -> Response:
        """Drift state, latest reports per version and detector, and the monitor's counters."""
        async def handler(_request, _request_id, _outcome):
            self._check_model(name)
            status = await self.status_cache.get("drift", lambda: operations.drift_status(self.model_name))
            return JSONResponse(redact(status))
        return await self._guarded(handler, request, record=False)

    @api.get("/v1/models/{name}/drift/report", response_model=None)
    async def drift_report(self, name: str, request: Request, version: Optional[int] = None,
                           format: Literal["json", "html"] = "json") -> Response:
        """The drift report of a version (default: the champion): per feature the reference against the
        recent window, p-values over time, drift/retraining/rollout timeline. `format=html`: one
        self-contained page."""
        async def handler(_request, _request_id, _outcome):
            from raymlops.monitor.report_html import render_report

            self._check_model(name)
            report = redact(await operations.drift_report(self.model_name, version))
            if format == "html":
                return HTMLResponse(render_report(report))
            return JSONResponse(report)
        return await self._guarded(handler, request, record=False)

    @api.post("/admin/models/{name}/drift/check")
    async def drift_check(self, name: str, request: Request, min_rows: int = 1) -> Response:
        """Check every open window of at least `min_rows` rows now (bearer admin token)."""
        async def handler(_request, _request_id, _outcome):
            self._admin(request, name)
            return JSONResponse(await operations.drift_check(self.model_name, self.stream, min_rows))
        return await self._guarded(handler, request, scope="admin", record=False)

    @api.post("/v1/models/{name}/feedback", openapi_extra=openapi.body("feedback"))
    async def feedback(self, name: str, request: Request) -> Response:
        """Labels for answered requests (a feedback key or the admin token): `{"request_id": ...,
        "label": ...}`, `"labels": [...]` for multi-row requests, or a list of those. Joined to the
        logged predictions by the monitor; a request is labelled once."""
        async def handler(_request, request_id, _outcome):
            from raymlops.serve.labels import submit_labels

            self._check_model(name)
            body = await self._body(request)
            schema = await self.backend.schema(self.policy.stable_version)
            items = parse_feedback(body, schema, self.limits.max_rows)
            accepted = await submit_labels(self.model_name, items, schema.label, self.stream, self.request_key,
                                           self.label_wait_s)
            return JSONResponse({"model": name, "accepted": accepted, "request_id": request_id})
        return await self._guarded(handler, request, scope="feedback", record=False)

    @api.get("/admin/models/{name}/rollout")
    async def rollout_status(self, name: str, request: Request) -> Response:
        """The current rollout, its last decision and its numbers (bearer admin token)."""
        return await self.rollout_action(name, "status", request)

    @api.post("/admin/models/{name}/rollout/{action}", openapi_extra=openapi.body("rollout", required=False))
    async def rollout_action(self, name: str, action: str, request: Request) -> Response:
        """`start` (body: rollout config fields), `pause`, `resume`, `promote`, `abort`, `rollback`."""
        async def handler(_request, _request_id, _outcome):
            self._admin(request, name)
            config = None
            if action == "start":
                config = operations.rollout_config(await self._body(request, allow_empty=True), name,
                                                   serve.get_replica_context().app_name).model_dump(mode="json")
                await self._admit(["candidate"])
            return JSONResponse(await operations.rollout_command(name, action, config))
        return await self._guarded(handler, request, scope="admin", record=False)

    @api.put("/admin/models/{name}/traffic", openapi_extra=openapi.body("traffic"))
    async def set_traffic(self, name: str, request: Request) -> Response:
        """Change the split live on every replica (admin token). Body: traffic settings (`canary_weight`,
        ...); `If-Match: <traffic_version>` applies it only to that version, else 409."""
        async def handler(_request, request_id, _outcome):
            self._admin(request, name)
            body = await self._body(request)
            if isinstance(body, dict):
                await self._admit([body[key] for key in ("stable_version", "canary_version", "shadow_version")
                                   if isinstance(body.get(key), int)])
            traffic = await operations.change_traffic(
                self.registry, self.model_name, serve.get_replica_context().app_name, self._traffic(), body,
                self.backend.versions if self.separate else None, request_id, request.headers.get("if-match"))
            return JSONResponse({"model": name, "traffic": traffic, "request_id": request_id})
        return await self._guarded(handler, request, scope="admin", record=False)

    async def _admit(self, versions: list) -> None:
        await operations.admit_versions(self.registry, self.model_name, self.backend, versions)

    def _admin(self, request: Request, name: str) -> None:
        self.access.check_admin(request.headers.get("authorization"))
        self._check_model(name)

    # ------------------------------------------------------------------ Open Inference Protocol v2

    @api.get("/v2/health/live")
    async def live(self) -> dict:
        """The server process is up."""
        return {"live": True}

    @api.get("/v2/health/ready")
    async def ready(self) -> Response:
        """Every live version is loaded (503 until then)."""
        ready = self.policy.live_versions <= self.backend.versions
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @api.get("/v2")
    async def server_metadata(self, request: Request) -> Response:
        """Server metadata: name, version and the protocol extensions it supports."""
        async def handler(_request, _request_id, _outcome):
            from raymlops import __version__

            return JSONResponse({"name": "raymlops", "version": __version__, "extensions": ["binary_tensor_data"]})
        return await self._guarded(handler, request, record=False, v2_errors=True)

    @api.get("/openapi.json", include_in_schema=False)
    async def openapi_schema(self, request: Request) -> Response:
        """The OpenAPI schema (behind the API key when one is required)."""
        async def handler(_request, _request_id, _outcome):
            return JSONResponse(api.openapi())
        return await self._guarded(handler, request, record=False)

    @api.get("/docs", include_in_schema=False)
    async def docs(self, request: Request) -> Response:
        """Swagger UI (behind the API key when one is required)."""
        async def handler(_request, _request_id, _outcome):
            from fastapi.openapi.docs import get_swagger_ui_html

            root = request.scope.get("root_path", "").rstrip("/")
            return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=api.title)
        return await self._guarded(handler, request, record=False)

    @api.get("/v2/models/{name}")
    async def metadata(self, name: str, request: Request) -> Response:
        """Model metadata: versions, inputs and outputs."""
        async def handler(_request, _request_id, _outcome):
            self._check_model(name)
            schema = await self.backend.schema(self.policy.stable_version)
            outputs = await self.backend.outputs(self.policy.stable_version)
            return JSONResponse(v2.metadata(name, sorted(self.backend.versions), schema, outputs))
        return await self._guarded(handler, request, record=False, v2_errors=True)

    @api.get("/v2/models/{name}/ready")
    async def model_ready(self, name: str) -> Response:
        """Whether the model can answer (503 when not; open like v2 health)."""
        if name != self.model_name:
            return JSONResponse({"error": f"model: no model {name!r} here"}, status_code=404)
        ready = bool(self.backend.versions)
        return JSONResponse({"name": name, "ready": ready}, status_code=200 if ready else 503)

    @api.post("/v2/models/{name}/infer", openapi_extra=openapi.body("infer"))
    async def infer(self, name: str, request: Request) -> Response:
        """v2 inference through the traffic split."""
        return await self._guarded(self._infer, request, v2_errors=True, name=name, version=None)

    @api.post("/v2/models/{name}/versions/{version}/infer", openapi_extra=openapi.body("infer"))
    async def infer_version(self, name: str, version: str, request: Request) -> Response:
        """v2 inference pinned to one live version (an API key or the admin token: pinned calls bypass
        the split, and rollouts do not count them)."""
        return await self._guarded(self._infer, request, scope="pinned", v2_errors=True, name=name, version=version)

    async def _infer(self, request: Request, request_id: str, outcome: Outcome, name: str,
                     version: Optional[str]) -> Response:
        from raymlops.serve import binary

        self._check_model(name)
        body = binary.decode_body(await edge.read_bytes(request, self.limits.max_body_bytes),
                                  request.headers.get(binary.HEADER_LENGTH))
        answer = await self._v2_answer(body, version, self._sticky_key(request, body), request_id, outcome)
        return binary.binary_or_json(answer, binary.binary_outputs(body), {
            "x-raymlops-version": str(outcome.version), "x-raymlops-arm": str(outcome.arm)})

    async def _v2_answer(self, body: Any, version: Optional[str], sticky_key: Optional[str], request_id: str,
                         outcome: Outcome) -> dict:
        """A v2 inference body's answer (REST and gRPC): pinned to ``version`` or through the split."""
        if version:
            if not version.isdigit() or int(version) not in self.backend.versions:
                raise NotFoundError(what="live version", name=f"{self.model_name}:{version}")
            choice = Route("pinned", int(version))
        else:
            choice = route(self.policy, sticky_key)
        outcome.version, outcome.arm = choice.version, choice.arm
        schema = await self.backend.schema(choice.version)
        columns = v2.decode_request(body, schema, self.limits.max_rows)
        result = await self.predictions.answer(request_id, outcome, choice, columns)
        answer_id = body.get("id", request_id) if isinstance(body, dict) else request_id
        return v2.encode_response(self.model_name, choice.version, str(answer_id), result, request_id)
