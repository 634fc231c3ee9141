"""The model contract: answers as /v1 rows and v2 tensors, split and joined for batching,
task metrics, and the device a torch flavor picks."""

import numpy as np
import pytest

from raymlops.data.schema import DatasetSchema, FeatureSpec
from raymlops.models.contract import Prediction, classes_prediction, values_prediction
from raymlops.models.tasks import DEFAULT_GATE_METRIC, higher_is_better, task_metrics
from raymlops.models.torch_tabular import pick_device

FEATURES = (FeatureSpec(name="x", kind="numeric", dtype="double"),)


def test_a_classifier_answer_as_v1_rows_and_v2_tensors():
    answer = classes_prediction(np.array([[0.9, 0.1], [0.2, 0.8]]), ["cat", "dog"])
    assert answer.predicted == ["cat", "dog"] and answer.confidence.tolist() == pytest.approx([0.9, 0.8])
    assert answer.rows()[1] == {"class": "dog", "probabilities": {"cat": pytest.approx(0.2), "dog": pytest.approx(0.8)}}
    classes, proba = answer.tensors()
    assert classes == {"name": "class", "shape": [2], "datatype": "BYTES", "data": ["cat", "dog"]}
    assert proba["shape"] == [2, 2] and proba["datatype"] == "FP32" and proba["data"] == pytest.approx([0.9, 0.1, 0.2, 0.8])
    assert [spec.metadata() for spec in answer.specs] == [
        {"name": "class", "datatype": "BYTES", "shape": [-1]}, {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]


def test_a_regression_answer_has_values_and_no_probabilities():
    answer = values_prediction(np.array([[151.5], [75.0]]))
    assert answer.rows() == [{"value": 151.5}, {"value": 75.0}] and answer.confidence is None
    assert answer.tensors() == [{"name": "value", "shape": [2], "datatype": "FP64", "data": [151.5, 75.0]}]


def test_answers_split_and_join_for_batching():
    answer = values_prediction(np.arange(6.0))
    parts = answer.split([2, 1, 3])
    assert [p.predicted for p in parts] == [[0.0, 1.0], [2.0], [3.0, 4.0, 5.0]]
    joined = Prediction.concat(parts)
    assert joined.predicted == answer.predicted and joined.specs == answer.specs


def test_schema_tasks_are_consistent():
    with pytest.raises(ValueError, match="at least two classes"):
        DatasetSchema(name="c", label="y", classes=("a",), features=FEATURES)
    with pytest.raises(ValueError, match="no classes"):
        DatasetSchema(name="r", task="regression", label="y", classes=("a", "b"), features=FEATURES)
    assert not DatasetSchema(name="r", task="regression", label="y", features=FEATURES).is_classification


def test_task_metrics():
    classifier = DatasetSchema(name="c", label="y", classes=("a", "b"), features=FEATURES)
    metrics = task_metrics(classifier, ["a", "b", "b"], classes_prediction(np.array([[.9, .1], [.4, .6], [.7, .3]]), ["a", "b"]))
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["majority_baseline"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="'c' is not one of the classes"):
        task_metrics(classifier, ["c", "a", "a"], classes_prediction(np.eye(2)[[0, 0, 0]], ["a", "b"]))
    regression = DatasetSchema(name="r", task="regression", label="y", features=FEATURES)
    metrics = task_metrics(regression, [1.0, 2.0, 3.0, 4.0], values_prediction(np.array([1.0, 2.0, 3.0, 6.0])))
    assert metrics["rmse"] == pytest.approx(1.0) and metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 4 / 5) and metrics["mean_baseline_rmse"] == pytest.approx(np.sqrt(1.25))
    assert DEFAULT_GATE_METRIC == {"classification": "accuracy", "regression": "rmse"}
    assert not higher_is_better("rmse") and not higher_is_better("log_loss") and higher_is_better("r2")


@pytest.mark.parametrize("cuda, visible, device", [
    (False, None, "cpu"), (False, "0", "cpu"), (True, None, "cuda"), (True, "0,1", "cuda"), (True, "", "cpu"),
])
def test_a_torch_model_uses_the_gpu_only_when_one_is_given_to_it(cuda, visible, device):
    assert pick_device(cuda, visible) == device


def test_a_flavor_builds_answers_with_the_public_constructors():
    assert Prediction.from_values([1.5, 2.5]).rows() == [{"value": 1.5}, {"value": 2.5}]
    assert Prediction.from_probabilities([[0.25, 0.75]], ["a", "b"]).predicted == ["b"]
