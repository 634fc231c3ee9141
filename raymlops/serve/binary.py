"""The Open Inference Protocol's binary tensor data extension (what tritonclient sends by default):
a JSON header of ``Inference-Header-Content-Length`` bytes followed by each binary tensor's bytes,
little-endian, row-major; BYTES elements as a 4-byte length and the bytes.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from raymlops.errors import InvalidRequestError

#: The header naming the length of the JSON part of a binary request or response.
HEADER_LENGTH = "inference-header-content-length"
NUMPY_TYPES = {"BOOL": "?", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "<i1",
               "INT16": "<i2", "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}


def split_body(raw: bytes, header_length: str) -> tuple[bytes, bytes]:
    """The JSON header and the binary part of a body whose JSON is ``header_length`` bytes long.

    Raises:
        InvalidRequestError: the length is not a number within the body.
    """
    if not header_length.isdigit() or int(header_length) > len(raw):
        raise InvalidRequestError(field=HEADER_LENGTH, problem=f"{header_length!r} is not a length within the "
                                  f"{len(raw)}-byte body")
    return raw[:int(header_length)], raw[int(header_length):]


def decode_strings(chunk: bytes, where: str) -> list[str]:
    """BYTES elements (a 4-byte little-endian length, then UTF-8 bytes, each) as strings; errors name ``where``."""
    values, offset = [], 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InvalidRequestError(field=where, problem="BYTES data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise InvalidRequestError(field=where, problem="BYTES data ends inside an element")
        try:
            values.append(chunk[offset:offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError(field=where, problem="BYTES element is not UTF-8 text") from None
        offset += length
    return values


def attach_binary_inputs(body: Any, blob: bytes) -> Any:
    """Put each binary input's values (from ``blob``, in input order) into its ``data``.

    Raises:
        InvalidRequestError: sizes that do not add up, or data that does not fit its datatype.
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list):
        raise InvalidRequestError(field="inputs", problem="must be a list of tensors")
    offset = 0
    for index, tensor in enumerate(inputs):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        where = f"inputs[{index}].parameters.binary_data_size"
        if isinstance(size, bool) or not isinstance(size, int) or size < 0 or offset + size > len(blob):
            raise InvalidRequestError(field=where, problem=f"{size!r} does not fit the {len(blob) - offset} binary "
                                      "bytes left")
        chunk, offset = blob[offset:offset + size], offset + size
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            tensor["data"] = decode_strings(chunk, where)
        elif datatype in NUMPY_TYPES:
            dtype = np.dtype(NUMPY_TYPES[datatype])
            if size % dtype.itemsize:
                raise InvalidRequestError(field=where, problem=f"{size} bytes is not a whole number of {datatype}")
            tensor["data"] = np.frombuffer(chunk, dtype=dtype).tolist()
        else:
            raise InvalidRequestError(field=f"inputs[{index}].datatype", problem=f"{datatype!r} is not a v2 datatype")
    if offset != len(blob):
        raise InvalidRequestError(field=HEADER_LENGTH, problem=f"{len(blob) - offset} binary bytes follow that no "
                                  "input's binary_data_size claims")
    return body


def binary_outputs(body: Any) -> set[str] | bool:
    """Which outputs the request wants as binary data: True for all (``binary_data_output``), or
    the names of outputs asked for with ``binary_data: true``."""
    if not isinstance(body, dict):
        return set()
    parameters = body.get("parameters")
    everything = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
    named: set[str] = set()
    for output in body.get("outputs") or []:
        if isinstance(output, dict) and isinstance(output.get("parameters"), dict):
            wanted = output["parameters"].get("binary_data")
            if wanted is True:
                named.add(str(output.get("name")))
            elif wanted is False and everything:
                everything = False  # an output's own setting overrides: name every other one instead
                named |= {str(o.get("name")) for o in body["outputs"] if isinstance(o, dict)} - {str(output.get("name"))}
    return True if everything else named


def encode_tensor(tensor: dict[str, Any]) -> bytes:
    """A v2 tensor's data as binary bytes (little-endian, row-major; BYTES length-prefixed)."""
    if tensor["datatype"] == "BYTES":
        parts = [str(value).encode() for value in tensor["data"]]
        return b"".join(struct.pack("<I", len(part)) + part for part in parts)
    return np.asarray(tensor["data"], dtype=NUMPY_TYPES[tensor["datatype"]]).tobytes()


def encode_binary(body: dict[str, Any], wanted: set[str] | bool) -> tuple[bytes, int]:
    """A v2 response body with the ``wanted`` outputs as binary data; returns the bytes and the
    length of their JSON part (for ``Inference-Header-Content-Length``)."""
    blobs = []
    outputs = []
    for tensor in body["outputs"]:
        if wanted is True or (isinstance(wanted, set) and tensor["name"] in wanted):
            blob = encode_tensor(tensor)
            blobs.append(blob)
            tensor = {k: v for k, v in tensor.items() if k != "data"}
            tensor["parameters"] = {**tensor.get("parameters", {}), "binary_data_size": len(blob)}
        outputs.append(tensor)
    header = json.dumps({**body, "outputs": outputs}).encode()
    return header + b"".join(blobs), len(header)


def decode_body(raw: bytes, header_length: str | None) -> Any:
    """A v2 inference request body: plain JSON, or (with ``Inference-Header-Content-Length``)
    JSON followed by binary tensor data, attached to its inputs.

    Raises:
        InvalidRequestError: not JSON, nested too deep, or binary data that does not fit.
    """
    from raymlops.serve.edge import parse_json

    if header_length is None:
        return parse_json(raw)
    head, blob = split_body(raw, header_length)
    return attach_binary_inputs(parse_json(head), blob)


def binary_or_json(answer: dict[str, Any], wanted: set[str] | bool, headers: dict[str, str]):
    """A v2 inference answer as a JSON response, or with the ``wanted`` outputs as binary tensor data."""
    from fastapi.responses import JSONResponse, Response

    if not wanted:
        return JSONResponse(answer, headers=headers)
    content, header_length = encode_binary(answer, wanted)
    return Response(content, media_type="application/octet-stream", headers={**headers, HEADER_LENGTH: str(header_length)})
