"""Batch scoring's pure parts, route prefixes, and secrets kept out of Serve's app config."""

import numpy as np
import pytest

from raymlops.config import ServeConfig, load_config
from raymlops.errors import ConfigError
from raymlops.models.contract import Prediction
from raymlops.serve.batch import file_format, output_columns, scoring_ref
from raymlops.serve.deploy import check_route_prefix, model_base_url, registry_settings, served_model


def test_scoring_ref_defaults_to_the_champion():
    assert scoring_ref("m") == "m@champion"
    assert scoring_ref("m:3") == "m:3" and scoring_ref("m@candidate") == "m@candidate"


def test_file_format():
    assert file_format("s3://b/in.csv", None) == "csv" and file_format("/data/dir", None) == "parquet"
    with pytest.raises(ConfigError, match="--format"):
        file_format("x", "json")


def test_output_columns_keep_labels_and_avoid_clashes():
    prediction = Prediction.from_probabilities(np.array([[0.9, 0.1], [0.2, 0.8]]), ["no", "yes"])
    columns = output_columns(prediction, {"class", "x"})
    assert set(columns) == {"predicted_class", "probabilities"}
    assert columns["predicted_class"].to_pylist() == ["no", "yes"]
    assert columns["probabilities"].to_pylist()[1] == pytest.approx({"no": 0.2, "yes": 0.8})
    values = output_columns(Prediction.from_values(np.array([1.5, 2.5])), set())
    assert values["value"].to_pylist() == [1.5, 2.5]


def test_route_prefix_defaults_to_the_application():
    assert load_config(None, ServeConfig, ["model_name=fraud"]).prefix == "/fraud"
    assert load_config(None, ServeConfig, ["model_name=fraud", "app_name=f2"]).prefix == "/f2"
    assert load_config(None, ServeConfig, ["route_prefix=/"]).prefix == "/"
    with pytest.raises(ConfigError, match="route_prefix"):
        load_config(None, ServeConfig, ["route_prefix=no-slash"])


STATE = {"applications": {
    "penguins": {"route_prefix": "/", "deployed_app_config": {"args": {"model_name": "penguins"}}},
    "other": {"route_prefix": "/other", "deployed_app_config": {"import_path": "x:y"}}}}


def test_a_taken_route_is_refused_before_anything_starts():
    cfg = load_config(None, ServeConfig, ["model_name=second", "route_prefix=/"])
    with pytest.raises(ConfigError, match=r"route_prefix: / is already the route of application 'penguins'"):
        check_route_prefix(cfg, STATE)
    check_route_prefix(load_config(None, ServeConfig, ["model_name=second"]), STATE)  # /second is free
    check_route_prefix(load_config(None, ServeConfig, ["model_name=penguins", "route_prefix=/"]), STATE)  # itself
    assert served_model(STATE, "penguins") == "penguins" and served_model(STATE, "other") is None


def test_model_url_follows_the_serving_application(monkeypatch):
    from raymlops.cluster import ClusterAddresses
    from raymlops.serve import deploy

    addresses = ClusterAddresses(dashboard="http://h:8265", serve_http="http://h:8000")
    monkeypatch.setattr(deploy, "serve_state", lambda _addresses: STATE)
    assert model_base_url("penguins", addresses) == "http://h:8000"
    assert model_base_url("fraud", addresses) == "http://h:8000/fraud"
    assert model_base_url("penguins", addresses, route_prefix="/x/") == "http://h:8000/x"


def test_database_password_never_lands_in_the_app_config(home, monkeypatch, tmp_path):
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text("database_url: postgresql+psycopg://u:hunter2@db/x\n")
    cfg = load_config(None, ServeConfig, [f"registry={registry_file}"])
    with pytest.raises(ConfigError, match="database_url: holds a password in clear"):
        registry_settings(cfg)
    registry_file.write_text("database_url: ${TEAM_DB_URL}\n")
    monkeypatch.setenv("TEAM_DB_URL", "postgresql+psycopg://u:hunter2@db/x")
    assert registry_settings(cfg)["database_url"] == "${TEAM_DB_URL}"
    registry_file.write_text("{}\n")
    monkeypatch.setenv("RAYMLOPS_REGISTRY_URL", "postgresql+psycopg://u:hunter2@db/x")
    assert registry_settings(cfg)["database_url"] == "${RAYMLOPS_REGISTRY_URL}"
    monkeypatch.delenv("RAYMLOPS_REGISTRY_URL")
    assert registry_settings(cfg)["database_url"].startswith("sqlite:///")


def test_reference_is_expanded_where_the_registry_opens(monkeypatch):
    from raymlops.config import RegistryConfig
    from raymlops.registry.registry import resolve_locations

    monkeypatch.delenv("RAYMLOPS_REGISTRY_URL", raising=False)
    monkeypatch.setenv("TEAM_DB_URL", "sqlite:////tmp/x.db")
    assert resolve_locations(RegistryConfig(database_url="${TEAM_DB_URL}"))[0] == "sqlite:////tmp/x.db"
    monkeypatch.delenv("TEAM_DB_URL")
    with pytest.raises(ConfigError, match=r"database_url: \$\{TEAM_DB_URL\} is not set"):
        resolve_locations(RegistryConfig(database_url="${TEAM_DB_URL}"))
