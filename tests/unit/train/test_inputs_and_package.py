import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from raymlops.config import PrepareConfig, TrainConfig, load_config
from raymlops.data import prepare_dataset
from raymlops.errors import ConfigError, DataError
from raymlops.models import build_model, load_model, resolve_builder
from raymlops.models.torch_tabular import ModelSpec, TorchTabularModel
from raymlops.train.package import evaluate, write_artifact
from raymlops.train.trainer import prepare_inputs, preprocess_fn


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    return prepare_dataset(PrepareConfig(output=str(tmp_path_factory.mktemp("data") / "penguins"))).directory


def config(path, *overrides):
    return load_config(None, TrainConfig, [f"data.path={path}", *overrides])


def test_inputs_are_checked_and_preprocessing_fit_on_train_only(penguins):
    inputs = prepare_inputs(config(penguins))
    assert inputs.train_table.num_rows == 233
    mean = float(np.mean(inputs.train_table.column("body_mass_g").to_numpy()))
    index = inputs.preprocessor.numeric.index("body_mass_g")
    assert inputs.preprocessor.means[index] == pytest.approx(mean)


def test_missing_data_fails_with_one_line(tmp_path):
    with pytest.raises(DataError, match="no schema.json here"):
        prepare_inputs(config(tmp_path / "nothing"))


def test_missing_label_column_is_named(penguins, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(penguins, copy)
    table = pq.read_table(copy / "valid.parquet").drop(["species"])
    pq.write_table(table, copy / "valid.parquet")
    with pytest.raises(DataError, match="valid.parquet: missing column\\(s\\) species"):
        prepare_inputs(config(copy))


def test_builder_that_does_not_import(penguins):
    with pytest.raises(ConfigError, match="model.builder: cannot import 'nowhere.mod:fn'"):
        prepare_inputs(config(penguins, "model.builder=nowhere.mod:fn"))
    with pytest.raises(ConfigError, match="model.params"):
        prepare_inputs(config(penguins, "model.params={hidden: [4], colour: blue}"))
    with pytest.raises(ConfigError, match="package.module:function"):
        resolve_builder("nocolon")


def test_job_entrypoint_fails_fast_on_bad_input(tmp_path):
    done = subprocess.run([sys.executable, "-m", "raymlops.jobs.train", "--set", f"data.path={tmp_path}/none"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_serving_predictor_equals_the_training_path(penguins, tmp_path):
    """The model loaded from the saved artifact gives the same outputs as the model fed
    by the training-time preprocessing (Ray Data's map function) for the same rows."""
    import torch

    inputs = prepare_inputs(config(penguins))
    torch.manual_seed(0)
    model = build_model("raymlops.models:mlp", {"hidden": [8]}, inputs.preprocessor.output_dim, 3)
    spec = ModelSpec("raymlops.models:mlp", {"hidden": [8]}, inputs.preprocessor.output_dim, 3)
    artifact = write_artifact(tmp_path / "v", TorchTabularModel(model, inputs.preprocessor, inputs.schema, spec),
                              inputs.train_table.slice(0, 5), {"backend": "alibi"})
    test = pq.read_table(inputs.test_uri)
    batch = {name: test.column(name).to_numpy(zero_copy_only=False) for name in test.column_names}
    training_batch = preprocess_fn(inputs.preprocessor, "species")(batch)
    with torch.no_grad():
        expected = torch.softmax(model.eval()(torch.from_numpy(training_batch["x"])), dim=1).numpy()
    served = load_model(artifact).predict(batch)
    np.testing.assert_allclose(served.outputs["probabilities"], expected, rtol=0, atol=1e-6)
    assert served.predicted == [inputs.schema.classes[i] for i in expected.argmax(axis=1)]
    assert evaluate(load_model(artifact), test)["majority_baseline"] == pytest.approx(0.44)


def test_a_torch_regression_answers_in_the_label_units(tmp_path):
    """diabetes: the target is standardized for training and decoded when answering."""
    import torch

    data = prepare_dataset(PrepareConfig(dataset="diabetes", output=str(tmp_path / "diabetes"))).directory
    inputs = prepare_inputs(config(data))
    assert inputs.schema.task == "regression" and inputs.output_dim == 1
    mean = float(np.mean(inputs.train_table.column("target").to_numpy()))
    assert inputs.preprocessor.target_mean == pytest.approx(mean)
    encoded = preprocess_fn(inputs.preprocessor, "target")({"target": np.array([mean]), **{
        n: inputs.train_table.column(n).to_numpy()[:1] for n in inputs.schema.feature_names}})
    assert encoded["y"].dtype == np.float32 and encoded["y"][0] == pytest.approx(0.0, abs=1e-6)
    torch.manual_seed(0)
    network = build_model("mlp", {"hidden": [4]}, inputs.preprocessor.output_dim, 1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()  # outputs 0 = the standardized mean
    spec = ModelSpec("mlp", {"hidden": [4]}, inputs.preprocessor.output_dim, 1)
    artifact = write_artifact(tmp_path / "v", TorchTabularModel(network, inputs.preprocessor, inputs.schema, spec),
                              inputs.train_table.slice(0, 5), {"backend": "alibi"})
    test = pq.read_table(inputs.test_uri)
    metrics = evaluate(load_model(artifact), test)
    assert metrics["rmse"] == pytest.approx(metrics["mean_baseline_rmse"], rel=0.05) and "accuracy" not in metrics
    with pytest.raises(ConfigError, match="gate.metric: accuracy does not fit a regression"):
        prepare_inputs(config(data, "gate.metric=accuracy"))


def test_your_loop_must_import_before_anything_is_submitted(penguins, tmp_path):
    from raymlops.submission.client import code_paths, job_runtime_env
    from raymlops.train.loop import builtin_loop, resolve_loop

    assert resolve_loop(None) is builtin_loop
    with pytest.raises(ConfigError, match="train.loop: cannot import 'team_loops:train'"):
        prepare_inputs(config(penguins, "train.loop=team_loops:train"))
    with pytest.raises(ConfigError, match="train.loop: 'json' is not callable|package.module:function"):
        prepare_inputs(config(penguins, "train.loop=json"))
    module = tmp_path / "team_loops.py"
    module.write_text("def train(config, context):\n    pass\n")
    (staged,) = code_paths([str(module)])  # a module file ships as a package of the same name
    assert staged.endswith("/team_loops") and open(f"{staged}/__init__.py").read() == module.read_text()
    assert code_paths([str(tmp_path)]) == [str(tmp_path)]
    assert job_runtime_env(".", [staged])["py_modules"] == [staged]
    assert "py_modules" not in job_runtime_env(".")
    with pytest.raises(ConfigError, match="code: .*nowhere.py does not exist"):
        code_paths([str(tmp_path / "nowhere.py")])
