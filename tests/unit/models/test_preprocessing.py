import numpy as np
import pytest

from raymlops.data.schema import DatasetSchema, FeatureSpec
from raymlops.models.preprocessing import Preprocessor

SCHEMA = DatasetSchema(
    name="t", label="y", classes=("a", "b"),
    features=(FeatureSpec(name="n", kind="numeric", dtype="double"),
              FeatureSpec(name="c", kind="categorical", dtype="string", categories=("red", "blue"))),
)


@pytest.fixture
def fitted():
    return Preprocessor.fit(SCHEMA, {"n": np.array([1.0, 2.0, 3.0, 4.0])})


def test_numeric_is_standardized_with_training_statistics(fitted):
    out = fitted.transform({"n": [1.0, 4.0], "c": ["red", "blue"]})
    assert out.dtype == np.float32 and out.shape == (2, 1 + 3)
    assert out[:, 0] == pytest.approx([(1 - 2.5) / np.std([1, 2, 3, 4]), (4 - 2.5) / np.std([1, 2, 3, 4])], rel=1e-6)


def test_categories_are_one_hot_with_an_unknown_bucket(fitted):
    out = fitted.transform({"n": [0.0, 0.0, 0.0], "c": ["red", "blue", "green"]})
    assert out[:, 1:].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_constant_column_does_not_divide_by_zero():
    pre = Preprocessor.fit(SCHEMA, {"n": np.array([5.0, 5.0])})
    assert np.isfinite(pre.transform({"n": [5.0], "c": ["red"]})).all()


def test_json_round_trip_transforms_identically(fitted):
    again = Preprocessor.from_json(fitted.to_json())
    batch = {"n": [0.5, 9.0], "c": ["blue", "red"]}
    assert again == fitted
    assert np.array_equal(again.transform(batch), fitted.transform(batch))


def test_labels_encode_to_class_indices(fitted):
    assert fitted.encode_labels(["b", "a", "b"]).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="'z' is not one of the classes"):
        fitted.encode_labels(["z"])
