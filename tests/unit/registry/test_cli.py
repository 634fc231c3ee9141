import json

import pytest
from typer.testing import CliRunner

from raymlops.cli import app
from raymlops.registry import Lineage, Trigger


@pytest.fixture
def invoke(registry_config, tmp_path):
    config = tmp_path / "registry.yaml"
    config.write_text(f"database_url: '{registry_config.database_url}'\nartifact_root: '{registry_config.artifact_root}'\n")

    def run(*args):
        return CliRunner().invoke(app, ["registry", *args, "--config", str(config)])

    return run


@pytest.fixture
def populated(registry, artifact_dir):
    registry.register("iris", artifact_dir(), metrics={"accuracy": 0.9}, lineage=Lineage(seed=1))
    registry.register("iris", artifact_dir(), metrics={"accuracy": 0.95},
                      lineage=Lineage(seed=2, parent_version=1, trigger=Trigger(kind="drift", drift_event_id=3)))
    registry.set_alias("iris", "champion", 1)
    return registry


def test_list_and_show(invoke, populated):
    listing = invoke("list")
    assert listing.exit_code == 0, listing.output
    assert "iris" in listing.output and "champion→v1" in listing.output
    shown = invoke("show", "iris@champion")
    assert shown.exit_code == 0 and "iris:1" in shown.output and "accuracy=0.9" in shown.output
    data = json.loads(invoke("show", "iris:2", "--json").output)
    assert data["version"] == 2 and data["metrics"] == {"accuracy": 0.95}
    assert "trained with: not recorded" in shown.output and data["environment_check"]["status"] == "unrecorded"


def test_show_checks_the_recorded_environment_here(invoke, registry, artifact_dir):
    import platform

    environment = {"python": platform.python_version(), "packages": {"numpy": "0.9.1"}, "runtime_env": {}}
    registry.register("old", artifact_dir(), lineage=Lineage(environment=environment))
    shown = invoke("show", "old:1")
    assert shown.exit_code == 0, shown.output
    assert f"trained with: python {platform.python_version()}, numpy 0.9.1" in shown.output
    assert "environment: mismatch here\n  numpy 0.9.1 (trained) vs 1." in shown.output
    data = json.loads(invoke("show", "old:1", "--json").output)
    assert data["environment_check"]["mismatches"][0]["package"] == "numpy"


def test_alias_set_with_compare_and_set(invoke, populated):
    assert invoke("alias", "set", "iris", "champion", "2", "--expected", "1").exit_code == 0
    stale = invoke("alias", "set", "iris", "champion", "1", "--expected", "1")
    assert stale.exit_code == 2 and "is at version 2, not 1" in stale.output
    assert populated.resolve("iris", "champion") == 2
    assert invoke("alias", "delete", "iris", "champion").exit_code == 0
    assert populated.aliases("iris") == {}


def test_lineage_shows_the_chain_and_trigger(invoke, populated):
    result = invoke("lineage", "iris:2")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith("iris:2") and "trigger drift (event 3)" in lines[0]
    assert any(line.strip().startswith("iris:1") for line in lines)
    chain = json.loads(invoke("lineage", "iris:2", "--json").output)
    assert [link["version"] for link in chain] == [2, 1]


def test_events_filters(invoke, populated):
    data = json.loads(invoke("events", "iris", "--kind", "alias_moved", "--json").output)
    assert [e["kind"] for e in data] == ["alias_moved"]
    assert len(json.loads(invoke("events", "--json").output)) == 3


@pytest.mark.parametrize("args, message", [
    (("show", "Iris"), "invalid model name"),
    (("show", "ghost:1"), "model not found: ghost"),
    (("alias", "set", "iris", "champion", "1", "--expected", "x"), "--expected must be"),
])
def test_bad_input_is_one_line_exit_2(invoke, populated, args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
