
"""The HTTP edge: the one error → status table, error bodies, body limits before reading, and the
shadow comparison."""

import asyncio
import json

import numpy as np
import pytest
from starlette.requests import Request

from raymlops import errors
from raymlops.models.contract import classes_prediction, values_prediction
from raymlops.serve.edge import ERROR_STATUS, read_body, response_for, status_for
from raymlops.serve.shadow import compare


@pytest.mark.parametrize("error, status, field", [
    (errors.AuthenticationError(scheme="Bearer", problem="no token"), 401, "authorization"),
    (errors.PermissionDeniedError(action="change traffic", problem="wrong token"), 403, "authorization"),
    (errors.NotFoundError(what="model", name="x"), 404, "model"),
    (errors.RolloutError(model="m", problem="already running"), 409, "rollout"),
    (errors.AliasConflictError(model="m", alias="champion", expected=1, actual=2), 409, "request"),
    (errors.LimitExceededError(field="instances", size=51, limit=50, unit="rows"), 413, "instances"),
    (errors.InvalidRequestError(field="instances[0].x", problem="must be a number"), 422, "instances[0].x"),
    (errors.ClusterError(problem="down", fix="start it"), 503, "cluster"),
    (errors.ConfigError(file="<x>", problems=[("a", "b")]), 400, "request"),
])
def test_every_error_maps_to_one_status_and_names_its_field(error, status, field):
    response = response_for(error, "rid")
    body = json.loads(response.body)
    assert response.status_code == status == status_for(error)
    assert body["error"]["field"] == field and body["request_id"] == "rid"
    assert ("www-authenticate" in response.headers) == (status == 401)


def test_a_limit_error_says_how_large_and_the_limit():
    body = json.loads(response_for(errors.LimitExceededError(field="body", size=2048, limit=1024, unit="bytes"),
                                   "r").body)
    assert body["error"]["problem"] == "2048 bytes is more than the limit of 1024"


def test_subclasses_come_before_their_bases_in_the_table():
    kinds = [kind for kind, _ in ERROR_STATUS]
    for i, kind in enumerate(kinds):
        assert not any(issubclass(kind, earlier) and kind is not earlier for earlier in kinds[:i]), kind


def request(chunks, headers=()):
    async def receive():
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(k.encode(), v.encode()) for k, v in headers]}
    return Request(scope, receive)


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    unread = [b"x" * 10]
    with pytest.raises(errors.LimitExceededError, match="5000 bytes"):
        asyncio.run(read_body(request(unread, [("content-length", "5000")]), 100))
    assert unread == [b"x" * 10], "the body was not read"


def test_a_stream_that_runs_over_the_limit_is_cut_off():
    with pytest.raises(errors.LimitExceededError):
        asyncio.run(read_body(request([b"[" + b"1," * 40, b"1" * 100 + b"]"]), 100))


def test_bodies_within_the_limit_are_parsed_and_bad_json_is_named():
    assert asyncio.run(read_body(request([b'{"a":', b" 1}"]), 100)) == {"a": 1}
    assert asyncio.run(read_body(request([b""]), 100, allow_empty=True)) is None
    with pytest.raises(errors.InvalidRequestError, match="not valid JSON"):
        asyncio.run(read_body(request([b"{nope"]), 100))


def _classes(*names):
    classes = ["a", "b", "c"]
    return classes_prediction(np.eye(3)[[classes.index(n) for n in names]].reshape(-1, 3), classes)


def test_shadow_answers_are_compared_row_by_row():
    comparison = compare(_classes("a", "b", "c"), _classes("a", "c", "c"))
    assert (comparison.rows, comparison.disagreements) == (3, 1) and comparison.agreement == pytest.approx(2 / 3)
    assert compare(_classes(), _classes()).agreement == 1.0
    with pytest.raises(ValueError, match="2 rows for 1"):
        compare(_classes("a"), _classes("a", "b"))


def test_shadow_values_agree_within_one_percent():
    comparison = compare(values_prediction(np.array([100.0, 50.0, 1.0])), values_prediction(np.array([100.5, 60.0, 1.0])))
    assert (comparison.rows, comparison.disagreements) == (3, 1)


def test_deeply_nested_json_is_a_4xx_not_a_crash():
    from raymlops.serve.edge import MAX_JSON_DEPTH, parse_json

    for depth in (MAX_JSON_DEPTH + 1, 5000, 200_000):
        with pytest.raises(errors.InvalidRequestError, match="nested deeper"):
            parse_json(b"[" * depth + b"]" * depth)
    nested = b'{"inputs": [{"data": ' + b"[" * 5 + b"1" + b"]" * 5 + b"}]}"
    assert parse_json(nested)["inputs"][0]["data"] == [[[[[1]]]]]
    # brackets inside strings do not count against a body
    assert parse_json(json.dumps({"s": "[" * 100}).encode()) == {"s": "[" * 100}


def test_closing_brackets_inside_strings_do_not_hide_a_deep_body():
    from raymlops.serve.edge import MAX_JSON_DEPTH, parse_json

    deep = [1]
    for _ in range(MAX_JSON_DEPTH + 5):
        deep = [deep]
    for hiding in ("]" * 200, 'quote \\" and ]]]]', "\\" + "}" * 200):  # plain, an escaped quote, a backslash
        raw = json.dumps({"s": hiding, "x": deep}).encode()
        with pytest.raises(errors.InvalidRequestError, match="nested deeper"):
            parse_json(raw)
    shallow = {"s": "]" * 200, "t": 'a \\" b', "x": [[[[1]]]], "y": [[2]] * 40}
    assert parse_json(json.dumps(shallow).encode()) == shallow


def test_a_texts_depth_counts_brackets_outside_its_strings():
    from raymlops.serve.edge import text_depth

    assert text_depth(b'{"a": "]]]", "b": [[1], {"c": "{{["}]}') == 3
    assert text_depth(b"[]") == 1 and text_depth(b"7") == 0 and text_depth(b"") == 0


def test_v2_errors_have_the_protocol_shape_and_every_error_names_the_issued_id():
    error = errors.InvalidRequestError(field="inputs[0].shape", problem="must be [1]")
    body = json.loads(response_for(error, "rid1", v2=True).body)
    assert body == {"error": "inputs[0].shape: must be [1]"}
    response = response_for(error, "rid1")
    assert json.loads(response.body)["error"]["field"] == "inputs[0].shape"
    assert response.headers["x-raymlops-request-id"] == "rid1"
    assert status_for(errors.ModelOutputError(version=1, problem="NaN")) == 500
    assert status_for(errors.ConflictError(what="feedback", problem="again")) == 409


def test_non_finite_model_outputs_are_found():
    assert values_prediction(np.array([1.0, 2.0])).non_finite() is None
    assert values_prediction(np.array([1.0, np.nan])).non_finite() == "value row 1"
    probabilities = np.array([[0.5, 0.5], [np.inf, 0.0]])
    assert classes_prediction(probabilities, ["a", "b"]).non_finite() == "probabilities row 1"


def test_a_model_answering_nan_is_a_counted_and_recorded_500_never_an_answer():
    from raymlops.serve.predictions import Predictions
    from raymlops.serve.split import Route

    class Backend:
        async def predict(self, version, columns, background=False):
            return values_prediction(np.array([1.0, np.nan]))

    class Stream:
        sent_rows, lost_rows, rows = 0, 0, []

        def add(self, meta, columns, predicted, confidence=None):
            self.rows.append((meta["status"], predicted))

    class Metrics:
        def records(self, sent, lost):
            pass

    from raymlops.serve.edge import Outcome

    stream = Stream()
    predictions = Predictions("m", Backend(), stream, Metrics(), 4)
    outcome = Outcome()
    with pytest.raises(errors.ModelOutputError, match="not finite.*value row 1"):
        asyncio.run(predictions.answer("rid", outcome, Route("stable", 3), {"x": [1.0, 2.0]}))
    assert not outcome.recorded and stream.rows == []  # the edge records it with its 500
    assert status_for(errors.ModelOutputError(version=3, problem="x")) == 500
