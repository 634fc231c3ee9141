"""Request bodies → validated input columns, checked against a version's signature. Pure.

Two /v1 shapes are accepted: rows (``{"instances": [{feature: value}, ...]}``) and columns
(``{"inputs": {feature: [values]}}``); a model with tensor inputs takes the same two shapes
with a nested list (or flat row) per tensor. v2 tensors are decoded by :mod:`raymlops.serve.v2`.
Every problem raises InvalidRequestError naming the JSON path, so the HTTP edge can answer 4xx with it.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from raymlops.data.schema import DatasetSchema, TensorSpec
from raymlops.errors import InvalidRequestError, LimitExceededError

#: The largest magnitude a feature may have: float32's, which models compute in.
MAX_MAGNITUDE = float(np.finfo(np.float32).max)


def _check_value(value: Any, kind: str, path: str) -> Any:
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequestError(field=path, problem=f"must be a number, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRequestError(field=path, problem="must be finite (NaN and infinity are refused)")
        if abs(value) > MAX_MAGNITUDE:
            raise InvalidRequestError(field=path, problem=f"is out of range (|x| > {MAX_MAGNITUDE:.4g}, the largest "
                                      "float32)")
        return float(value)
    if not isinstance(value, str):
        raise InvalidRequestError(field=path, problem=f"must be a string (a category), got {type(value).__name__}")
    return value


def _check_names(present: set[str], schema: DatasetSchema, where: str) -> None:
    names = schema.input_names
    missing = [name for name in names if name not in present]
    if missing:
        raise InvalidRequestError(field=where, problem=f"missing input(s) {', '.join(missing)}")
    unknown = sorted(present - set(names))
    if unknown:
        raise InvalidRequestError(field=f"{where}.{unknown[0]}", problem=f"unknown input (expected: {', '.join(names)})")


def tensor_rows(value: Any, spec: TensorSpec, rows: int | None, where: str) -> np.ndarray:
    """A tensor input's rows: nested lists (or one flat list per row, or a flat list of all
    rows) as an array of rows × ``spec.shape``, every number finite.

    Raises:
        InvalidRequestError: naming ``where`` for a non-numeric, non-finite or misshapen tensor.
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidRequestError(field=where, problem=f"must be numbers shaped {list(spec.shape)} per row") from None
    size = int(np.prod(spec.shape))
    if array.size == 0 or array.size % size or (rows is not None and array.size != rows * size):
        wanted = f"{rows} row(s) of " if rows is not None else "rows of "
        raise InvalidRequestError(field=where, problem=f"has shape {list(array.shape)}; expected {wanted}"
                                  f"{list(spec.shape)} ({size} numbers each)")
    if not np.isfinite(array).all():
        raise InvalidRequestError(field=where, problem="must be finite (NaN and infinity are refused)")
    if np.abs(array).max() > MAX_MAGNITUDE:
        raise InvalidRequestError(field=where, problem=f"is out of range (|x| > {MAX_MAGNITUDE:.4g}, the largest float32)")
    return array.reshape(-1, *spec.shape)


def _tensor_columns(by_name: dict[str, Any], schema: DatasetSchema, max_rows: int, where: str,
                    per_row: bool) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    for spec in schema.tensors:
        values = by_name[spec.name]
        if per_row:  # one row per instance
            columns[spec.name] = np.stack([tensor_rows(v, spec, 1, f"{where}[{i}].{spec.name}")[0]
                                           for i, v in enumerate(values)])
        else:
            columns[spec.name] = tensor_rows(values, spec, None, f"{where}.{spec.name}")
        check_count(len(columns[spec.name]), max_rows, where)
    if len({len(v) for v in columns.values()}) > 1:
        raise InvalidRequestError(field=where, problem="tensors differ in their number of rows")
    return columns


def check_count(count: int, max_rows: int, where: str) -> None:
    """At least one row, at most ``max_rows`` (a :class:`LimitExceededError` beyond)."""
    if count == 0:
        raise InvalidRequestError(field=where, problem="empty batch: send at least one row")
    if count > max_rows:
        raise LimitExceededError(field=where, size=count, limit=max_rows, unit="rows")


def columns_from_instances(instances: Any, schema: DatasetSchema, max_rows: int) -> dict[str, list]:
    """Validate ``instances`` (a list of row objects) into columns."""
    if not isinstance(instances, list):
        raise InvalidRequestError(field="instances", problem="must be a list of objects")
    check_count(len(instances), max_rows, "instances")
    if schema.tensors:
        for index, row in enumerate(instances):
            if not isinstance(row, dict):
                raise InvalidRequestError(field=f"instances[{index}]", problem="must be an object of input: value")
            _check_names(set(row), schema, f"instances[{index}]")
        return _tensor_columns({t.name: [row[t.name] for row in instances] for t in schema.tensors}, schema,
                               max_rows, "instances", per_row=True)
    kinds = {f.name: f.kind for f in schema.features}
    columns: dict[str, list] = {name: [] for name in schema.feature_names}
    for index, row in enumerate(instances):
        where = f"instances[{index}]"
        if not isinstance(row, dict):
            raise InvalidRequestError(field=where, problem="must be an object of feature: value")
        _check_names(set(row), schema, where)
        for name in schema.feature_names:
            columns[name].append(_check_value(row[name], kinds[name], f"{where}.{name}"))
    return columns


def columns_from_inputs(inputs: Any, schema: DatasetSchema, max_rows: int) -> dict[str, list]:
    """Validate ``inputs`` (an object of feature: list of values) into columns."""
    if not isinstance(inputs, dict):
        raise InvalidRequestError(field="inputs", problem="must be an object of feature: [values]")
    _check_names(set(inputs), schema, "inputs")
    if schema.tensors:
        return _tensor_columns(inputs, schema, max_rows, "inputs", per_row=False)
    lengths = {name: len(values) if isinstance(values, list) else -1 for name, values in inputs.items()}
    for name, length in lengths.items():
        if length < 0:
            raise InvalidRequestError(field=f"inputs.{name}", problem="must be a list of values")
    if len(set(lengths.values())) > 1:
        raise InvalidRequestError(field="inputs", problem=f"columns differ in length: {lengths}")
    rows = next(iter(lengths.values()))
    check_count(rows, max_rows, "inputs")
    kinds = {f.name: f.kind for f in schema.features}
    numeric = [name for name in schema.feature_names if kinds[name] == "numeric"]
    checked = plain_numbers([inputs[name] for name in numeric]) if rows >= FAST_ROWS else None
    fast = dict(zip(numeric, checked)) if checked is not None else {}
    return {name: fast[name] if name in fast else
            [_check_value(v, kinds[name], f"inputs.{name}[{i}]") for i, v in enumerate(inputs[name])]
            for name in schema.feature_names}


#: The Python types numeric values may have (bool is refused, although an int).
NUMBER_TYPES = frozenset({float, int})
#: Rows from which numeric columns are checked with numpy at once (fewer: value by value is faster).
FAST_ROWS = 8


def plain_numbers(columns: list[list]) -> list[list[float]] | None:
    """Equally long columns of plain, finite numbers within float32's range, as floats; None
    when any value is not (the value-by-value check then names it). One numpy pass over every
    column: about a third of the per-value checks' time at 32 rows × 30 features."""
    if not columns or not set(map(type, itertools.chain.from_iterable(columns))) <= NUMBER_TYPES:
        return None
    try:
        array = np.asarray(columns, dtype=np.float64)
    except (OverflowError, ValueError):  # an int beyond float64
        return None
    if not (bool(np.isfinite(array).all()) and float(np.abs(array).max(initial=0.0)) <= MAX_MAGNITUDE):
        return None
    return array.tolist()


def parse_body(body: Any, schema: DatasetSchema, max_rows: int) -> dict[str, list]:
    """Validate a /v1 predict body: ``instances`` (rows) or ``inputs`` (columns), not both."""
    if not isinstance(body, dict):
        raise InvalidRequestError(field="body", problem="must be a JSON object with `instances` or `inputs`")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise InvalidRequestError(field="body", problem="send exactly one of `instances` (rows) or `inputs` (columns)")
    if has_rows:
        return columns_from_instances(body["instances"], schema, max_rows)
    return columns_from_inputs(body["inputs"], schema, max_rows)


def _check_label(label: Any, schema: DatasetSchema, where: str) -> Any:
    if not schema.is_classification:
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not abs(label) <= MAX_MAGNITUDE:
            raise InvalidRequestError(field=where, problem=f"{label!r} is not a finite number (this model is a regression)")
        return float(label)
    if not isinstance(label, str) or label not in schema.classes:
        raise InvalidRequestError(field=where, problem=f"{label!r} is not a class of this model "
                                  f"({', '.join(schema.classes)})")
    return label


def _feedback_item(item: Any, schema: DatasetSchema, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRequestError(field=path, problem="must be an object with `request_id` and `label` (or `labels`)")
    unknown = set(item) - {"request_id", "label", "labels"}
    if unknown:
        raise InvalidRequestError(field=f"{path}.{sorted(unknown)[0]}", problem="unknown field")
    request_id = item.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidRequestError(field=f"{path}.request_id", problem="must be the non-empty request id of an answer")
    if ("label" in item) == ("labels" in item):
        raise InvalidRequestError(field=f"{path}.label", problem="give exactly one of `label` or `labels`")
    labels = [item["label"]] if "label" in item else item["labels"]
    if not isinstance(labels, list) or not labels:
        raise InvalidRequestError(field=f"{path}.labels", problem="must be a non-empty list, one label per row")
    labels = [_check_label(label, schema, f"{path}.label" if "label" in item else f"{path}.labels[{i}]")
              for i, label in enumerate(labels)]
    return {"request_id": request_id, "labels": labels}


def parse_feedback(body: Any, schema: DatasetSchema, max_items: int) -> list[dict[str, Any]]:
    """Feedback bodies → ``[{"request_id", "labels"}]``: one item, a list, or ``{"feedback": [...]}``.
    Labels are classes of a classifier, or finite numbers for a regression.

    Raises:
        InvalidRequestError: naming the item and field (413 for too many items).
    """
    if isinstance(body, dict) and "feedback" in body:
        if set(body) != {"feedback"}:
            raise InvalidRequestError(field=sorted(set(body) - {"feedback"})[0], problem="unknown field")
        body, prefix = body["feedback"], "feedback"
        if not isinstance(body, list):
            raise InvalidRequestError(field="feedback", problem="must be a list of {request_id, label}")
    elif isinstance(body, list):
        prefix = ""
    else:
        return [_feedback_item(body, schema, "body")]
    if not body:
        raise InvalidRequestError(field=prefix or "body", problem="is empty")
    if len(body) > max_items:
        raise LimitExceededError(field=prefix or "body", size=len(body), limit=max_items, unit="items")
    return [_feedback_item(item, schema, f"{prefix}[{i}]") for i, item in enumerate(body)]
