"""A model server replica checks a version's recorded environment before loading it."""

import platform

import pytest

from raymlops.errors import EnvironmentMismatchError


class FakeRegistry:
    def __init__(self, lineage):
        from raymlops.types import ModelVersion

        self.version = ModelVersion("m", 2, 0.0, "file:///x", {}, {}, lineage)

    def get(self, ref):
        return self.version


def test_a_replica_refuses_or_warns_before_it_downloads_anything(monkeypatch):
    from raymlops.serve import versions

    warnings = []
    monkeypatch.setattr(versions.log, "warning", lambda text, *args: warnings.append(text % args))
    from raymlops.serve.versions import LocalVersions

    old = {"environment": {"python": platform.python_version(), "packages": {"numpy": "0.9.0"}}}
    refusing = LocalVersions(FakeRegistry(old), "m")
    with pytest.raises(EnvironmentMismatchError, match=r"m:2 was trained with numpy 0.9.0 \(trained\) vs "):
        refusing.sync({2})
    assert refusing.versions == set()
    warning = LocalVersions(FakeRegistry(old), "m", on_mismatch="warn")
    assert warning.admit(warning.registry.get("m:2"))["status"] == "mismatch"
    assert "serving m:2 although it was trained with numpy 0.9.0" in warnings[0]


def test_separate_deployments_can_run_in_their_recorded_environment(home):
    from raymlops.config import ServeConfig
    from raymlops.serve.deploy import application_config

    user_config = {"stable_version": 1, "canary_version": 2, "canary_weight": 0.1}
    environments = {1: {"packages": {"torch": "2.13.0"}}, 2: {"packages": {"torch": "2.1.0"}, "image": None}}
    cfg = ServeConfig(model_name="m", layout="separate", environment={"runtime_env": "recorded"})
    app = application_config(cfg, {}, user_config, {"py_modules": ["gcs://code.zip"]}, environments)
    options = {d["name"]: d["ray_actor_options"] for d in app["deployments"]}
    assert options["Version2"]["runtime_env"] == {"py_modules": ["gcs://code.zip"], "pip": ["torch==2.1.0"]}
    assert options["Version1"]["runtime_env"]["pip"] == ["torch==2.13.0"]
    assert app["args"]["environment"] == {"on_mismatch": "refuse", "runtime_env": "recorded"}
    replica = application_config(cfg.model_copy(update={"environment": cfg.environment.model_copy(
        update={"runtime_env": "replica"})}), {}, user_config, None, environments)
    assert all("runtime_env" not in d["ray_actor_options"] for d in replica["deployments"])


def test_recorded_environments_need_the_separate_layout():
    from pydantic import ValidationError

    from raymlops.config import ServeConfig

    with pytest.raises(ValidationError, match="environment.runtime_env: recorded .* needs layout: separate"):
        ServeConfig(environment={"runtime_env": "recorded"})


def test_a_failed_app_is_summed_up_by_its_raymlops_error():
    from raymlops.serve.control import failure_summary

    message = ("The deployment failed to start 3 times in a row.\nTraceback (most recent call last):\n  File x\n"
               "raymlops.errors.EnvironmentMismatchError: m:1 was trained with torch 1.0.0 (trained) vs 2.13.0\n")
    assert failure_summary(message).startswith("raymlops.errors.EnvironmentMismatchError: m:1 was trained with torch")
    assert failure_summary("") == "no message" and failure_summary("a\nb") == "a b"
