"""The Open Inference Protocol (v2) gRPC service, ``inference.GRPCInferenceService``, as KServe's
``grpc_predict_v2.proto`` defines it (the service MLServer, Triton and KServe answer): its
messages, the servicer function Ray Serve's gRPC ingress registers, and a client stub.

The messages are built from a descriptor written here rather than from generated code, so
they work with whatever protobuf runtime Ray brings; field numbers and names are the proto's,
so any v2 gRPC client (tritonclient, MLServer's stubs, code generated from the .proto) speaks
to raymlops unchanged.

Serve's gRPC ingress needs the servicer function by import path; a cluster with
``serve_grpc_port`` set registers :data:`SERVICER_FUNCTION`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"
#: The import path Serve's ``grpc_servicer_functions`` takes.
SERVICER_FUNCTION = "raymlops.serve.grpc_v2.add_GRPCInferenceServiceServicer_to_server"

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"bool": _F.TYPE_BOOL, "int32": _F.TYPE_INT32, "int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32,
            "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE, "string": _F.TYPE_STRING,
            "bytes": _F.TYPE_BYTES}
#: message → fields (name, number, type, repeated); a type not in _SCALARS names a message.
_PARAMETERS = ("parameters", 4, "map", True)
_TENSOR = [("name", 1, "string", False), ("datatype", 2, "string", False), ("shape", 3, "int64", True)]
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "ServerLiveRequest": [], "ServerLiveResponse": [("live", 1, "bool", False)],
    "ServerReadyRequest": [], "ServerReadyResponse": [("ready", 1, "bool", False)],
    "ModelReadyRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "ModelReadyResponse": [("ready", 1, "bool", False)],
    "ServerMetadataRequest": [],
    "ServerMetadataResponse": [("name", 1, "string", False), ("version", 2, "string", False),
                               ("extensions", 3, "string", True)],
    "ModelMetadataRequest": [("name", 1, "string", False), ("version", 2, "string", False)],
    "ModelMetadataResponse": [("name", 1, "string", False), ("versions", 2, "string", True),
                              ("platform", 3, "string", False), ("inputs", 4, ".TensorMetadata", True),
                              ("outputs", 5, ".TensorMetadata", True)],
    "ModelMetadataResponse.TensorMetadata": _TENSOR,
    "ModelInferRequest": [("model_name", 1, "string", False), ("model_version", 2, "string", False),
                          ("id", 3, "string", False), _PARAMETERS, ("inputs", 5, ".InferInputTensor", True),
                          ("outputs", 6, ".InferRequestedOutputTensor", True),
                          ("raw_input_contents", 7, "bytes", True)],
    "ModelInferRequest.InferInputTensor": [*_TENSOR, _PARAMETERS, ("contents", 5, "InferTensorContents", False)],
    "ModelInferRequest.InferRequestedOutputTensor": [("name", 1, "string", False), ("parameters", 2, "map", True)],
    "ModelInferResponse": [("model_name", 1, "string", False), ("model_version", 2, "string", False),
                           ("id", 3, "string", False), _PARAMETERS, ("outputs", 5, ".InferOutputTensor", True),
                           ("raw_output_contents", 6, "bytes", True)],
    "ModelInferResponse.InferOutputTensor": [*_TENSOR, _PARAMETERS, ("contents", 5, "InferTensorContents", False)],
    "InferParameter": [("bool_param", 1, "bool", False), ("int64_param", 2, "int64", False),
                       ("string_param", 3, "string", False), ("double_param", 4, "double", False),
                       ("uint64_param", 5, "uint64", False)],
    "InferTensorContents": [("bool_contents", 1, "bool", True), ("int_contents", 2, "int32", True),
                            ("int64_contents", 3, "int64", True), ("uint_contents", 4, "uint32", True),
                            ("uint64_contents", 5, "uint64", True), ("fp32_contents", 6, "float", True),
                            ("fp64_contents", 7, "double", True), ("bytes_contents", 8, "bytes", True)],
}
#: rpc name → (request, response)
METHODS = {name: (f"{name}Request", f"{name}Response") for name in
           ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")}


def _field(message: descriptor_pb2.DescriptorProto, owner: str, name: str, number: int, kind: str,
           repeated: bool) -> None:
    field = message.field.add(name=name, number=number,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if kind == "map":  # map<string, InferParameter>: a nested entry message, as protoc writes it
        entry = message.nested_type.add(name="ParametersEntry")
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, label=_F.LABEL_OPTIONAL, type=_F.TYPE_STRING)
        entry.field.add(name="value", number=2, label=_F.LABEL_OPTIONAL, type=_F.TYPE_MESSAGE,
                        type_name=f".{PACKAGE}.InferParameter")
        field.type, field.type_name = _F.TYPE_MESSAGE, f".{PACKAGE}.{owner}.ParametersEntry"
    elif kind in _SCALARS:
        field.type = _SCALARS[kind]
    else:
        field.type = _F.TYPE_MESSAGE
        target = f"{owner.split('.')[0]}{kind}" if kind.startswith(".") else kind
        field.type_name = f".{PACKAGE}.{target}"


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """``grpc_predict_v2.proto`` as a FileDescriptorProto."""
    proto = descriptor_pb2.FileDescriptorProto(name="raymlops/grpc_predict_v2.proto", package=PACKAGE,
                                               syntax="proto3")
    built: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path, fields in _MESSAGES.items():
        parent, _, leaf = path.rpartition(".")
        message = built[parent].nested_type.add(name=leaf) if parent else proto.message_type.add(name=leaf)
        built[path] = message
        for name, number, kind, repeated in fields:
            _field(message, path, name, number, kind, repeated)
    parameter = built["InferParameter"]
    parameter.oneof_decl.add(name="parameter_choice")
    for field in parameter.field:
        field.oneof_index = 0
    service = proto.service.add(name=SERVICE.split(".")[-1])
    for name, (request, response) in METHODS.items():
        service.method.add(name=name, input_type=f".{PACKAGE}.{request}", output_type=f".{PACKAGE}.{response}")
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(file_descriptor())


def message_class(name: str) -> Any:
    """The message class of ``name`` (``ModelInferRequest``, ``InferTensorContents`` ...)."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


ServerLiveRequest, ServerLiveResponse = message_class("ServerLiveRequest"), message_class("ServerLiveResponse")
ServerReadyRequest, ServerReadyResponse = message_class("ServerReadyRequest"), message_class("ServerReadyResponse")
ModelReadyRequest, ModelReadyResponse = message_class("ModelReadyRequest"), message_class("ModelReadyResponse")
ServerMetadataRequest = message_class("ServerMetadataRequest")
ServerMetadataResponse = message_class("ServerMetadataResponse")
ModelMetadataRequest, ModelMetadataResponse = message_class("ModelMetadataRequest"), message_class("ModelMetadataResponse")
ModelInferRequest, ModelInferResponse = message_class("ModelInferRequest"), message_class("ModelInferResponse")
InferParameter, InferTensorContents = message_class("InferParameter"), message_class("InferTensorContents")


def add_GRPCInferenceServiceServicer_to_server(servicer: Any, server: Any) -> None:  # noqa: N802 - protoc's name
    """Register ``servicer``'s methods (``ModelInfer`` ...) as ``inference.GRPCInferenceService``
    on a grpc server — what generated ``*_pb2_grpc`` code does, and what Serve's gRPC ingress calls."""
    import grpc

    handlers = {name: grpc.unary_unary_rpc_method_handler(
        getattr(servicer, name), request_deserializer=message_class(request).FromString,
        response_serializer=message_class(response).SerializeToString)
        for name, (request, response) in METHODS.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class GRPCInferenceServiceStub:
    """A client of the service: ``stub.ModelInfer(request, metadata=[("x-api-key", key)])``."""

    ServerLive: Any
    ServerReady: Any
    ModelReady: Any
    ServerMetadata: Any
    ModelMetadata: Any
    ModelInfer: Any

    def __init__(self, channel: Any) -> None:
        for name, (request, response) in METHODS.items():
            setattr(self, name, channel.unary_unary(f"/{SERVICE}/{name}",
                                                    request_serializer=message_class(request).SerializeToString,
                                                    response_deserializer=message_class(response).FromString))
