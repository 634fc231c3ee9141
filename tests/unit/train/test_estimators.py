"""scikit-learn-API estimators as the model of a training run: built from config (categorical
features one-hot encoded in front), fitted and scored per task; bad config named before any task."""

import pytest

from raymlops.config import PrepareConfig, TrainConfig, load_config
from raymlops.data import prepare_dataset
from raymlops.data.tables import read_table, split_uri
from raymlops.errors import ConfigError
from raymlops.models.sklearn import SklearnModel, build_estimator
from raymlops.train.estimators import fit_and_score
from raymlops.train.trainer import prepare_inputs


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {name: prepare_dataset(PrepareConfig(dataset=name, output=str(root / name))).directory
            for name in ("penguins", "diabetes")}


def inputs_for(path, *overrides):
    return prepare_inputs(load_config(None, TrainConfig, [f"data.path={path}", *overrides]))


def test_a_classifier_with_categorical_features(prepared):
    inputs = inputs_for(prepared["penguins"], "model.estimator=sklearn.ensemble:HistGradientBoostingClassifier",
                        "model.params={max_iter: 30}")
    pipeline, scores = fit_and_score("sklearn.ensemble:HistGradientBoostingClassifier", {"max_iter": 30},
                                     inputs.schema.to_json(), inputs.train_table,
                                     read_table(split_uri(prepared["penguins"], "valid")))
    assert scores["val_accuracy"] > 0.9 and scores["val_loss"] < 0.5
    answer = SklearnModel(pipeline, inputs.schema).predict({"island": ["Atlantis"], "bill_length_mm": [40.0],
                                                           "bill_depth_mm": [18.0], "flipper_length_mm": [190.0],
                                                           "body_mass_g": [3700.0], "sex": ["male"]})
    assert answer.predicted[0] in inputs.schema.classes  # an unseen island is ignored, not an error


def test_a_regressor(prepared):
    inputs = inputs_for(prepared["diabetes"], "model.estimator=sklearn.linear_model:Ridge", "model.params={}")
    _, scores = fit_and_score("sklearn.linear_model:Ridge", {"alpha": 0.1}, inputs.schema.to_json(),
                              inputs.train_table, read_table(split_uri(prepared["diabetes"], "valid")))
    assert 40 < scores["val_rmse"] < 70 and scores["val_loss"] == pytest.approx(scores["val_rmse"] ** 2)


def test_bad_estimators_are_named_before_anything_runs(prepared):
    with pytest.raises(ConfigError, match="model.estimator: cannot import"):
        inputs_for(prepared["penguins"], "model.estimator=sklearn.nowhere:Model", "model.params={}")
    with pytest.raises(ConfigError, match="model.params: sklearn.linear_model:Ridge rejected its parameters"):
        inputs_for(prepared["diabetes"], "model.estimator=sklearn.linear_model:Ridge", "model.params={hidden: [4]}")
    assert inputs_for(prepared["diabetes"], "model.estimator=sklearn.linear_model:Ridge").schema.task == "regression"
    with pytest.raises(ConfigError, match="no fit/predict"):
        build_estimator("collections:OrderedDict", {}, inputs_for(prepared["diabetes"]).schema)
