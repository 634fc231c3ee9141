"""Flavors: torch-tabular for classification and regression, scikit-learn stored with skops
(trusted types only), pickles only when opted in and verified, and user flavors by import path."""

import json

import numpy as np
import pyarrow as pa
import pytest

from raymlops.config import PrepareConfig
from raymlops.data import prepare_dataset
from raymlops.data.schema import FeatureSpec
from raymlops.data.tables import read_table, split_uri
from raymlops.errors import ArtifactIntegrityError, ConfigError, DataError
from raymlops.models import load_model
from raymlops.models.flavors import flavor_class
from raymlops.models.sklearn import SklearnModel, save_sklearn, trusted_types
from raymlops.registry.artifacts import build_manifest
from raymlops.train.imports import signature_for


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    directory = prepare_dataset(PrepareConfig(dataset="diabetes", output=str(tmp_path_factory.mktemp("d") / "diabetes"))).directory
    return read_table(split_uri(directory, "train")), read_table(split_uri(directory, "test"))


def columns(table):
    return {name: table.column(name).to_numpy() for name in table.column_names if name != "target"}


def test_a_scikit_learn_regressor_round_trips_through_skops(diabetes, tmp_path):
    from sklearn.ensemble import HistGradientBoostingRegressor

    train, test = diabetes
    estimator = HistGradientBoostingRegressor(max_iter=20).fit(train.drop(["target"]).to_pandas(), train["target"])
    signature = signature_for("diabetes", estimator, train, "target", None)
    assert signature.task == "regression" and signature.classes == ()
    save_sklearn(tmp_path, estimator, signature)
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["format"] == "skops" and "TreePredictor" in spec["trusted"][0]
    loaded = load_model(tmp_path)
    answer = loaded.predict(columns(test))
    np.testing.assert_allclose(answer.predicted, estimator.predict(test.drop(["target"]).to_pandas()))
    assert list(answer.outputs) == ["value"]


def test_untrusted_types_must_be_named():
    assert trusted_types(["sklearn.x.Y"], []) == ["sklearn.x.Y"]
    with pytest.raises(ConfigError, match="evil.Code.*--trust"):
        trusted_types(["sklearn.x.Y", "evil.Code"], [])
    assert trusted_types(["evil.Code"], ["evil.Code"]) == ["evil.Code"]


def test_a_classifier_pipeline_with_string_classes(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(0).normal(size=(60, 2))
    labels = np.where(x[:, 0] > 0, "pos", "neg")
    table = pa.table({"a": x[:, 0], "b": x[:, 1], "y": labels})
    estimator = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, labels)
    signature = signature_for("toy", estimator, table, "y", None)
    save_sklearn(tmp_path, estimator, signature)
    answer = load_model(tmp_path).predict({"a": [2.0, -2.0], "b": [0.0, 0.0]})
    assert answer.predicted == ["pos", "neg"] and answer.rows()[0]["probabilities"]["pos"] > 0.5
    with pytest.raises(ConfigError, match="classes"):
        SklearnModel(estimator, signature.model_copy(update={"classes": ("a", "b")}))


def test_a_frame_fitted_numeric_pipeline_answers_arrays_through_a_twin_with_the_same_answers(diabetes, tmp_path):
    """Fitted on a DataFrame, the pipeline checks column names; loaded for serving, the flavor
    answers arrays through a name-free twin (same answers, no warning) and keeps the original."""
    import warnings

    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, test = diabetes
    frame = train.drop(["target"]).to_pandas()
    estimator = make_pipeline(StandardScaler(), Ridge()).fit(frame, train["target"])
    signature = signature_for("diabetes", estimator, train, "target", None)
    save_sklearn(tmp_path, estimator, signature)
    loaded = load_model(tmp_path)
    assert loaded.array_estimator is not None
    assert list(loaded.estimator.feature_names_in_) == list(frame.columns)  # the stored estimator keeps its names
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = loaded.predict(columns(test))
    assert caught == []
    # the same answers (to the last bits a memory layout changes in BLAS's sums)
    np.testing.assert_allclose(answer.predicted, estimator.predict(test.drop(["target"]).to_pandas()), rtol=1e-12)
    loaded.save(tmp_path / "again")
    assert list(load_model(tmp_path / "again").estimator.feature_names_in_) == list(frame.columns)


def test_no_twin_where_a_step_selects_columns_by_name_or_a_feature_is_categorical(tmp_path):
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from raymlops.models.sklearn_arrays import array_twin

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80)})
    labels = np.where(frame["a"] > 0, "pos", "neg")
    by_name = make_pipeline(ColumnTransformer([("scaled", StandardScaler(), ["b", "a"])]), LogisticRegression())
    by_name.fit(frame, labels)
    assert array_twin(by_name, ["a", "b"], "predict_proba") is None, "selecting by name needs a frame"
    assert array_twin(by_name, ["b", "a"], "predict_proba") is None, "the names must be the fitted ones, in order"
    from raymlops.models.sklearn_arrays import same

    assert same([1.0, np.nan], [1.0 + 1e-15, np.nan]) and not same([1.0], [1.001]) and not same(["x"], ["y"])
    signature = signature_for("toy", by_name, pa.Table.from_pandas(frame.assign(y=labels)), "y", None)
    save_sklearn(tmp_path / "named", by_name, signature)
    answer = load_model(tmp_path / "named").predict({"a": [2.0, -2.0], "b": [0.0, 0.0]})
    assert answer.predicted == ["pos", "neg"]  # the frame path still answers

    mixed = frame.assign(c=np.where(rng.random(80) > 0.5, "x", "y"))
    encoded = make_pipeline(ColumnTransformer([("c", OneHotEncoder(), ["c"])], remainder="passthrough"),
                            LogisticRegression()).fit(mixed, labels)
    signature = signature_for("toy", encoded, pa.Table.from_pandas(mixed.assign(y=labels)), "y", None)
    save_sklearn(tmp_path / "mixed", encoded, signature)
    assert load_model(tmp_path / "mixed").array_estimator is None


class Unstorable:
    """An estimator of a type skops does not trust (nobody named it)."""

    def __init__(self):
        self.scale = 2.0

    def fit(self, x, y):
        return self

    def predict(self, x):
        return self.scale * np.asarray(x, dtype=float)[:, 0]


def test_pickles_only_when_opted_in_and_checked_against_the_manifest(diabetes, tmp_path):
    train, _ = diabetes
    signature = signature_for("diabetes", Unstorable(), train, "target", None)
    assert signature.task == "regression"  # a float label, and no scikit-learn type to ask
    with pytest.raises(ConfigError, match="Unstorable; name each you trust"):
        save_sklearn(tmp_path / "no", Unstorable(), signature)
    save_sklearn(tmp_path / "yes", Unstorable(), signature, allow_pickle=True)
    with pytest.raises(ArtifactIntegrityError, match="without the registry's manifest"):
        load_model(tmp_path / "yes")
    manifest = build_manifest(tmp_path / "yes")
    assert load_model(tmp_path / "yes", manifest).predict({n: [1.0] for n in signature.feature_names}).predicted[0] == 2.0
    (tmp_path / "yes" / "model.pkl").write_bytes((tmp_path / "yes" / "model.pkl").read_bytes() + b"x")
    with pytest.raises(ArtifactIntegrityError, match="sha256 differs"):
        load_model(tmp_path / "yes", manifest)


def test_flavor_names_and_import_paths():
    assert flavor_class("sklearn") is SklearnModel
    with pytest.raises(ConfigError, match="unknown .onnx.; use one of: mlflow, sklearn, torch-module, torch-tabular, torch-tensor"):
        flavor_class("onnx")
    with pytest.raises(ConfigError, match="not a raymlops.Model"):
        flavor_class("json:dumps")
    with pytest.raises(ConfigError, match="cannot import"):
        flavor_class("nowhere.at_all:Model")


def test_mlflow_models_come_in_opted_in(diabetes, tmp_path):
    """An MLflow sklearn model becomes an sklearn-flavor version (skops); any other pyfunc is
    served through MLflow, only opted in and after every file matched the manifest."""
    import mlflow.pyfunc
    import mlflow.sklearn
    from sklearn.linear_model import Ridge

    from raymlops.models.mlflow import MlflowModel
    from raymlops.train.imports import MlflowSource, load_source, wrap

    train, test = diabetes
    x = train.drop(["target"]).to_pandas()
    mlflow.sklearn.save_model(Ridge().fit(x, train["target"]), tmp_path / "sk")
    with pytest.raises(ConfigError, match="--allow-pickle"):
        load_source("mlflow", str(tmp_path / "sk"))
    assert type(load_source("mlflow", str(tmp_path / "sk"), allow_pickle=True)).__name__ == "Ridge"

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input["bmi"].to_numpy() * 2

    mlflow.pyfunc.save_model(tmp_path / "py", python_model=Doubler())
    source = load_source("mlflow", str(tmp_path / "py"), allow_pickle=True)
    assert isinstance(source, MlflowSource)
    signature = signature_for("diabetes", None, train, "target", None)
    wrapped = wrap(source, signature, (), True)
    wrapped.save(tmp_path / "version")
    with pytest.raises(ArtifactIntegrityError, match="manifest"):
        load_model(tmp_path / "version")
    loaded = load_model(tmp_path / "version", build_manifest(tmp_path / "version"))
    assert isinstance(loaded, MlflowModel)
    assert loaded.predict({n: [0.5] for n in signature.feature_names}).predicted == [1.0]


def test_a_torch_network_trained_elsewhere(diabetes, tmp_path):
    """As TorchScript, or as a state dict with its builder; neither is unpickled."""
    import torch
    from safetensors.torch import save_file

    from raymlops.train.imports import load_source, wrap

    train, test = diabetes
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(10, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    torch.jit.save(torch.jit.script(network), str(tmp_path / "net.pt"))
    save_file(network.state_dict(), str(tmp_path / "weights.safetensors"))
    torch.save(network.state_dict(), tmp_path / "weights.pt")
    signature = signature_for("diabetes", None, train, "target", None)
    x = torch.tensor(np.column_stack([test.column(n).to_numpy() for n in signature.feature_names]), dtype=torch.float32)
    expected = network(x)[:, 0].detach().numpy()
    forms = {"script": ("net.pt", None, None), "safetensors": ("weights.safetensors", "mlp", {"hidden": [8]}),
             "torch.save": ("weights.pt", "mlp", {"hidden": [8]})}
    for form, (file, builder, params) in forms.items():
        source = load_source("torch-module", str(tmp_path / file), builder=builder, params=params)
        wrap(source, signature, (), False).save(tmp_path / form)
        loaded = load_model(tmp_path / form)
        np.testing.assert_allclose(loaded.predict(columns(test)).predicted, expected, rtol=1e-5, err_msg=form)
    with pytest.raises(DataError, match="one file"):
        load_source("torch-module", str(tmp_path))
    torch.save({"not": "weights", "code": Unstorable()}, tmp_path / "pickled.pt")
    with pytest.raises(DataError, match="not a state dict"):  # weights_only refuses the object
        wrap(load_source("torch-module", str(tmp_path / "pickled.pt"), builder="mlp"), signature, (), False)
    penguin_like = signature.model_copy(update={"features": (*signature.features, FeatureSpec(
        name="island", kind="categorical", dtype="string", categories=("a",)))})
    with pytest.raises(ConfigError, match="encode island inside it"):
        wrap(load_source("torch-module", str(tmp_path / "net.pt")), penguin_like, (), False)
