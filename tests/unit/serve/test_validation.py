import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raymlops.data.schema import DatasetSchema, FeatureSpec
from raymlops.errors import InvalidRequestError, LimitExceededError
from raymlops.serve.v2 import columns_from_v2
from raymlops.serve.validation import parse_body

SCHEMA = DatasetSchema(
    name="p", label="species", classes=("a", "b"),
    features=(FeatureSpec(name="mass", kind="numeric", dtype="double"),
              FeatureSpec(name="island", kind="categorical", dtype="string", categories=("x", "y"))),
)


def test_rows_and_columns_give_the_same_columns():
    rows = parse_body({"instances": [{"mass": 1, "island": "x"}, {"mass": 2.5, "island": "z"}]}, SCHEMA, 10)
    columns = parse_body({"inputs": {"mass": [1, 2.5], "island": ["x", "z"]}}, SCHEMA, 10)
    assert rows == columns == {"mass": [1.0, 2.5], "island": ["x", "z"]}


def test_v2_tensors():
    body = [{"name": "mass", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
            {"name": "island", "shape": [2, 1], "datatype": "BYTES", "data": ["x", "y"]}]
    assert columns_from_v2(body, SCHEMA, 10) == {"mass": [1.0, 2.0], "island": ["x", "y"]}


@pytest.mark.parametrize("body, field, problem", [
    ({"instances": [{"mass": 1}]}, "instances[0]", "missing input(s) island"),
    ({"instances": [{"mass": 1, "island": "x", "beak": 3}]}, "instances[0].beak", "unknown input"),
    ({"instances": [{"mass": "heavy", "island": "x"}]}, "instances[0].mass", "must be a number"),
    ({"instances": [{"mass": True, "island": "x"}]}, "instances[0].mass", "must be a number"),
    ({"instances": [{"mass": math.nan, "island": "x"}]}, "instances[0].mass", "must be finite"),
    ({"instances": [{"mass": math.inf, "island": "x"}]}, "instances[0].mass", "must be finite"),
    ({"instances": [{"mass": 1, "island": 3}]}, "instances[0].island", "must be a string"),
    ({"instances": []}, "instances", "empty batch"),
    ({"instances": [{"mass": 1, "island": "x"}] * 11}, "instances", "more than the limit of 10"),
    ({"instances": {"mass": 1}}, "instances", "must be a list"),
    ({"inputs": {"mass": [1, 2], "island": ["x"]}}, "inputs", "differ in length"),
    ({"inputs": {"mass": 1, "island": ["x"]}}, "inputs.mass", "must be a list"),
    ({"inputs": {"mass": [], "island": []}}, "inputs", "empty batch"),
    ({"instances": [], "inputs": {}}, "body", "exactly one of"),
    ([1, 2], "body", "JSON object"),
])
def test_bad_bodies_name_the_field(body, field, problem):
    with pytest.raises(InvalidRequestError) as info:
        parse_body(body, SCHEMA, 10)
    assert info.value.field == field
    assert problem in info.value.problem


@pytest.mark.parametrize("tensors, field", [
    ([{"name": "mass", "shape": [3], "datatype": "FP64", "data": [1.0]}], "inputs[0].shape"),
    ([{"name": "island", "shape": [1], "datatype": "FP32", "data": [1.0]}], "inputs[0].datatype"),
    ([{"name": "mass", "shape": [1], "datatype": "STRINGY", "data": [1.0]}], "inputs[0].datatype"),
    ([{"shape": [1], "datatype": "FP64", "data": [1.0]}], "inputs[0]"),
])
def test_bad_v2_tensors(tensors, field):
    with pytest.raises(InvalidRequestError) as info:
        columns_from_v2(tensors, SCHEMA, 10)
    assert info.value.field == field



JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(["mass", "island", "x", "instances", "inputs"]), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["instances", "inputs", "other"]), JSON, max_size=2) | JSON)
def test_any_json_body_is_either_valid_or_a_named_request_error(body):
    try:
        columns = parse_body(body, SCHEMA, 10)
    except InvalidRequestError as error:
        assert error.field and error.problem
    else:
        assert set(columns) == {"mass", "island"}
        assert len(columns["mass"]) == len(columns["island"]) >= 1
        assert all(isinstance(v, float) and math.isfinite(v) for v in columns["mass"])


# ------------------------------------------------------------------ feedback

from raymlops.serve.validation import parse_feedback  # noqa: E402

CLASSES = DatasetSchema(name="p", label="species", classes=("Adelie", "Gentoo"),
                        features=(FeatureSpec(name="mass", kind="numeric", dtype="double"),))
REGRESSION = DatasetSchema(name="d", task="regression", label="target",
                           features=(FeatureSpec(name="bmi", kind="numeric", dtype="double"),))


def test_feedback_shapes():
    one = parse_feedback({"request_id": "r1", "label": "Adelie"}, CLASSES, 10)
    assert one == [{"request_id": "r1", "labels": ["Adelie"]}]
    many = parse_feedback({"feedback": [{"request_id": "a", "label": "Gentoo"},
                                        {"request_id": "b", "labels": ["Adelie", "Gentoo"]}]}, CLASSES, 10)
    assert [i["labels"] for i in many] == [["Gentoo"], ["Adelie", "Gentoo"]]
    assert parse_feedback([{"request_id": "a", "label": "Gentoo"}], CLASSES, 10)[0]["request_id"] == "a"


@pytest.mark.parametrize("body, field", [
    ({"request_id": "r", "label": "Emperor"}, "body.label"),
    ({"request_id": "", "label": "Adelie"}, "body.request_id"),
    ({"label": "Adelie"}, "body.request_id"),
    ({"request_id": "r"}, "body.label"),
    ({"request_id": "r", "label": "Adelie", "labels": ["Adelie"]}, "body.label"),
    ({"request_id": "r", "labels": []}, "body.labels"),
    ({"request_id": "r", "labels": ["Adelie", 3]}, "body.labels[1]"),
    ({"feedback": [{"request_id": "a", "label": "Adelie"}, {"request_id": 5, "label": "Adelie"}]},
     "feedback[1].request_id"),
    ({"feedback": []}, "feedback"),
    ({"feedback": {}}, "feedback"),
    ({"feedback": [], "x": 1}, "x"),
    ([], "body"),
    ("text", "body"),
])
def test_bad_feedback_names_the_field(body, field):
    with pytest.raises(InvalidRequestError) as info:
        parse_feedback(body, CLASSES, 10)
    assert info.value.field == field


def test_too_much_feedback_is_a_limit_error():
    with pytest.raises(LimitExceededError) as info:
        parse_feedback([{"request_id": str(i), "label": "Adelie"} for i in range(11)], CLASSES, 10)
    assert info.value.field == "body" and info.value.limit == 10 and "11 items" in str(info.value)


def test_regression_feedback_takes_finite_numbers():
    assert parse_feedback({"request_id": "r", "labels": [151, 75.5]}, REGRESSION, 10)[0]["labels"] == [151.0, 75.5]
    for bad in ["151", float("nan"), True]:
        with pytest.raises(InvalidRequestError, match="finite number") as info:
            parse_feedback({"request_id": "r", "labels": [1.0, bad]}, REGRESSION, 10)
        assert info.value.field == "body.labels[1]"


@pytest.mark.parametrize("value", [1e308, -3.5e38, 10 ** 400])
def test_numbers_beyond_float32_are_refused_by_name(value):
    from raymlops.serve.validation import _check_value

    with pytest.raises(InvalidRequestError, match="out of range") as caught:
        _check_value(value, "numeric", "instances[0].x")
    assert caught.value.field == "instances[0].x"


@pytest.mark.parametrize("bad, problem", [(True, "must be a number"), ("1.5", "must be a number"),
                                          (float("nan"), "finite"), (float("inf"), "finite"), (1e39, "out of range"),
                                          (10 ** 400, "out of range"), (None, "must be a number")])
def test_long_numeric_columns_are_checked_at_once_and_a_bad_value_is_still_named(bad, problem):
    """From 8 rows the numeric columns are checked with numpy in one pass; a value it does not
    take sends the request through the value-by-value check, which names it."""
    from raymlops.serve.validation import FAST_ROWS, plain_numbers

    rows = FAST_ROWS + 4
    good = {"mass": [float(i) + 0.5 for i in range(rows)], "island": ["x"] * rows}
    assert parse_body({"inputs": good}, SCHEMA, 100) == good
    assert parse_body({"inputs": {**good, "mass": list(range(rows))}}, SCHEMA, 100)["mass"] == [float(i) for i in range(rows)]
    column = [1.0] * rows
    column[7] = bad
    assert plain_numbers([column]) is None
    with pytest.raises(InvalidRequestError, match=problem) as caught:
        parse_body({"inputs": {**good, "mass": column}}, SCHEMA, 100)
    assert caught.value.field == "inputs.mass[7]"
