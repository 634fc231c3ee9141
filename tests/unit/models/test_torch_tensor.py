"""The torch-tensor flavor: digit images through a small CNN, its embedding watched for drift,
tensor requests validated for /v1 and v2, and the multivariate test on the embedding."""

import numpy as np
import pytest

from raymlops.config import PrepareConfig
from raymlops.data import prepare_dataset
from raymlops.data.schema import read_schema
from raymlops.data.tables import read_table, split_uri
from raymlops.errors import InvalidRequestError, LimitExceededError
from raymlops.models import build_model, load_model
from raymlops.models.torch_tabular import ModelSpec
from raymlops.models.torch_tensor import TensorPreprocessor, TorchTensorModel
from raymlops.serve.v2 import columns_from_v2, metadata
from raymlops.serve.validation import parse_body
from raymlops.train.package import reference_sample, write_artifact


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    directory = prepare_dataset(PrepareConfig(dataset="digits", output=str(tmp_path_factory.mktemp("d") / "digits"))).directory
    return read_schema(directory), read_table(split_uri(directory, "train"))


@pytest.fixture(scope="module")
def model(digits):
    import torch

    schema, train = digits
    preprocessor = TensorPreprocessor.fit(schema, {"image": train.column("image").to_numpy(zero_copy_only=False)})
    torch.manual_seed(0)
    params = {"input_shape": [1, 8, 8], "channels": 4, "embedding": 6}
    spec = ModelSpec("small_cnn", params, preprocessor.output_dim, 10, "torch-tensor")
    return TorchTensorModel(build_model("small_cnn", params, 64, 10), preprocessor, schema, spec)


def test_digits_are_image_tensors(digits):
    schema, train = digits
    assert schema.input_names == ["image"] and schema.tensors[0].shape == (1, 8, 8) and not schema.features
    assert len(train.column("image")[0]) == 64 and schema.classes == tuple("0123456789")


def test_the_embedding_is_watched_and_recorded(model, digits, tmp_path):
    schema, train = digits
    assert [f.name for f in model.signature.watched] == [f"emb_{i}" for i in range(6)]
    answer = model.predict({"image": train.column("image").to_numpy(zero_copy_only=False)[:5]})
    assert len(answer) == 5 and set(answer.monitored) == {f"emb_{i}" for i in range(6)}
    reference = reference_sample(train, model, 50, seed=0)
    assert reference.column_names[:6] == [f"emb_{i}" for i in range(6)] and "__prediction__" in reference.column_names
    loaded = load_model(write_artifact(tmp_path / "v", model, reference, {"backend": "alibi"}))
    again = loaded.predict({"image": train.column("image").to_numpy(zero_copy_only=False)[:5]})
    np.testing.assert_allclose(again.outputs["probabilities"], answer.outputs["probabilities"], atol=1e-6)
    assert loaded.signature.watched == model.signature.watched
    assert loaded.predict(loaded.probe()).predicted[0] in schema.classes


def test_tensor_requests_for_v1_and_v2(digits):
    schema, _ = digits
    image = np.arange(64, dtype=float).reshape(1, 8, 8)
    rows = parse_body({"instances": [{"image": image.tolist()}, {"image": image.reshape(-1).tolist()}]}, schema, 10)
    assert rows["image"].shape == (2, 1, 8, 8)
    columns = parse_body({"inputs": {"image": [image.tolist()] * 3}}, schema, 10)
    assert columns["image"].shape == (3, 1, 8, 8)
    tensors = columns_from_v2([{"name": "image", "shape": [2, 1, 8, 8], "datatype": "FP32",
                                "data": list(range(128))}], schema, 10)
    assert tensors["image"].shape == (2, 1, 8, 8) and tensors["image"][1, 0, 0, 0] == 64
    assert metadata("digits", [1], schema, ())["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]


@pytest.mark.parametrize("inputs, field, problem", [
    ([{"name": "image", "shape": [1, 8, 8], "datatype": "FP32", "data": [0] * 64}], "inputs[0].shape", "rows, 1, 8, 8"),
    ([{"name": "image", "shape": [1, 1, 8, 8], "datatype": "BYTES", "data": [0] * 64}], "inputs[0].datatype", "numeric"),
    ([{"name": "image", "shape": [2, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}], "inputs[0].data", "2 row(s)"),
    ([{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [float("nan")] * 64}], "inputs[0].data",
     "finite"),
    ([{"name": "picture", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0] * 64}], "inputs[0].name", "image"),
    ([], "inputs", "missing input(s) image"),
])
def test_bad_tensors_name_the_field(digits, inputs, field, problem):
    schema, _ = digits
    with pytest.raises(InvalidRequestError) as info:
        columns_from_v2(inputs, schema, 10)
    assert info.value.field == field and problem in str(info.value)


def test_bad_v1_tensors_name_the_row_and_too_many_rows_are_a_limit(digits):
    schema, _ = digits
    with pytest.raises(InvalidRequestError) as info:
        parse_body({"instances": [{"image": [0.0] * 64}, {"image": [0.0] * 63}]}, schema, 10)
    assert info.value.field == "instances[1].image"
    with pytest.raises(InvalidRequestError) as info:
        parse_body({"instances": [{"image": "abc"}]}, schema, 10)
    assert info.value.field == "instances[0].image"
    with pytest.raises(LimitExceededError):
        columns_from_v2([{"name": "image", "shape": [11, 1, 8, 8], "datatype": "FP32", "data": [0] * 704}], schema, 10)


def test_the_multivariate_test_runs_on_the_embedding_with_mmd_and_lsdd():
    from raymlops.monitor.detectors import MMDTest, TabularReference

    rng = np.random.default_rng(0)
    names = [f"emb_{i}" for i in range(4)]
    reference = TabularReference.build({n: rng.normal(size=300) for n in names}, names, [])
    for method in ("mmd", "lsdd"):
        test = MMDTest(reference, 200, 0.05, 50, method=method)
        calm = test.test({n: rng.normal(size=100) for n in names})
        shifted = test.test({n: rng.normal(loc=1.0, size=100) for n in names})
        assert not calm["drift"] and shifted["drift"] and shifted["p_value"] < 0.05, (method, calm, shifted)


def test_a_tensor_regression_answers_in_the_label_units(digits):
    import torch

    schema, train = digits
    regression = schema.model_copy(update={"task": "regression", "classes": ()})
    values = {"image": train.column("image").to_numpy(zero_copy_only=False),
              "target": np.asarray([float(v) for v in train.column("target").to_pylist()])}
    preprocessor = TensorPreprocessor.fit(regression, values)
    assert preprocessor.target_mean == pytest.approx(values["target"].mean())
    torch.manual_seed(0)
    network = build_model("small_cnn", {"input_shape": [1, 8, 8], "embedding": 4}, 64, 1)
    with torch.no_grad():
        for parameter in network.classifier.parameters():
            parameter.zero_()  # outputs 0 = the standardized mean
    model = TorchTensorModel(network, preprocessor, regression, ModelSpec("small_cnn", {}, 64, 1, "torch-tensor"))
    answer = model.predict({"image": values["image"][:3]})
    assert answer.predicted == pytest.approx([values["target"].mean()] * 3) and list(answer.outputs) == ["value"]
    assert len(answer.monitored) == 4
