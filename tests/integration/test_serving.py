"""The colocated model server on the session cluster, over real HTTP."""

import threading
import time

import httpx
import pytest

from raymlops.config import ServeConfig, load_config
from raymlops.serve.deploy import deploy, set_traffic
from raymlops.testing import register_untrained_version

ROW = {"island": "Dream", "bill_length_mm": 40.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
       "body_mass_g": 3500.0, "sex": "female"}
MODEL = "servetest"


@pytest.fixture(scope="module")
def served(ray_cluster, penguins_data):
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, MODEL, penguins_data, seed=0)
    register_untrained_version(registry, MODEL, penguins_data, seed=1)
    registry.set_alias(MODEL, "champion", 1)
    registry.set_alias(MODEL, "candidate", 2)
    registry.close()
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", "route_prefix=/", "traffic.canary_weight=0.25",
                                         "limits.max_rows=50", "replicas.max_replicas=1"])
    deployed = deploy(cfg)
    with httpx.Client(base_url=deployed.url, timeout=30) as client:
        yield client


def predict(client, body, **headers):
    return client.post(f"/v1/models/{MODEL}/predict", json=body, headers=headers)


def test_rows_and_columns_answer_with_version_arm_and_request_id(served):
    rows = predict(served, {"instances": [ROW, ROW]})
    assert rows.status_code == 200, rows.text
    data = rows.json()
    assert data["version"] in (1, 2) and data["arm"] in ("stable", "canary")
    assert rows.headers["x-raymlops-version"] == str(data["version"]) and rows.headers["x-raymlops-arm"] == data["arm"]
    assert rows.headers["x-request-id"] == data["request_id"]
    assert len(data["predictions"]) == 2
    assert set(data["predictions"][0]["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    columns = predict(served, {"inputs": {k: [v] for k, v in ROW.items()}}, **{"x-raymlops-key": "k1"})
    assert columns.status_code == 200 and len(columns.json()["predictions"]) == 1


def test_split_proportion_over_2000_requests(served):
    arms = [predict(served, {"instances": [ROW]}).headers["x-raymlops-arm"] for _ in range(2000)]
    share = arms.count("canary") / len(arms)
    assert abs(share - 0.25) <= 4 * (0.25 * 0.75 / 2000) ** 0.5, share


def test_sticky_keys_stay_on_their_version(served):
    for key in ("alice", "bob", "carol"):
        versions = {predict(served, {"instances": [ROW]}, **{"x-raymlops-key": key}).json()["version"] for _ in range(15)}
        assert len(versions) == 1


@pytest.mark.parametrize("body, status, field", [
    ({"instances": [{"island": "Dream"}]}, 422, "instances[0]"),
    ({"instances": [{**ROW, "bill_length_mm": "long"}]}, 422, "instances[0].bill_length_mm"),
    ({"instances": [{**ROW, "wings": 2}]}, 422, "instances[0].wings"),
    ({"instances": []}, 422, "instances"),
    ({"instances": [ROW] * 51}, 413, "instances"),
    ({"inputs": {"island": ["Dream"]}}, 422, "inputs"),
    ({"nothing": 1}, 422, "body"),
])
def test_bad_requests_get_4xx_naming_the_field(served, body, status, field):
    response = predict(served, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_non_json_unknown_model_and_nan(served):
    bad_json = served.post(f"/v1/models/{MODEL}/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.json()["error"]["problem"]
    nan = served.post(f"/v1/models/{MODEL}/predict", content=b'{"instances": [{"island": "Dream", "bill_length_mm": NaN, '
                      b'"bill_depth_mm": 1, "flipper_length_mm": 1, "body_mass_g": 1, "sex": "male"}]}')
    assert nan.status_code == 422 and nan.json()["error"]["field"] == "instances[0].bill_length_mm"
    assert predict(served, {"instances": [ROW]}).status_code == 200  # the replica is fine afterwards
    missing = served.post("/v1/models/other/predict", json={"instances": [ROW]})
    assert missing.status_code == 404


def test_open_inference_protocol_v2(served):
    assert served.get("/v2/health/live").json() == {"live": True}
    assert served.get("/v2/health/ready").json() == {"ready": True}
    meta = served.get(f"/v2/models/{MODEL}").json()
    assert meta["versions"] == ["1", "2"] and {i["name"] for i in meta["inputs"]} == set(ROW)
    assert served.get(f"/v2/models/{MODEL}/ready").json()["ready"] is True
    tensors = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
               for k, v in ROW.items()]
    infer = served.post(f"/v2/models/{MODEL}/infer", json={"id": "abc", "inputs": tensors})
    assert infer.status_code == 200, infer.text
    body = infer.json()
    assert body["id"] == "abc" and body["outputs"][0]["name"] == "class" and body["outputs"][1]["shape"] == [1, 3]
    pinned = served.post(f"/v2/models/{MODEL}/versions/2/infer", json={"inputs": tensors})
    assert pinned.json()["model_version"] == "2" and pinned.headers["x-raymlops-arm"] == "pinned"
    assert served.post(f"/v2/models/{MODEL}/versions/9/infer", json={"inputs": tensors}).status_code == 404
    assert served.get("/docs").status_code == 200


def _steady_load(url, stop, results):
    """Requests in a separate process (its own GIL), until told to stop; bounded in count and time.

    Real callers sit on other machines; here they share two cores with the cluster, whose
    processes Ray runs at a lower CPU priority. Niceness puts the load generator back behind
    the server, as an external client would be."""
    import os

    os.nice(19)
    failures, answered, deadline = [], 0, time.time() + 90
    with httpx.Client(base_url=url, timeout=30) as client:
        while not stop.is_set() and time.time() < deadline and answered < 20_000:
            response = predict(client, {"instances": [ROW]})
            answered += 1
            if response.status_code != 200:
                failures.append(response.status_code)
            time.sleep(0.002)
    results.put((answered, failures))


def test_live_weight_change_under_load_drops_nothing(served, ray_cluster):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    loaders = [context.Process(target=_steady_load, args=(str(served.base_url), stop, results)) for _ in range(2)]
    for loader in loaders:
        loader.start()
    time.sleep(4)
    started = time.time()
    changer = threading.Thread(target=set_traffic, args=(MODEL, {"canary_weight": 0.75}))
    changer.start()
    while served.get(f"/v1/models/{MODEL}").json()["canary_weight"] != 0.75 and time.time() - started < 30:
        time.sleep(0.05)
    took = time.time() - started
    changer.join(60)
    time.sleep(2)
    stop.set()
    outcomes = [results.get(timeout=60) for _ in loaders]
    for loader in loaders:
        loader.join(30)
    assert all(failures == [] for _, failures in outcomes), outcomes
    assert sum(answered for answered, _ in outcomes) > 100
    assert took < 2.0, f"new weights took {took:.2f}s to reach the replica"
    arms = [predict(served, {"instances": [ROW]}).headers["x-raymlops-arm"] for _ in range(600)]
    assert abs(arms.count("canary") / 600 - 0.75) <= 4 * (0.75 * 0.25 / 600) ** 0.5
    set_traffic(MODEL, {"canary_weight": 0.25})


def test_serve_deploy_config_without_user_config_serves_the_champion(served, ray_cluster):
    """What a user's own `serve deploy` file gets with no user_config: the champion, alone."""
    from raymlops.serve import deploy as d

    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", "app_name=plain", "route_prefix=/plain"])
    app = d.application_config(cfg, d.registry_settings(cfg), {})
    del app["deployments"][0]["user_config"]
    state = d._current(ray_cluster)
    d._put(ray_cluster, [*d._others(state, "plain"), app], d._http_options(ray_cluster, state))
    d._wait_running(ray_cluster, "plain", 120)
    response = served.post(f"/plain/v1/models/{MODEL}/predict", json={"instances": [ROW]})
    assert response.status_code == 200 and response.json()["version"] == 1 and response.json()["arm"] == "stable"
    assert predict(served, {"instances": [ROW]}).status_code == 200  # the other application was kept
