"""The Open Inference Protocol v2 gRPC service of the model server (``inference.GRPCInferenceService``).

Ray Serve's gRPC ingress calls an ingress deployment's method of the rpc's name with the
request message; the model server inherits these methods, so every model app answers gRPC
wherever the cluster has a gRPC port (``serve_grpc_port`` in configs/local.yaml). Calls carry
the same credentials as HTTP, as metadata (``x-api-key``, ``authorization``), go through the
same traffic split (``x-raymlops-key`` sticks a caller to an arm; ``model_version`` pins one,
like ``/v2/models/{name}/versions/{v}/infer``), are validated by the same code and recorded for
the drift monitor like any answer. Errors are gRPC status codes with ``<field>: <problem>`` as
details; the issued request id (for feedback labels) is in ``parameters["request_id"]`` and in
the trailing metadata, beside the answering version and arm.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from raymlops.errors import LimitExceededError, RaymlopsError
from raymlops.serve import grpc_codec, grpc_v2, v2
from raymlops.serve.edge import REQUEST_ID_HEADER, Outcome, field_for, problem_for, status_for

log = logging.getLogger("ray.serve")


class GrpcInference:
    """The v2 gRPC methods, mixed into ``ModelServer`` (which provides the state they use)."""

    model_name: str
    access: Any
    backend: Any
    policy: Any
    limits: Any
    request_key: bytes

    async def ServerLive(self, request: Any) -> Any:  # noqa: N802 - the rpc's name
        """The server process is up."""
        return grpc_v2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any) -> Any:  # noqa: N802
        """Every live version is loaded."""
        return grpc_v2.ServerReadyResponse(ready=self.policy.live_versions <= self.backend.versions)

    async def ModelReady(self, request: Any, grpc_context: Any) -> Any:  # noqa: N802
        """Whether the model can answer (NOT_FOUND for another model's name)."""
        async def handler(_request_id: str, _outcome: Outcome) -> Any:
            self._check_model(request.name)
            return grpc_v2.ModelReadyResponse(ready=bool(self.backend.versions))
        return await self._grpc_call(grpc_context, "health", handler, grpc_v2.ModelReadyResponse)

    async def ServerMetadata(self, request: Any, grpc_context: Any) -> Any:  # noqa: N802
        """Server name, version and protocol extensions."""
        async def handler(_request_id: str, _outcome: Outcome) -> Any:
            from raymlops import __version__

            return grpc_v2.ServerMetadataResponse(name="raymlops", version=__version__, extensions=[])
        return await self._grpc_call(grpc_context, "inference", handler, grpc_v2.ServerMetadataResponse)

    async def ModelMetadata(self, request: Any, grpc_context: Any) -> Any:  # noqa: N802
        """Versions, input tensors and output tensors of the model."""
        async def handler(_request_id: str, _outcome: Outcome) -> Any:
            self._check_model(request.name)
            schema = await self.backend.schema(self.policy.stable_version)
            outputs = await self.backend.outputs(self.policy.stable_version)
            return grpc_codec.metadata_response(v2.metadata(self.model_name, sorted(self.backend.versions), schema,
                                                            outputs))
        return await self._grpc_call(grpc_context, "inference", handler, grpc_v2.ModelMetadataResponse)

    async def ModelInfer(self, request: Any, grpc_context: Any) -> Any:  # noqa: N802
        """v2 inference through the traffic split, or pinned to ``model_version`` (an API key or the
        admin token, as for the pinned REST route)."""
        async def handler(request_id: str, outcome: Outcome) -> Any:
            size = request.ByteSize()
            if size > self.limits.max_body_bytes:
                raise LimitExceededError(field="message", size=size, limit=self.limits.max_body_bytes, unit="bytes")
            self._check_model(request.model_name)
            body = grpc_codec.body_from_infer_request(request)
            answer = await self._v2_answer(body, request.model_version or None, metadata.get("x-raymlops-key"),
                                           request_id, outcome)
            return grpc_codec.infer_response(answer, grpc_codec.wants_raw_outputs(body))

        metadata = dict(grpc_context.invocation_metadata())
        scope = "pinned" if request.model_version else "inference"
        return await self._grpc_call(grpc_context, scope, handler, grpc_v2.ModelInferResponse, record=True)

    async def _grpc_call(self, grpc_context: Any, scope: str, handler: Callable[[str, Outcome], Awaitable[Any]],
                         empty: Callable[[], Any], record: bool = False) -> Any:
        """Check the caller for ``scope`` (``health``: anyone), run ``handler`` with a new request id,
        and turn raymlops errors into gRPC status codes (INTERNAL for anything else)."""
        import grpc

        from raymlops.signing import issue_request_id

        request_id, outcome, status = issue_request_id(self.request_key), Outcome(), 200
        try:
            if scope != "health":
                metadata = dict(grpc_context.invocation_metadata())
                self.access.check(scope, metadata.get("x-api-key"), metadata.get("authorization"))
            response = await handler(request_id, outcome)
        except RaymlopsError as exc:
            status = status_for(exc)
            grpc_context.set_code(getattr(grpc.StatusCode, grpc_codec.GRPC_CODES.get(status, "INVALID_ARGUMENT")))
            grpc_context.set_details(f"{field_for(exc)}: {problem_for(exc)}")
            response = empty()
        except Exception as exc:  # noqa: BLE001 - a failing model answers INTERNAL, the replica lives on
            log.exception("gRPC request %s failed", request_id)
            status = 500
            grpc_context.set_code(grpc.StatusCode.INTERNAL)
            grpc_context.set_details(f"model: prediction failed: {type(exc).__name__}")
            response = empty()
        trailing = [(REQUEST_ID_HEADER, request_id)]
        if outcome.version is not None:
            trailing += [("x-raymlops-version", str(outcome.version)), ("x-raymlops-arm", str(outcome.arm))]
        grpc_context.set_trailing_metadata(trailing)
        if record:
            self._account(request_id, outcome, status)
        return response

    # provided by ModelServer
    def _check_model(self, name: str) -> None:
        raise NotImplementedError

    async def _v2_answer(self, body: Any, version: str | None, sticky_key: str | None, request_id: str,
                         outcome: Outcome) -> dict:
        raise NotImplementedError

    def _account(self, request_id: str, outcome: Outcome, status: int) -> None:
        raise NotImplementedError
