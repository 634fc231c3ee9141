"""The configuration reference, generated from the config models' field descriptions.

``raymlops config reference --output docs/CONFIG.md`` writes it; a test keeps the
committed file equal to what the models say.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from raymlops.config import CONFIG_MODELS


def _type_name(annotation: Any) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = text.replace("typing.", "").replace("NoneType", "None").replace("raymlops.config.", "")
    return text.replace("|", "or")


def _default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "" if isinstance(value, BaseModel) else f"`{value!r}`"
    if field.default is PydanticUndefined:
        return "required"
    return f"`{field.default!r}`"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        if nested is not None and typing.get_origin(field.annotation) is dict:
            rows.append(f"| `{prefix}{name}` | map of {nested.__name__} | {_default(field)} | {field.description} |")
            rows.extend(_rows(nested, f"{prefix}{name}.<key>."))
            continue
        if nested is not None:
            rows.extend(_rows(nested, f"{prefix}{name}."))
            continue
        description = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{prefix}{name}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
    return rows


def render_reference() -> str:
    """Markdown with one table per config file."""
    parts = ["# Configuration reference", "",
             "Generated from the config models by `raymlops config reference`; do not edit by hand.",
             "Every key can be overridden with `--set key.path=value`. Unknown keys are errors.", ""]
    for kind, model in CONFIG_MODELS.items():
        parts += [f"## `configs/{kind}.yaml` — {model.__name__}", "", (model.__doc__ or "").strip().splitlines()[0], "",
                  "| key | type | default | description |", "|---|---|---|---|", *_rows(model), ""]
    return "\n".join(parts)
