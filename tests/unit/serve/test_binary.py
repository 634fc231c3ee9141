"""The binary tensor data extension, as tritonclient sends and reads it."""

import json
import struct

import numpy as np
import pytest

from raymlops.errors import InvalidRequestError
from raymlops.serve.binary import attach_binary_inputs, binary_outputs, decode_body, encode_binary


def strings(*values):
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def binary_request(parameters=None, outputs=None):
    """What ``tritonclient.http`` sends by default: every input as binary data after the JSON."""
    numbers = np.array([40.0, 47.5], dtype=np.float32).tobytes()
    text = strings("Dream", "Biscoe")
    header = {"inputs": [
        {"name": "x", "shape": [2, 1], "datatype": "FP32", "parameters": {"binary_data_size": len(numbers)}},
        {"name": "island", "shape": [2, 1], "datatype": "BYTES", "parameters": {"binary_data_size": len(text)}}]}
    if parameters:
        header["parameters"] = parameters
    if outputs:
        header["outputs"] = outputs
    head = json.dumps(header).encode()
    return head + numbers + text, str(len(head))


def test_binary_inputs_are_attached_in_order():
    raw, length = binary_request()
    body = decode_body(raw, length)
    assert body["inputs"][0]["data"] == [40.0, 47.5] and body["inputs"][1]["data"] == ["Dream", "Biscoe"]
    assert decode_body(b'{"inputs": []}', None) == {"inputs": []}


@pytest.mark.parametrize("cut, problem", [
    (lambda raw: raw[:-3], "does not fit"),
    (lambda raw: raw + b"xx", "no input's binary_data_size claims"),
])
def test_sizes_that_do_not_add_up_are_named(cut, problem):
    raw, length = binary_request()
    with pytest.raises(InvalidRequestError, match=problem):
        decode_body(cut(raw), length)


def test_a_header_length_outside_the_body_and_broken_bytes_are_4xx():
    with pytest.raises(InvalidRequestError, match="not a length within"):
        decode_body(b"{}", "99")
    body = {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 6}}]}
    with pytest.raises(InvalidRequestError, match="ends inside an element"):
        attach_binary_inputs(body, struct.pack("<I", 50) + b"ab")


def test_outputs_are_binary_when_asked_for_all_or_by_name():
    assert binary_outputs({"parameters": {"binary_data_output": True}}) is True
    assert binary_outputs({"outputs": [{"name": "class", "parameters": {"binary_data": True}}, {"name": "p"}]}) == {"class"}
    assert binary_outputs({"parameters": {"binary_data_output": True},
                           "outputs": [{"name": "class", "parameters": {"binary_data": False}}, {"name": "p"}]}) == {"p"}
    assert not binary_outputs({"inputs": []})
    answer = {"id": "1", "outputs": [{"name": "class", "shape": [2], "datatype": "BYTES", "data": ["a", "bc"]},
                                     {"name": "p", "shape": [2, 2], "datatype": "FP32", "data": [0.5, 0.5, 1.0, 0.0]}]}
    content, length = encode_binary(answer, True)
    header = json.loads(content[:length])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [11, 16]
    assert "data" not in header["outputs"][0]
    assert content[length:length + 11] == strings("a", "bc")
    np.testing.assert_array_equal(np.frombuffer(content[length + 11:], dtype="<f4"), [0.5, 0.5, 1.0, 0.0])
