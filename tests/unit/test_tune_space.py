import pytest

from raymlops.config import SearchDimension, TrainConfig, TuneConfig, load_config
from raymlops.errors import ConfigError
from raymlops.tune import apply_params, check_space


def test_apply_params_sets_nested_values():
    cfg = apply_params(TrainConfig(), {"train.lr": 0.003, "model.params.hidden": [8, 8]})
    assert cfg.train.lr == 0.003
    assert cfg.model.params["hidden"] == [8, 8]
    assert TrainConfig().train.lr == 0.01  # the base is untouched


def test_unknown_search_key_is_named():
    space = {"train.lrr": SearchDimension(type="uniform", low=0.1, high=0.2)}
    with pytest.raises(ConfigError, match="search_space.train.lrr: unknown key"):
        check_space(space, TrainConfig())


def test_value_outside_the_field_is_refused():
    with pytest.raises(ConfigError, match="search_space.train.epochs"):
        check_space({"train.epochs": SearchDimension(type="randint", low=-5, high=3)}, TrainConfig())


@pytest.mark.parametrize("dimension, message", [
    ({"type": "choice"}, "non-empty `values`"),
    ({"type": "uniform", "low": 1, "high": 1}, "`low` < `high`"),
    ({"type": "loguniform", "low": 0, "high": 1}, "`low` > 0"),
    ({"type": "normal", "low": 0, "high": 1}, "type"),
])
def test_search_dimension_validation(dimension, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, TuneConfig, [f"search_space.x={dimension}"])


def test_shipped_tune_config_space_is_valid():
    cfg = load_config("configs/tune.yaml", TuneConfig)
    check_space(cfg.search_space, cfg.base)
    assert set(cfg.search_space) == {"train.lr", "train.batch_size", "model.params.hidden"}
