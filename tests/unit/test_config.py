import pytest
from typer.testing import CliRunner

from raymlops.cli import app
from raymlops.config import (
    CONFIG_MODELS,
    DataConfig,
    LocalClusterConfig,
    apply_overrides,
    load_config,
    model_for_file,
)
from raymlops.errors import ConfigError


@pytest.fixture
def write_yaml(tmp_path):
    def make(text, name="data.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def test_defaults_load_without_a_file():
    cfg = load_config(None, LocalClusterConfig)
    assert cfg.host == "127.0.0.1" and cfg.dashboard_port == 8265


def test_dotted_overrides_are_typed_and_nested(write_yaml):
    path = write_yaml("prepare:\n  seed: 1\n")
    cfg = load_config(path, DataConfig, ["prepare.seed=7", "synth.shift.features=[1, 2]", "synth.shift.magnitude=0.5"])
    assert cfg.prepare.seed == 7
    assert cfg.synth.shift.features == [1, 2]
    assert cfg.synth.shift.magnitude == 0.5


def test_overrides_do_not_mutate_the_input():
    data = {"prepare": {"seed": 1}}
    apply_overrides(data, ["prepare.seed=2"])
    assert data == {"prepare": {"seed": 1}}


def test_unknown_key_is_an_error_naming_the_path(write_yaml):
    path = write_yaml("prepare:\n  sede: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, DataConfig)
    assert ("prepare.sede", "unknown key") in info.value.problems
    assert str(path) in str(info.value)


def test_typo_in_override_is_an_error():
    with pytest.raises(ConfigError, match="prepare.sede: unknown key"):
        load_config(None, DataConfig, ["prepare.sede=3"])


@pytest.mark.parametrize("override", ["noequals", "=3", "a..b=1"])
def test_malformed_override_is_an_error(override):
    with pytest.raises(ConfigError, match="KEY.PATH=VALUE"):
        load_config(None, DataConfig, [override])


def test_override_into_a_scalar_is_an_error(write_yaml):
    path = write_yaml("prepare:\n  seed: 1\n")
    with pytest.raises(ConfigError, match="prepare.seed: is a value"):
        load_config(path, DataConfig, ["prepare.seed.x=1"])


def test_wrong_type_and_range_are_reported(write_yaml):
    path = write_yaml("gcs_port: seventy\ndashboard_port: 70000\n", name="local.yaml")
    with pytest.raises(ConfigError) as info:
        load_config(path, LocalClusterConfig)
    fields = [field for field, _ in info.value.problems]
    assert fields == ["gcs_port", "dashboard_port"]


def test_split_fractions_must_add_up():
    with pytest.raises(ConfigError, match="must be 1"):
        load_config(None, DataConfig, ["prepare.splits.train=0.9"])


def test_yaml_syntax_error_names_the_line(write_yaml):
    path = write_yaml("prepare:\n  seed: [1\n")
    with pytest.raises(ConfigError, match="line"):
        load_config(path, DataConfig)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml", DataConfig)


def test_top_level_must_be_a_mapping(write_yaml):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write_yaml("- 1\n- 2\n"), DataConfig)


def test_every_field_of_every_model_is_described():
    def walk(model, prefix=""):
        for name, field in model.model_fields.items():
            assert field.description, f"{prefix}{name} of {model.__name__} has no description"
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, f"{prefix}{name}.")

    for model in CONFIG_MODELS.values():
        walk(model)


def test_shipped_configs_validate():
    from pathlib import Path

    for kind, model in CONFIG_MODELS.items():
        path = Path("configs") / f"{kind}.yaml"
        assert path.exists(), f"configs/{kind}.yaml is missing"
        load_config(path, model)


def test_model_for_file_uses_kind_or_name(tmp_path):
    assert model_for_file("configs/data.yaml") is DataConfig
    assert model_for_file(tmp_path / "mine.yaml", kind="local") is LocalClusterConfig
    with pytest.raises(ConfigError, match="--kind"):
        model_for_file(tmp_path / "mine.yaml")


def test_cli_validate_exit_codes(write_yaml):
    runner = CliRunner()
    good = write_yaml("prepare:\n  seed: 3\n")
    assert runner.invoke(app, ["config", "validate", str(good)]).exit_code == 0
    bad = write_yaml("prepare:\n  sede: 3\nsynth:\n  rows: -1\n", name="bad.yaml")
    result = runner.invoke(app, ["config", "validate", str(bad), "--kind", "data"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert f"{bad}: prepare.sede: unknown key" in lines
    assert any(line.startswith(f"{bad}: synth.rows:") for line in lines)


def test_loaded_configs_are_frozen():
    from pydantic import ValidationError

    from raymlops.config import MonitorConfig, ServeConfig

    cfg = load_config(None, ServeConfig, ["model_name=m"])
    with pytest.raises(ValidationError, match="frozen"):
        cfg.model_name = "other"
    with pytest.raises(ValidationError, match="frozen"):
        cfg.traffic.canary_weight = 0.5
    changed = cfg.model_copy(update={"model_name": "other"})
    assert changed.model_name == "other" and cfg.model_name == "m"
    assert MonitorConfig(model_name="m").model_config["frozen"]


def test_plugins_outside_the_trusted_prefixes_are_refused_before_import():
    import pytest as _pytest

    from raymlops import plugins
    from raymlops.errors import ConfigError

    try:
        plugins.trust_only(["my_team"])
        assert plugins.is_trusted("my_team.flavors") and plugins.is_trusted("raymlops.models.flavors")
        assert not plugins.is_trusted("my_teamx") and not plugins.is_trusted("os")
        with _pytest.raises(ConfigError, match="'os' is not among the trusted module prefixes"):
            plugins.load_plugin("os:system", {}, "flavor")
        assert plugins.load_plugin("raymlops.plugins:is_trusted", {}, "flavor") is plugins.is_trusted
    finally:
        plugins.trust_only(None)
    assert plugins.load_plugin("os.path:join", {}, "flavor")
