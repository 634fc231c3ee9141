import pytest

from raymlops.errors import InvalidRequestError, NotFoundError
from raymlops.serve.control import checked_traffic, deployed_versions, with_traffic

CURRENT = {"stable_version": 1, "canary_version": 2, "canary_weight": 0.1, "shadow_version": None,
           "shadow_share": 0.0, "sticky_field": None}


def state(deployments, others=("other",)):
    apps = {"m": {"deployed_app_config": {"name": "m", "import_path": "raymlops.serve.app:build_app",
                                          "deployments": deployments}}}
    for name in others:
        apps[name] = {"deployed_app_config": {"name": name, "import_path": "x:y"}}
    return {"applications": apps, "http_options": {"host": "127.0.0.1", "port": 8000}}


def test_a_weight_change_touches_only_that_apps_user_config():
    before = state([{"name": "ModelServer", "user_config": dict(CURRENT), "max_ongoing_requests": 32}])
    applications, http_options, user_config = with_traffic(before, "m", {"canary_weight": 0.5})
    assert user_config == {**CURRENT, "canary_weight": 0.5}
    app = next(a for a in applications if a["name"] == "m")
    assert app["deployments"][0] == {"name": "ModelServer", "user_config": user_config, "max_ongoing_requests": 32}
    assert {a["name"] for a in applications} == {"m", "other"} and http_options["host"] == "127.0.0.1"
    assert before["applications"]["m"]["deployed_app_config"]["deployments"][0]["user_config"] == CURRENT


@pytest.mark.parametrize("changes, field", [
    ({"canary_weight": 1.5}, "traffic"),
    ({"weight": 0.5}, "weight"),
    ({"shadow_share": 0.5}, "traffic"),
    ({"stable_version": None}, "traffic"),
])
def test_impossible_splits_name_the_setting(changes, field):
    with pytest.raises(InvalidRequestError) as info:
        checked_traffic(CURRENT, changes, None)
    assert info.value.field == field


def test_removing_the_canary_zeroes_its_weight():
    assert checked_traffic(CURRENT, {"canary_version": None}, None)["canary_weight"] == 0.0


def test_separate_layout_refuses_versions_without_a_deployment():
    deployments = [{"name": "ModelServer"}, {"name": "Version1"}, {"name": "Version2"}]
    assert deployed_versions({"deployments": deployments}) == {1, 2}
    assert deployed_versions({"deployments": deployments[:1]}) is None
    checked_traffic(CURRENT, {"canary_weight": 0.9}, {1, 2})
    with pytest.raises(InvalidRequestError, match=r"\[3\]"):
        checked_traffic(CURRENT, {"canary_version": 3}, {1, 2})


def test_unknown_application():
    with pytest.raises(NotFoundError):
        with_traffic(state([]), "nope", {"canary_weight": 0.2})
