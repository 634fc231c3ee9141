"""The Open Inference Protocol (v2) codec: v2 input tensors → validated columns, and a
version's answer → v2 output tensors and metadata. Pure, like MLServer's codecs; the routes
live on the model server.
"""

from __future__ import annotations

from typing import Any

from raymlops.data.schema import DatasetSchema
from raymlops.errors import InvalidRequestError
from raymlops.models.contract import OutputSpec, Prediction
from raymlops.serve.validation import check_count, columns_from_inputs, tensor_rows

NUMERIC_V2_TYPES = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}


def tensors_from_v2(inputs: list, schema: DatasetSchema, max_rows: int) -> dict[str, Any]:
    """Validate v2 input tensors of a model with tensor inputs (``shape`` = [rows, *its shape],
    ``data`` flat or nested) into columns of row arrays."""
    specs = {spec.name: spec for spec in schema.tensors}
    columns: dict[str, Any] = {}
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(tensor, dict) or tensor.get("name") not in specs:
            raise InvalidRequestError(field=f"{where}.name", problem=f"must name an input ({', '.join(specs)})")
        spec, shape = specs[tensor["name"]], tensor.get("shape")
        if tensor.get("datatype") not in NUMERIC_V2_TYPES:
            raise InvalidRequestError(field=f"{where}.datatype", problem=f"{tensor.get('datatype')!r} is not numeric; use FP32")
        if not (isinstance(shape, list) and shape[1:] == list(spec.shape) and isinstance(shape[0], int)):
            raise InvalidRequestError(field=f"{where}.shape", problem=f"must be [rows, {', '.join(map(str, spec.shape))}]")
        columns[spec.name] = tensor_rows(tensor.get("data"), spec, shape[0], f"{where}.data")
    missing = sorted(set(specs) - set(columns))
    if missing:
        raise InvalidRequestError(field="inputs", problem=f"missing input(s) {', '.join(missing)}")
    rows = {len(v) for v in columns.values()}
    if len(rows) > 1:
        raise InvalidRequestError(field="inputs", problem="tensors differ in their number of rows")
    check_count(rows.pop(), max_rows, "inputs")
    return columns


def columns_from_v2(inputs: Any, schema: DatasetSchema, max_rows: int) -> dict[str, Any]:
    """Validate Open Inference Protocol v2 input tensors (one 1-D tensor per feature, or the
    model's tensor inputs) into columns."""
    if not isinstance(inputs, list):
        raise InvalidRequestError(field="inputs", problem="must be a list of tensors {name, shape, datatype, data}")
    if schema.tensors:
        return tensors_from_v2(inputs, schema, max_rows)
    by_name: dict[str, list] = {}
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise InvalidRequestError(field=where, problem="must be an object with a string `name`")
        data, shape, datatype = tensor.get("data"), tensor.get("shape"), tensor.get("datatype")
        if not isinstance(data, list):
            raise InvalidRequestError(field=f"{where}.data", problem="must be a list")
        if not (isinstance(shape, list) and len(shape) in (1, 2) and shape[0] == len(data) and all(s == 1 for s in shape[1:])):
            raise InvalidRequestError(field=f"{where}.shape", problem=f"must be [{len(data)}] (or [{len(data)}, 1]) for this data")
        kind = next((f.kind for f in schema.features if f.name == tensor["name"]), None)
        expected = "BYTES" if kind == "categorical" else "a numeric type"
        if kind is not None and (datatype == "BYTES") != (kind == "categorical") or (datatype not in NUMERIC_V2_TYPES | {"BYTES"}):
            raise InvalidRequestError(field=f"{where}.datatype", problem=f"{datatype!r} does not fit feature {tensor['name']!r}; use {expected}")
        by_name[tensor["name"]] = data
    return columns_from_inputs(by_name, schema, max_rows)


def decode_request(body: Any, schema: DatasetSchema, max_rows: int) -> dict[str, list]:
    """A v2 inference request body → validated feature columns."""
    if not isinstance(body, dict):
        raise InvalidRequestError(field="body", problem="must be a JSON object with `inputs`")
    return columns_from_v2(body.get("inputs"), schema, max_rows)


def encode_response(name: str, version: int, answer_id: str, result: Prediction,
                    request_id: str | None = None) -> dict[str, Any]:
    """A version's answer → the v2 inference response body (one tensor per output of the model);
    ``answer_id`` echoes the request's ``id``, ``parameters.request_id`` is the id feedback labels use."""
    body: dict[str, Any] = {"model_name": name, "model_version": str(version), "id": answer_id,
                            "outputs": result.tensors()}
    if request_id is not None:
        body["parameters"] = {"request_id": request_id}
    return body


def metadata(name: str, versions: list[int], schema: DatasetSchema, outputs: tuple[OutputSpec, ...]) -> dict[str, Any]:
    """Model metadata: versions, input tensors (one per feature) and the model's output tensors."""
    inputs = [{"name": f.name, "datatype": "FP64" if f.kind == "numeric" else "BYTES", "shape": [-1]}
              for f in schema.features] + [{"name": t.name, "datatype": t.datatype, "shape": [-1, *t.shape]}
                                           for t in schema.tensors]
    return {"name": name, "versions": [str(v) for v in sorted(versions)], "platform": "raymlops",
            "inputs": inputs, "outputs": [spec.metadata() for spec in outputs]}
