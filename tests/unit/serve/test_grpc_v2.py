"""The v2 gRPC service: KServe's field numbers, the servicer function Serve registers, the stub,
and the conversion of messages to the v2 bodies the REST routes validate."""

from __future__ import annotations

import asyncio
import struct

import grpc
import numpy as np
import pytest

from raymlops.errors import InvalidRequestError
from raymlops.serve import grpc_codec, grpc_v2


def _fields(message_name: str) -> dict[str, int]:
    return {field.name: field.number for field in grpc_v2.message_class(message_name).DESCRIPTOR.fields}


def test_the_messages_carry_the_field_numbers_of_grpc_predict_v2():
    assert _fields("ModelInferRequest") == {"model_name": 1, "model_version": 2, "id": 3, "parameters": 4,
                                            "inputs": 5, "outputs": 6, "raw_input_contents": 7}
    assert _fields("ModelInferResponse") == {"model_name": 1, "model_version": 2, "id": 3, "parameters": 4,
                                             "outputs": 5, "raw_output_contents": 6}
    assert _fields("ModelInferRequest.InferInputTensor") == {"name": 1, "datatype": 2, "shape": 3, "parameters": 4,
                                                             "contents": 5}
    assert _fields("InferTensorContents") == {"bool_contents": 1, "int_contents": 2, "int64_contents": 3,
                                              "uint_contents": 4, "uint64_contents": 5, "fp32_contents": 6,
                                              "fp64_contents": 7, "bytes_contents": 8}
    service = grpc_v2.ModelInferRequest.DESCRIPTOR.file.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert [method.name for method in service.methods] == list(grpc_v2.METHODS)


def test_a_message_survives_the_wire():
    request = grpc_v2.ModelInferRequest(model_name="m", id="a")
    tensor = request.inputs.add(name="x", datatype="FP64", shape=[2])
    tensor.contents.fp64_contents.extend([1.5, 2.5])
    request.parameters["binary_data_output"].bool_param = True
    again = grpc_v2.ModelInferRequest.FromString(request.SerializeToString())
    assert again == request
    assert grpc_codec.parameter_dict(again.parameters) == {"binary_data_output": True}


class _Servicer:
    async def ServerLive(self, request, context):  # noqa: N802
        return grpc_v2.ServerLiveResponse(live=True)

    async def ModelInfer(self, request, context):  # noqa: N802
        return grpc_v2.ModelInferResponse(model_name=request.model_name, id=request.id)

    ServerReady = ModelReady = ServerMetadata = ModelMetadata = ServerLive


def test_the_servicer_function_and_the_stub_talk_over_a_real_server():
    async def scenario():
        server = grpc.aio.server()
        grpc_v2.add_GRPCInferenceServiceServicer_to_server(_Servicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = grpc_v2.GRPCInferenceServiceStub(channel)
                live = await stub.ServerLive(grpc_v2.ServerLiveRequest())
                answer = await stub.ModelInfer(grpc_v2.ModelInferRequest(model_name="m", id="7"))
            return live.live, answer.model_name, answer.id
        finally:
            await server.stop(None)

    assert asyncio.run(scenario()) == (True, "m", "7")


def _request(**inputs) -> grpc_v2.ModelInferRequest:
    request = grpc_v2.ModelInferRequest(model_name="m")
    for name, (datatype, values) in inputs.items():
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        field = grpc_codec.CONTENTS_FIELD[datatype]
        getattr(tensor.contents, field).extend([v.encode() if isinstance(v, str) else v for v in values])
    return request


def test_typed_contents_become_the_v2_body_the_rest_routes_validate():
    request = _request(a=("FP64", [1.0, 2.0]), island=("BYTES", ["Biscoe", "Dream"]), n=("INT32", [3, 4]))
    request.id = "abc"
    request.outputs.add(name="class").parameters["binary_data"].bool_param = True
    body = grpc_codec.body_from_infer_request(request)
    assert body["id"] == "abc"
    assert body["inputs"] == [{"name": "a", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]},
                              {"name": "island", "datatype": "BYTES", "shape": [2], "data": ["Biscoe", "Dream"]},
                              {"name": "n", "datatype": "INT32", "shape": [2], "data": [3, 4]}]
    assert grpc_codec.wants_raw_outputs(body) is True
    assert grpc_codec.wants_raw_outputs(grpc_codec.body_from_infer_request(_request(a=("FP64", [1.0])))) is False


def test_raw_input_contents_are_read_by_datatype():
    request = grpc_v2.ModelInferRequest(model_name="m")
    request.inputs.add(name="a", datatype="FP32", shape=[3])
    request.inputs.add(name="s", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(np.array([1.0, 2.5, -1.0], dtype="<f4").tobytes())
    request.raw_input_contents.append(struct.pack("<I", 5) + b"Dream")
    body = grpc_codec.body_from_infer_request(request)
    assert body["inputs"][0]["data"] == [1.0, 2.5, -1.0]
    assert body["inputs"][1]["data"] == ["Dream"]


@pytest.mark.parametrize("mutate, field, problem", [
    (lambda r: r.raw_input_contents.append(b"\0" * 8), "raw_input_contents", "holds 1 entries for 2 inputs"),
    (lambda r: [r.raw_input_contents.append(b"\0" * 7) for _ in range(2)], "raw_input_contents", "7 bytes"),
    (lambda r: setattr(r.inputs[0], "datatype", "FP128"), "inputs[0].datatype", "not a v2 datatype"),
    (lambda r: setattr(r.inputs[1], "datatype", "FP16"), "inputs[1].contents", "raw_input_contents"),
])
def test_contents_that_do_not_fit_are_named(mutate, field, problem):
    request = _request(a=("FP64", [1.0]), b=("FP64", [2.0]))
    mutate(request)
    with pytest.raises(InvalidRequestError) as caught:
        grpc_codec.body_from_infer_request(request)
    assert caught.value.field == field and problem in caught.value.problem


def test_bytes_that_are_not_text_are_refused():
    request = grpc_v2.ModelInferRequest(model_name="m")
    request.inputs.add(name="s", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"\xff\xfe")
    with pytest.raises(InvalidRequestError, match="UTF-8"):
        grpc_codec.body_from_infer_request(request)


ANSWER = {"model_name": "m", "model_version": "2", "id": "x", "parameters": {"request_id": "r1"},
          "outputs": [{"name": "class", "datatype": "BYTES", "shape": [2], "data": ["Adelie", "Gentoo"]},
                      {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "data": [0.5, 0.5, 0.25, 0.75]}]}


def test_an_answer_becomes_typed_contents_or_raw_bytes():
    typed = grpc_codec.infer_response(ANSWER, raw_outputs=False)
    assert (typed.model_version, typed.id) == ("2", "x")
    assert grpc_codec.parameter_dict(typed.parameters) == {"request_id": "r1"}
    assert list(typed.outputs[0].contents.bytes_contents) == [b"Adelie", b"Gentoo"]
    assert list(typed.outputs[1].shape) == [2, 2]
    assert list(typed.outputs[1].contents.fp32_contents) == [0.5, 0.5, 0.25, 0.75]
    raw = grpc_codec.infer_response(ANSWER, raw_outputs=True)
    assert not raw.outputs[1].HasField("contents")
    assert np.frombuffer(raw.raw_output_contents[1], dtype="<f4").tolist() == [0.5, 0.5, 0.25, 0.75]
    assert raw.raw_output_contents[0] == struct.pack("<I", 6) + b"Adelie" + struct.pack("<I", 6) + b"Gentoo"


def test_parameters_keep_their_types():
    response = grpc_v2.ModelInferResponse()
    grpc_codec.set_parameters(response.parameters, {"b": True, "i": 3, "f": 0.5, "s": "t"})
    assert grpc_codec.parameter_dict(response.parameters) == {"b": True, "i": 3, "f": 0.5, "s": "t"}
    assert response.parameters["b"].WhichOneof("parameter_choice") == "bool_param"


def test_metadata_lists_input_and_output_tensors():
    response = grpc_codec.metadata_response({"name": "m", "versions": ["1", "2"], "platform": "raymlops",
                                             "inputs": [{"name": "a", "datatype": "FP64", "shape": [-1]}],
                                             "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, 3]}]})
    assert list(response.versions) == ["1", "2"]
    assert (response.inputs[0].name, list(response.outputs[0].shape)) == ("a", [-1, 3])


def test_the_cluster_registers_this_servicer_function_with_serve():
    from ray.serve.config import gRPCOptions

    from raymlops.local_head import GRPC_SERVICER_FUNCTION, grpc_arguments

    assert GRPC_SERVICER_FUNCTION == grpc_v2.SERVICER_FUNCTION
    assert gRPCOptions(grpc_servicer_functions=[GRPC_SERVICER_FUNCTION]).grpc_servicer_func_callable == [
        grpc_v2.add_GRPCInferenceServiceServicer_to_server]
    assert grpc_arguments(None) == []
    assert grpc_arguments(9000) == ["--grpc-port=9000", f"--grpc-servicer-functions={GRPC_SERVICER_FUNCTION}"]


def test_deploy_waits_for_grpc_only_where_serve_registers_this_service():
    from raymlops.serve.endpoints import grpc_target

    options = {"port": 9000, "grpc_servicer_functions": [grpc_v2.SERVICER_FUNCTION]}
    assert grpc_target({"grpc_options": options, "http_options": {"host": "127.0.0.2"}}, "10.0.0.1") == "127.0.0.2:9000"
    assert grpc_target({"grpc_options": options, "http_options": {"host": "0.0.0.0"}}, "10.0.0.1") == "10.0.0.1:9000"
    assert grpc_target({"grpc_options": {**options, "grpc_servicer_functions": []}}, "h") is None
    assert grpc_target({}, "h") is None
