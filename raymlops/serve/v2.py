"""The Open Inference Protocol (v2) handlers of the model server: metadata, readiness and
inference through the split or pinned to one live version. The routes stay on
:class:`raymlops.serve.server.ModelServer`; each runs one of these through its ``_guarded``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from fastapi.responses import JSONResponse

from raymlops.errors import InvalidRequestError, NotFoundError
from raymlops.serve.split import Route, route
from raymlops.serve.validation import columns_from_v2

if TYPE_CHECKING:
    from fastapi import Request

    from raymlops.serve.server import ModelServer, Outcome


async def metadata(server: ModelServer, request: Request, request_id: str, outcome: Outcome,
                   name: str) -> JSONResponse:
    """Versions, input tensors (one per feature) and output tensors."""
    server._check_model(name)
    schema = await server.backend.schema(server.policy.stable_version)
    inputs = [{"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
              for f in schema.features]
    outputs = [{"name": "class", "datatype": "BYTES", "shape": [-1]},
               {"name": "probabilities", "datatype": "FP32", "shape": [-1, len(schema.classes)]}]
    return JSONResponse({"name": name, "versions": [str(v) for v in sorted(server.backend.versions)],
                         "platform": "raymlops-pytorch", "inputs": inputs, "outputs": outputs})


async def model_ready(server: ModelServer, request: Request, request_id: str, outcome: Outcome,
                      name: str) -> JSONResponse:
    """Whether the model can answer."""
    server._check_model(name)
    return JSONResponse({"name": name, "ready": bool(server.backend.versions)})


async def infer(server: ModelServer, request: Request, request_id: str, outcome: Outcome, name: str,
                version: Optional[str]) -> JSONResponse:
    """Inference on v2 tensors, through the split or pinned to ``version``."""
    server._check_model(name)
    body = await server._body(request)
    if version is not None:
        if not version.isdigit() or int(version) not in server.backend.versions:
            raise NotFoundError(what="live version", name=f"{name}:{version}")
        choice = Route("pinned", int(version))
    else:
        choice = route(server.policy, server._sticky_key(request, body))
    outcome.version, outcome.arm = choice.version, choice.arm
    if not isinstance(body, dict):
        raise InvalidRequestError(field="body", problem="must be a JSON object with `inputs`")
    schema = await server.backend.schema(choice.version)
    columns = columns_from_v2(body.get("inputs"), schema, server.limits.max_rows)
    result = await server._predict_rows(request_id, outcome, choice, columns)
    rows = len(result["class"])
    payload = {
        "model_name": name, "model_version": str(choice.version), "id": body.get("id", request_id),
        "outputs": [
            {"name": "class", "shape": [rows], "datatype": "BYTES", "data": result["class"]},
            {"name": "probabilities", "shape": [rows, len(schema.classes)], "datatype": "FP32",
             "data": [p for row in result["probabilities"] for p in row]},
        ],
    }
    return JSONResponse(payload, headers={"x-raymlops-version": str(choice.version), "x-raymlops-arm": choice.arm})
