"""The request bodies the model server's routes declare in its OpenAPI schema, so `/docs` can send
a valid request and schema-driven fuzzers build real ones. The routes read their bodies
themselves (one validation path naming the JSON field of every problem); these describe them.
"""

from __future__ import annotations

from typing import Any

_VALUE = {"anyOf": [{"type": "number"}, {"type": "string"}]}
_ROW = {"type": "object", "additionalProperties": _VALUE, "description": "feature (or tensor input) → value"}
_TENSOR = {
    "type": "object", "required": ["name", "shape", "datatype"],
    "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                   "datatype": {"type": "string", "enum": ["BYTES", "BOOL", "FP16", "FP32", "FP64", "INT8", "INT16",
                                                           "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]},
                   "data": {"type": "array", "items": _VALUE}, "parameters": {"type": "object"}},
}
_LABEL = {"anyOf": [{"type": "string"}, {"type": "number"}]}
_FEEDBACK_ITEM = {"type": "object", "required": ["request_id"], "additionalProperties": False,
                  "properties": {"request_id": {"type": "string"}, "label": _LABEL,
                                 "labels": {"type": "array", "items": _LABEL, "minItems": 1}}}

SCHEMAS: dict[str, dict[str, Any]] = {
    "predict": {"oneOf": [
        {"type": "object", "required": ["instances"], "properties": {"instances": {"type": "array", "items": _ROW,
                                                                                   "minItems": 1}}},
        {"type": "object", "required": ["inputs"], "properties": {
            "inputs": {"type": "object", "additionalProperties": {"type": "array", "items": _VALUE}}}},
    ], "example": {"instances": [{"island": "Dream", "bill_length_mm": 40.0}]}},
    "infer": {"type": "object", "required": ["inputs"], "properties": {
        "id": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR, "minItems": 1},
        "outputs": {"type": "array", "items": {"type": "object"}}, "parameters": {"type": "object"}}},
    "feedback": {"oneOf": [_FEEDBACK_ITEM, {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1},
                           {"type": "object", "required": ["feedback"], "additionalProperties": False,
                            "properties": {"feedback": {"type": "array", "items": _FEEDBACK_ITEM, "minItems": 1}}}]},
    "traffic": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
        "canary_weight": {"type": "number", "minimum": 0, "maximum": 1},
        "canary_version": {"type": ["integer", "null"]}, "stable_version": {"type": "integer"},
        "shadow_version": {"type": ["integer", "null"]}, "shadow_share": {"type": "number", "minimum": 0, "maximum": 1},
        "sticky_field": {"type": ["string", "null"]}}},
    "rollout": {"type": "object", "description": "rollout config fields (configs/rollout.yaml); empty = defaults"},
}


def body(kind: str, required: bool = True) -> dict[str, Any]:
    """The ``openapi_extra`` of a route whose JSON body is a ``kind`` of :data:`SCHEMAS`."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": SCHEMAS[kind]}}}}
