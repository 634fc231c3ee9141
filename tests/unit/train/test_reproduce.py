"""Reproducing a version from its lineage: the recipe, the data check, the differences listed."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raymlops.config import TrainConfig
from raymlops.errors import ConfigError, DataError
from raymlops.registry.lineage import collect_lineage, fingerprint
from raymlops.train.reproduce import (
    check_reproduction,
    describe_reproduction,
    differences,
    metric_differences,
    recorded_config,
    verify_data,
    within_tolerance,
)
from raymlops.types import ModelVersion


def version(lineage, metrics=None, number=3):
    return ModelVersion("m", number, 0.0, "file:///a", {}, metrics or {"accuracy": 0.9, "log_loss": 0.3}, lineage)


@pytest.fixture
def data(tmp_path):
    paths = []
    for split in ("train", "valid", "test"):
        path = tmp_path / f"{split}.parquet"
        pq.write_table(pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "a"]}), path)
        paths.append(str(path))
    return paths


def test_the_recipe_is_the_recorded_config_with_todays_places():
    recorded = TrainConfig(model_name="m", train={"seed": 7, "epochs": 3}, registry="old/registry.yaml",
                           storage={"path": "/old/runs"}).model_dump(mode="json")
    today = TrainConfig(registry="configs/registry.yaml", storage={"path": "/new/runs"})
    config = recorded_config(version({"config": recorded, "trigger": {"kind": "manual"}}), today)
    assert (config.model_name, config.train.seed, config.train.epochs) == ("m", 7, 3)
    assert config.registry == "configs/registry.yaml" and config.storage.path == "/new/runs"
    assert config.lineage.trigger == "reproduce" and config.lineage.parent_version == 3


def test_an_imported_version_has_no_recipe():
    with pytest.raises(ConfigError, match="imported, not trained here"):
        recorded_config(version({"config": {}, "trigger": {"kind": "import"}}), TrainConfig())


def test_a_recipe_that_no_longer_validates_is_named():
    with pytest.raises(ConfigError, match="m:3: lineage.config: the recorded config no longer validates"):
        recorded_config(version({"config": {"model_name": "m", "retired_key": 1}}), TrainConfig())


def test_the_data_must_be_the_recorded_bytes(data):
    recorded = [fp.model_dump() for uri in data for fp in fingerprint(uri)]
    verify_data(recorded, data)  # unchanged: passes
    pq.write_table(pa.table({"x": [9.0, 2.0, 3.0], "y": ["a", "b", "a"]}), data[1])
    with pytest.raises(DataError, match=r"valid\.parquet: content changed since the version was trained"):
        verify_data(recorded, data)
    with pytest.raises(DataError, match=r"train\.parquet: recorded in the lineage, but the recorded config does not "
                                        r"read it here"):
        verify_data(recorded, data[1:])


def test_code_and_package_differences_are_listed_not_refused(data, monkeypatch):
    monkeypatch.setenv("RAYMLOPS_CODE_REVISION", "abc123")
    lineage = collect_lineage(TrainConfig(model_name="m").model_dump(mode="json"), data).model_dump(mode="json")
    lineage["packages"] = {**lineage["packages"], "torch": "1.0.0", "gone": "2.0"}
    lineage["code"] = {**lineage["code"], "source_sha256": "0" * 64}
    original = version(lineage)
    found = check_reproduction(original, data)
    assert f"source_sha256: {'0' * 64} → " in found.code_differences[0] and len(found.code_differences) == 1
    assert "gone: 2.0 → None" in found.package_differences
    assert any(d.startswith("torch: 1.0.0 → ") for d in found.package_differences)
    text = describe_reproduction(found, {"accuracy": 0.9, "log_loss": 0.3000001}, 4)
    assert text.startswith("reproduced m:3 as v4: metrics match (tolerance 1e-06)") and "torch: 1.0.0" in text
    extra = found.lineage_extra({"accuracy": 0.8})
    assert extra["of"] == "m:3" and extra["metric_differences"]["accuracy"]["delta"] == pytest.approx(-0.1)


def test_metric_differences_and_tolerance():
    diffs = metric_differences({"a": 1.0, "b": 2.0, "only_old": 1.0, "final_samples_per_s": 900.0},
                               {"a": 1.0, "b": 2.5, "only_new": 0.0, "final_samples_per_s": 1000.0})
    assert set(diffs) == {"a", "b"} and diffs["b"] == {"original": 2.0, "reproduced": 2.5, "delta": 0.5}
    assert not within_tolerance(diffs) and within_tolerance({"a": diffs["a"]})
    assert differences({"x": 1, "y": 2}, {"x": 1, "y": 3, "z": 4}) == ["y: 2 → 3", "z: None → 4"]


@pytest.mark.parametrize("args, message", [
    (["--reproduce", "m:3", "--set", "train.epochs=2"], "--set train.epochs=2: --reproduce re-runs the recorded "
                                                         "config as it was; only registry and storage settings"),
    (["--reproduce", "m"], "--reproduce m: give NAME:VERSION, e.g. penguins:3"),
])
def test_the_cli_refuses_a_changed_recipe_before_submitting(args, message):
    from typer.testing import CliRunner

    from raymlops.cli import app

    result = CliRunner().invoke(app, ["train", *args], env={"RAY_ADDRESS": "http://127.0.0.1:9"})
    assert result.exit_code == 2 and message in result.output, result.output
