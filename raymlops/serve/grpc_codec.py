"""Open Inference Protocol v2 over gRPC ↔ the v2 JSON bodies the REST routes speak: a
``ModelInferRequest`` becomes the body ``raymlops.serve.v2`` validates, and a v2 answer becomes
a ``ModelInferResponse``. Pure (protobuf and numpy, no Ray), so one validation serves both
protocols and an error names the same field.

Tensor data arrive in ``contents`` (typed lists) or in ``raw_input_contents`` (one little-endian,
row-major blob per input, what tritonclient sends); answers go back in ``contents``, or in
``raw_output_contents`` when the request asked for binary data (``binary_data_output``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from raymlops.errors import InvalidRequestError
from raymlops.serve import grpc_v2
from raymlops.serve.binary import NUMPY_TYPES, decode_strings, encode_tensor

#: v2 datatype → the InferTensorContents field that carries it (FP16 travels only as raw bytes).
CONTENTS_FIELD = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents",
                  "INT32": "int_contents", "INT64": "int64_contents", "UINT8": "uint_contents",
                  "UINT16": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
                  "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}
#: HTTP status of a raymlops error → gRPC status code name.
GRPC_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
              409: "FAILED_PRECONDITION", 413: "RESOURCE_EXHAUSTED", 422: "INVALID_ARGUMENT", 500: "INTERNAL",
              503: "UNAVAILABLE"}


def parameter_value(parameter: Any) -> Any:
    """The Python value of an ``InferParameter`` (None when unset)."""
    which = parameter.WhichOneof("parameter_choice")
    return getattr(parameter, which) if which else None


def parameter_dict(parameters: Any) -> dict[str, Any]:
    """A ``map<string, InferParameter>`` as a plain dict."""
    return {key: parameter_value(value) for key, value in parameters.items()}


def set_parameters(target: Any, values: dict[str, Any]) -> None:
    """Fill a ``map<string, InferParameter>`` from plain values (bool, int, float, str)."""
    for key, value in values.items():
        slot = target[key]
        if isinstance(value, bool):
            slot.bool_param = value
        elif isinstance(value, int):
            slot.int64_param = value
        elif isinstance(value, float):
            slot.double_param = value
        else:
            slot.string_param = str(value)


def _tensor_data(tensor: Any, raw: bytes | None, where: str) -> list:
    datatype = tensor.datatype
    if datatype not in CONTENTS_FIELD and datatype != "FP16":
        raise InvalidRequestError(field=f"{where}.datatype", problem=f"{datatype!r} is not a v2 datatype")
    if raw is not None:
        if datatype == "BYTES":
            return decode_strings(raw, "raw_input_contents")
        dtype = np.dtype(NUMPY_TYPES[datatype])
        if len(raw) % dtype.itemsize:
            raise InvalidRequestError(field="raw_input_contents", problem=f"{len(raw)} bytes is not a whole number "
                                      f"of {datatype}")
        return np.frombuffer(raw, dtype=dtype).tolist()
    if datatype == "FP16":
        raise InvalidRequestError(field=f"{where}.contents", problem="FP16 data travel in raw_input_contents")
    values = list(getattr(tensor.contents, CONTENTS_FIELD[datatype]))
    if datatype == "BYTES":
        try:
            return [value.decode("utf-8") for value in values]
        except UnicodeDecodeError:
            raise InvalidRequestError(field=f"{where}.contents.bytes_contents",
                                      problem="BYTES element is not UTF-8 text") from None
    return values


def body_from_infer_request(request: Any) -> dict[str, Any]:
    """A ``ModelInferRequest`` → the v2 JSON body (``inputs`` with flat ``data``, ``id``,
    ``parameters``, ``outputs``) that ``raymlops.serve.v2.decode_request`` validates.

    Raises:
        InvalidRequestError: raw contents that do not match the inputs or their datatypes.
    """
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise InvalidRequestError(field="raw_input_contents", problem=f"holds {len(raw)} entries for "
                                  f"{len(request.inputs)} inputs; send one per input, or none")
    inputs = []
    for index, tensor in enumerate(request.inputs):
        where = f"inputs[{index}]"
        inputs.append({"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape),
                       "data": _tensor_data(tensor, raw[index] if raw else None, where)})
    body: dict[str, Any] = {"inputs": inputs, "parameters": parameter_dict(request.parameters),
                            "outputs": [{"name": output.name, "parameters": parameter_dict(output.parameters)}
                                        for output in request.outputs]}
    if request.id:
        body["id"] = request.id
    return body


def infer_response(answer: dict[str, Any], raw_outputs: bool) -> Any:
    """The v2 answer body (``raymlops.serve.v2.encode_response``) as a ``ModelInferResponse``;
    ``raw_outputs``: data in ``raw_output_contents`` instead of typed ``contents``."""
    response = grpc_v2.ModelInferResponse(model_name=answer["model_name"], model_version=answer["model_version"],
                                          id=answer["id"])
    set_parameters(response.parameters, answer.get("parameters", {}))
    for tensor in answer["outputs"]:
        output = response.outputs.add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
        if raw_outputs or tensor["datatype"] == "FP16":
            response.raw_output_contents.append(encode_tensor(tensor))
        elif tensor["datatype"] == "BYTES":
            output.contents.bytes_contents.extend(str(value).encode() for value in tensor["data"])
        else:
            getattr(output.contents, CONTENTS_FIELD[tensor["datatype"]]).extend(tensor["data"])
    return response


def metadata_response(metadata: dict[str, Any]) -> Any:
    """``raymlops.serve.v2.metadata``'s dict as a ``ModelMetadataResponse``."""
    response = grpc_v2.ModelMetadataResponse(name=metadata["name"], versions=metadata["versions"],
                                             platform=metadata["platform"])
    for kind in ("inputs", "outputs"):
        for tensor in metadata[kind]:
            getattr(response, kind).add(name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"])
    return response


def wants_raw_outputs(body: dict[str, Any]) -> bool:
    """Whether the request asked for binary output data (``binary_data_output`` or any output's
    ``binary_data``): then every output travels in ``raw_output_contents``, as gRPC keeps one form."""
    if body["parameters"].get("binary_data_output") is True:
        return True
    return any(output["parameters"].get("binary_data") is True for output in body["outputs"])
