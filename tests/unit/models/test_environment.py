"""Environment parity: what a version records, what counts as a mismatch, what a replica does."""

import platform

import pytest

from raymlops.models.environment import (
    environment_of,
    installed_versions,
    mismatches,
    model_requirements,
    parity,
    recorded_runtime_env,
    release_of,
)
from raymlops.models.sklearn import SklearnModel
from raymlops.models.torch_tabular import TorchTabularModel

HERE = {"python": "3.11.9", "torch": "2.13.0", "numpy": "1.26.4", "scikit-learn": "1.5.2"}


@pytest.mark.parametrize("recorded, found", [
    ({"python": "3.11.4", "packages": {"torch": "2.13.1", "numpy": "1.26.0"}}, []),  # patch releases agree
    ({"python": "3.11.9", "packages": {"torch": "2.12.0"}}, [("torch", "2.12.0", "2.13.0")]),
    ({"python": "3.10.2", "packages": {}}, [("python", "3.10.2", "3.11.9")]),
    ({"packages": {"numpy": "2.0.1"}}, [("numpy", "2.0.1", "1.26.4")]),
    ({"packages": {"xgboost": "2.1.0"}}, [("xgboost", "2.1.0", "not installed")]),
    ({"packages": {"skops": "not installed"}}, []),  # nothing was recorded for it: nothing to compare
])
def test_a_different_major_or_minor_release_is_a_mismatch(recorded, found):
    assert [(m.package, m.recorded, m.here) for m in mismatches(recorded, HERE)] == found


def test_parity_reports_status_and_names_each_difference():
    assert parity(None)["status"] == "unrecorded" and parity({})["status"] == "unrecorded"
    checked = parity({"python": "3.11.1", "packages": {"torch": "2.1.0"}}, HERE)
    assert checked["status"] == "mismatch" and checked["mismatches"] == [
        {"package": "torch", "recorded": "2.1.0", "here": "2.13.0"}]
    assert parity({"python": "3.11.1", "packages": {"torch": "2.13.0"}}, HERE)["status"] == "match"
    assert release_of("2.13.0+cpu") == (2, 13) and release_of("not installed") is None and release_of("7") == (7, 0)


def test_a_version_records_its_flavors_packages_and_this_process():
    torch_env = environment_of(TorchTabularModel.__new__(TorchTabularModel))
    assert torch_env["python"] == platform.python_version() and set(torch_env["packages"]) == {"torch", "numpy"}
    assert torch_env["packages"] == installed_versions(["torch", "numpy"]) and torch_env["runtime_env"] == {}
    assert parity(torch_env)["status"] == "match"  # made here, served here

    from sklearn.linear_model import Ridge

    model = SklearnModel.__new__(SklearnModel)
    model.estimator = Ridge()
    assert model_requirements(model) == ("scikit-learn", "numpy", "skops")


def test_a_recorded_environment_becomes_a_runtime_env():
    recorded = {"python": "3.11.9", "packages": {"torch": "2.1.0", "numpy": "1.26.4", "gone": "not installed"},
                "runtime_env": {"pip": ["torch==2.1.0", "einops>=0.7"]}, "image": None}
    assert recorded_runtime_env(recorded) == {"pip": ["numpy==1.26.4", "torch==2.1.0", "einops>=0.7"]}
    assert recorded_runtime_env({**recorded, "image": "ghcr.io/team/train:7"}) == {"image_uri": "ghcr.io/team/train:7"}
    assert recorded_runtime_env({**recorded, "runtime_env": {"conda": "env.yaml"}}) == {"conda": "env.yaml"}
