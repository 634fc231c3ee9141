import numpy as np
import pyarrow as pa
import pytest

from raymlops.models.tasks import classification_metrics, majority_baseline
from raymlops.train.gate import decide
from raymlops.train.package import stratified_sample


@pytest.mark.parametrize("candidate, champion_version, champion, margin, higher, passed", [
    (0.90, None, None, 0.05, True, True),      # first version: always
    (0.92, 3, 0.90, 0.01, True, True),         # beats by more than the margin
    (0.905, 3, 0.90, 0.01, True, False),       # better, but not by the margin
    (0.90, 3, 0.90, 0.0, True, True),          # a tie passes a zero margin
    (0.88, 3, 0.90, 0.0, True, False),         # worse
    (0.20, 3, 0.30, 0.05, False, True),        # log loss: lower is better
    (0.28, 3, 0.30, 0.05, False, False),
])
def test_gate_table(candidate, champion_version, champion, margin, higher, passed):
    decision = decide("m", candidate, champion_version, champion, margin, higher_is_better=higher)
    assert decision.passed is passed
    payload = decision.to_payload()
    assert payload["candidate_value"] == candidate and payload["champion_version"] == champion_version
    assert payload["reason"]


def test_classification_metrics():
    labels = np.array([0, 1, 1, 2])
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    metrics = classification_metrics(labels, proba)
    assert metrics["accuracy"] == 0.75
    assert metrics["log_loss"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.3, 0.8])))
    assert 0 < metrics["macro_f1"] < 1
    assert majority_baseline(labels) == 0.5


def test_stratified_sample_keeps_the_mix_and_is_deterministic():
    table = pa.table({"x": list(range(1000)), "y": ["a"] * 800 + ["b"] * 200})
    sample = stratified_sample(table, "y", 100, seed=1)
    assert sample.num_rows == 100
    assert sample.column("y").to_pylist().count("b") == 20
    assert sample.equals(stratified_sample(table, "y", 100, seed=1))
    assert not sample.equals(stratified_sample(table, "y", 100, seed=2))
    assert stratified_sample(table, "y", 5000, seed=1).num_rows == 1000
