"""The colocated model server: one Ray Serve deployment with a FastAPI ingress that holds
every live version of a model and decides the split in-process (no extra hop per request).

Traffic settings arrive as the deployment's ``user_config``; Serve turns a change into
``reconfigure()`` on the running replicas, so weights move live without restarting any.

(No ``from __future__ import annotations`` here: FastAPI must see the real ``Request``
annotation through Serve's ingress wrapper, or it takes it for a query parameter.)
"""


import json
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from raymlops.errors import InvalidRequestError, NotFoundError
from raymlops.serve.split import TrafficPolicy, route
from raymlops.serve.validation import columns_from_v2, parse_body

api = FastAPI(
    title="raymlops model server",
    description="Predictions from the live versions of a registered model (stable, canary, shadow), "
    "plus the Open Inference Protocol (v2) endpoints.",
)


def error_response(status: int, field: str, problem: str, request_id: str) -> JSONResponse:
    """The one error body of the HTTP edge: the field and the problem. (Serve's proxy puts the
    request id into the ``x-request-id`` response header itself.)"""
    return JSONResponse({"error": {"field": field, "problem": problem}, "request_id": request_id}, status_code=status)


@serve.deployment(name="ModelServer")
@serve.ingress(api)
class ModelServer:
    """Every live version of one model, answering /v1 and /v2 requests."""

    def __init__(self, model_name: str, registry: dict[str, Any], limits: dict[str, Any]) -> None:
        from raymlops.config import RegistryConfig, RequestLimits
        from raymlops.registry import Registry

        self.model_name = model_name
        self.registry = Registry.from_config(RegistryConfig.model_validate(registry))
        self.limits = RequestLimits.model_validate(limits)
        self.predictors: dict[int, Any] = {}
        self.policy: TrafficPolicy | None = None
        self.sticky_field: str | None = None
        # Serve calls reconfigure() only when a user_config is given: serve the champion until then.
        self.reconfigure({})

    def reconfigure(self, config: dict[str, Any]) -> None:
        """Apply new traffic settings; loads versions that are not loaded yet (checksums verified).

        Without ``stable_version`` the model's current ``champion`` is the stable version.
        """
        import tempfile

        from raymlops.train.package import Predictor

        if "stable_version" not in config:
            config = {**config, "stable_version": self.registry.resolve(self.model_name, "champion")}
        policy = TrafficPolicy.from_user_config(config)
        for version in policy.live_versions - set(self.predictors):
            with tempfile.TemporaryDirectory() as directory:
                local = self.registry.download(f"{self.model_name}:{version}", directory)
                self.predictors[version] = Predictor.load(local)
        self.policy = policy
        self.sticky_field = config.get("sticky_field")
        for version in set(self.predictors) - policy.live_versions:
            del self.predictors[version]

    def check_health(self) -> None:
        """Fail when any live version cannot predict its own reference row."""
        for version, predictor in self.predictors.items():
            row = {f.name: [0.0 if f.kind == "numeric" else ""] for f in predictor.schema.features}
            predictor.predict_proba(row)

    # ------------------------------------------------------------------ helpers

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        if len(raw) > self.limits.max_body_bytes:
            raise InvalidRequestError(field="body", problem=f"{len(raw)} bytes is more than the limit of "
                                      f"{self.limits.max_body_bytes}", status=413)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise InvalidRequestError(field="body", problem=f"not valid JSON ({exc.msg} at position {exc.pos})") from None

    def _check_model(self, name: str) -> None:
        if name != self.model_name:
            raise NotFoundError(what="model", name=name)

    def _sticky_key(self, request: Request, body: Any) -> str | None:
        key = request.headers.get("x-raymlops-key")
        if key is None and self.sticky_field and isinstance(body, dict) and self.sticky_field in body:
            key = str(body[self.sticky_field])
        return key

    async def _guarded(self, handler, request: Request, **kwargs) -> JSONResponse:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            return await handler(request, request_id, **kwargs)
        except InvalidRequestError as exc:
            status = exc.fields.get("status", 422)
            return error_response(status, exc.field, exc.problem, request_id)
        except NotFoundError as exc:
            return error_response(404, exc.what, str(exc), request_id)

    # ------------------------------------------------------------------ /v1

    @api.post("/v1/models/{name}/predict")
    async def predict(self, name: str, request: Request) -> JSONResponse:
        """Predict from rows (`instances`) or columns (`inputs`); the answer names its version and arm."""
        return await self._guarded(self._predict, request, name=name)

    async def _predict(self, request: Request, request_id: str, name: str) -> JSONResponse:
        self._check_model(name)
        body = await self._body(request)
        choice = route(self.policy, self._sticky_key(request, body))
        predictor = self.predictors[choice.version]
        if isinstance(body, dict) and self.sticky_field:
            body = {k: v for k, v in body.items() if k != self.sticky_field}
        columns = parse_body(body, predictor.schema, self.limits.max_rows)
        started = time.perf_counter()
        result = predictor.predict(columns)
        classes = predictor.schema.classes
        payload = {
            "model": name, "version": choice.version, "arm": choice.arm, "request_id": request_id,
            "predictions": [{"class": c, "probabilities": dict(zip(classes, p))}
                            for c, p in zip(result["class"], result["probabilities"])],
            "latency_ms": (time.perf_counter() - started) * 1000,
        }
        return JSONResponse(payload, headers={"x-raymlops-version": str(choice.version), "x-raymlops-arm": choice.arm})

    @api.get("/v1/models/{name}")
    async def describe(self, name: str, request: Request) -> JSONResponse:
        """The live versions and the current traffic split."""
        async def handler(_request, request_id):
            self._check_model(name)
            policy = self.policy
            return JSONResponse({"model": name, "stable_version": policy.stable_version,
                                 "canary_version": policy.canary_version, "canary_weight": policy.canary_weight,
                                 "shadow_version": policy.shadow_version, "shadow_share": policy.shadow_share,
                                 "live_versions": sorted(self.predictors)})
        return await self._guarded(handler, request)

    # ------------------------------------------------------------------ Open Inference Protocol v2

    @api.get("/v2/health/live")
    async def live(self) -> dict:
        """The server process is up."""
        return {"live": True}

    @api.get("/v2/health/ready")
    async def ready(self) -> dict:
        """Every live version is loaded."""
        return {"ready": self.policy is not None and self.policy.live_versions <= set(self.predictors)}

    @api.get("/v2/models/{name}")
    async def metadata(self, name: str, request: Request) -> JSONResponse:
        """Model metadata: versions, inputs and outputs."""
        async def handler(_request, request_id):
            self._check_model(name)
            schema = self.predictors[self.policy.stable_version].schema
            inputs = [{"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
                      for f in schema.features]
            outputs = [{"name": "class", "datatype": "BYTES", "shape": [-1]},
                       {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(schema.classes)]}]
            return JSONResponse({"name": name, "versions": [str(v) for v in sorted(self.predictors)],
                                 "platform": "raymlops-pytorch", "inputs": inputs, "outputs": outputs})
        return await self._guarded(handler, request)

    @api.get("/v2/models/{name}/ready")
    async def model_ready(self, name: str, request: Request) -> JSONResponse:
        """Whether the model can answer."""
        async def handler(_request, request_id):
            self._check_model(name)
            return JSONResponse({"name": name, "ready": bool(self.predictors)})
        return await self._guarded(handler, request)

    @api.post("/v2/models/{name}/infer")
    async def infer(self, name: str, request: Request) -> JSONResponse:
        """v2 inference through the traffic split."""
        return await self._guarded(self._infer, request, name=name, version=None)

    @api.post("/v2/models/{name}/versions/{version}/infer")
    async def infer_version(self, name: str, version: str, request: Request) -> JSONResponse:
        """v2 inference pinned to one live version."""
        return await self._guarded(self._infer, request, name=name, version=version)

    async def _infer(self, request: Request, request_id: str, name: str, version: str | None) -> JSONResponse:
        self._check_model(name)
        body = await self._body(request)
        if version is not None:
            if not version.isdigit() or int(version) not in self.predictors:
                raise NotFoundError(what="live version", name=f"{name}:{version}")
            chosen, arm = int(version), "pinned"
        else:
            choice = route(self.policy, self._sticky_key(request, body))
            chosen, arm = choice.version, choice.arm
        predictor = self.predictors[chosen]
        if not isinstance(body, dict):
            raise InvalidRequestError(field="body", problem="must be a JSON object with `inputs`")
        columns = columns_from_v2(body.get("inputs"), predictor.schema, self.limits.max_rows)
        result = predictor.predict(columns)
        rows = len(result["class"])
        payload = {
            "model_name": name, "model_version": str(chosen), "id": body.get("id", request_id),
            "outputs": [
                {"name": "class", "shape": [rows], "datatype": "BYTES", "data": result["class"]},
                {"name": "probabilities", "shape": [rows, len(predictor.schema.classes)], "datatype": "FP32",
                 "data": [p for row in result["probabilities"] for p in row]},
            ],
        }
        return JSONResponse(payload, headers={"x-raymlops-version": str(chosen), "x-raymlops-arm": arm})
