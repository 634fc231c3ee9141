import pytest

from raymlops.errors import ClusterError, ConflictError, InvalidRequestError, NotFoundError
from raymlops.serve.control import (
    check_expected_version,
    checked_traffic,
    declared_traffic,
    deployed_versions,
    traffic_applied,
    traffic_version,
    wait_until_applied,
    with_traffic,
    write_outcome,
)

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


def serve_details(user_config, status):
    return {"applications": {"m": {"deployments": {
        "ModelServer": {"status": status, "message": "2 replicas updating",
                        "deployment_config": {"name": "ModelServer", "user_config": user_config}}}}}}


def test_a_change_is_applied_once_the_target_carries_it_and_the_deployment_is_healthy_again():
    new = {**CURRENT, "canary_weight": 0.5}
    assert not traffic_applied(serve_details(CURRENT, "HEALTHY"), "m", new)  # not picked up yet
    assert not traffic_applied(serve_details(new, "UPDATING"), "m", new)  # replicas reconfiguring
    assert traffic_applied(serve_details(new, "HEALTHY"), "m", new)
    assert not traffic_applied({"applications": {}}, "m", new)


def test_waiting_for_a_change_polls_until_applied_and_names_the_stuck_deployment():
    new = {**CURRENT, "canary_weight": 0.5}
    states = iter([serve_details(CURRENT, "HEALTHY"), serve_details(new, "UPDATING"), serve_details(new, "HEALTHY")])
    reads = []
    wait_until_applied(lambda: reads.append(1) or next(states), "m", new, timeout_s=5, every_s=0)
    assert len(reads) == 3
    with pytest.raises(ClusterError) as info:
        wait_until_applied(lambda: serve_details(new, "UPDATING"), "m", new, timeout_s=0.05, every_s=0.01)
    assert "UPDATING" in str(info.value) and "2 replicas updating" in str(info.value)


def test_http_endpoints_come_from_serves_http_target_groups():
    from raymlops.serve.endpoints import direct_endpoints, http_endpoints

    groups = [
        {"protocol": "HTTP", "route_prefix": "/rmo", "app_name": "rmo",
         "targets": [{"ip": "127.0.0.1", "port": 30001, "instance_id": "a", "name": "SERVE_REPLICA::rmo#a"},
                     {"ip": "127.0.0.1", "port": 30000, "instance_id": "b", "name": "SERVE_REPLICA::rmo#b"}]},
        {"protocol": "gRPC", "route_prefix": "/rmo", "targets": [{"ip": "127.0.0.1", "port": 40000}]},
        {"protocol": "HTTP", "route_prefix": "/", "targets": [{"ip": "127.0.0.1", "port": 8000, "name": "SERVE_PROXY_ACTOR-x"}]},
    ]
    found = http_endpoints(groups)
    assert found == ["http://127.0.0.1:30000/rmo", "http://127.0.0.1:30001/rmo", "http://127.0.0.1:8000"]
    assert direct_endpoints(found, "http://127.0.0.1:8000/rmo") == found[:2]  # not the proxy, whatever the prefix
    assert http_endpoints(groups, replicas_only=True) == found[:2]  # replicas by their target names


def test_a_weight_for_the_champion_kept_for_rollback_must_name_its_version():
    from raymlops.errors import InvalidRequestError
    from raymlops.serve.control import checked_traffic

    after_promotion = {"stable_version": 5, "canary_version": 4, "canary_weight": 0.0, "retiring_version": 4}
    with pytest.raises(InvalidRequestError, match="previous champion") as caught:
        checked_traffic(after_promotion, {"canary_weight": 0.5}, None)
    assert caught.value.field == "canary_version"
    named = checked_traffic(after_promotion, {"canary_weight": 0.5, "canary_version": 4}, None)
    assert named["canary_weight"] == 0.5 and named["retiring_version"] is None
    assert checked_traffic({"stable_version": 5, "canary_version": 6, "canary_weight": 0.1},
                           {"canary_weight": 0.5}, None)["canary_weight"] == 0.5


def test_a_versioned_write_numbers_the_settings_and_a_stale_writer_is_refused():
    before = state([{"name": "ModelServer", "user_config": {**CURRENT, "traffic_version": 4}}])
    assert traffic_version(declared_traffic(before, "m")) == 4 and declared_traffic(before, "nope") is None
    _, _, user_config = with_traffic(before, "m", {"canary_weight": 0.5}, version=5)
    assert user_config["traffic_version"] == 5 and user_config["canary_weight"] == 0.5
    check_expected_version("m", 4, 4)
    check_expected_version("m", 4, None)  # no expectation: the change is merged onto the current settings
    with pytest.raises(ConflictError, match="at version 4, not 3"):
        check_expected_version("m", 4, 3)
    with pytest.raises(InvalidRequestError):  # the version is the writer's, never a change's
        checked_traffic(CURRENT, {"traffic_version": 9}, None)


def outcome_state(declared, target, status="HEALTHY"):
    details = serve_details(target, status)
    details["applications"]["m"]["deployed_app_config"] = {"deployments": [{"name": "ModelServer",
                                                                             "user_config": declared}]}
    return details


def test_a_write_is_applied_pending_reverted_or_superseded():
    mine = {**CURRENT, "canary_weight": 0.5, "traffic_version": 5}
    older = {**CURRENT, "traffic_version": 4}
    assert write_outcome(outcome_state(mine, mine), "m", mine) == "applied"
    assert write_outcome(outcome_state(mine, older, "UPDATING"), "m", mine) == "pending"
    assert write_outcome(outcome_state(mine, mine, "UPDATING"), "m", mine) == "pending"
    # another app's deploy carried the older settings over this write: write it again
    assert write_outcome(outcome_state(older, older), "m", mine) == "reverted"
    # a redeploy of the app (or a newer write) replaced it: the writer loses
    assert write_outcome(outcome_state({**CURRENT, "traffic_version": 5}, mine), "m", mine) == "superseded"
    assert write_outcome(outcome_state({**CURRENT, "traffic_version": 6}, mine), "m", mine) == "superseded"
    assert write_outcome({"applications": {}}, "m", mine) == "superseded"
