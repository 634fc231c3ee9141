"""The model server on the session cluster, over real HTTP: the colocated layout with batching,
shadow traffic and the record stream; admin endpoints and API keys; the separate layout and
autoscaling; metrics on the cluster's Prometheus endpoint; property-based fuzzing."""

import threading
import time

import httpx
import pytest

from raymlops.config import ServeConfig, load_config
from raymlops.serve.deploy import deploy
from raymlops.serve.writer import set_traffic
from raymlops.testing import register_untrained_version, wait_for

ROW = {"island": "Dream", "bill_length_mm": 40.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
       "body_mass_g": 3500.0, "sex": "female"}
MODEL = "servetest"


COLLECTOR = "collector-servetest"


@pytest.fixture(scope="module")
def collector(ray_driver):
    from raymlops.testing import RecordCollector

    actor = ray_driver.remote(RecordCollector).options(name=COLLECTOR, namespace="raymlops", num_cpus=0).remote()
    yield actor
    ray_driver.kill(actor)


@pytest.fixture(scope="module")
def served(ray_cluster, penguins_data, collector):
    """v1 champion (stable), v2 candidate (canary at 25%), v3 a constant model shadowing half the requests."""
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, MODEL, penguins_data, seed=0)
    register_untrained_version(registry, MODEL, penguins_data, seed=1)
    register_untrained_version(registry, MODEL, penguins_data, seed=2, constant_class=2)
    registry.set_alias(MODEL, "champion", 1)
    registry.set_alias(MODEL, "candidate", 2)
    registry.close()
    cfg = load_config(None, ServeConfig, [
        f"model_name={MODEL}", "route_prefix=/", "traffic.canary_weight=0.25", "limits.max_rows=50",
        "replicas.max_replicas=1", "traffic.shadow_version=3", "traffic.shadow_share=0.5",
        "batching.enabled=true", "batching.max_batch_size=8", "batching.batch_wait_timeout_s=0.002",
        "records.sink=actor", f"records.options={{actor_name: {COLLECTOR}}}", "records.flush_ms=50"])
    deployed = deploy(cfg)
    with httpx.Client(base_url=deployed.url, timeout=30) as client:
        yield client
    from raymlops.serve.deploy import undeploy

    for app in (MODEL, "plain"):  # free the session cluster's CPUs for the tests after these
        undeploy(app, ray_cluster)


def predict(client, body, **headers):
    return client.post(f"/v1/models/{MODEL}/predict", json=body, headers=headers)


def test_rows_and_columns_answer_with_version_arm_and_request_id(served):
    rows = predict(served, {"instances": [ROW, ROW]})
    assert rows.status_code == 200, rows.text
    data = rows.json()
    assert data["version"] in (1, 2) and data["arm"] in ("stable", "canary")
    assert rows.headers["x-raymlops-version"] == str(data["version"]) and rows.headers["x-raymlops-arm"] == data["arm"]
    assert rows.headers["x-raymlops-request-id"] == data["request_id"]  # issued by the server
    assert len(data["predictions"]) == 2
    assert set(data["predictions"][0]["probabilities"]) == {"Adelie", "Chinstrap", "Gentoo"}
    columns = predict(served, {"inputs": {k: [v] for k, v in ROW.items()}}, **{"x-raymlops-key": "k1"})
    assert columns.status_code == 200 and len(columns.json()["predictions"]) == 1


def test_each_replica_also_answers_on_its_own_loopback_port(served):
    """raymlops' Serve settings turn on direct ingress: replicas serve HTTP on 127.0.0.1 ports too
    (with HAProxy as the front door, these are what it forwards to)."""
    from raymlops.serve.endpoints import replica_endpoints

    direct = replica_endpoints(MODEL)
    assert direct, served.get(f"/v1/models/{MODEL}").json()["endpoints"]
    for url in direct:
        host, port = url.split("//", 1)[1].split(":")
        assert host == "127.0.0.1" and 30000 <= int(port) <= 31000, url
        response = httpx.post(f"{url}/v1/models/{MODEL}/predict", json={"instances": [ROW]}, timeout=30)
        assert response.status_code == 200 and response.headers["x-raymlops-version"] in ("1", "2"), response.text


def test_a_version_trained_with_other_packages_is_refused_before_traffic_moves(served, penguins_data):
    import platform

    from raymlops.auth import ensure_admin_token
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    old = register_untrained_version(registry, MODEL, penguins_data, seed=3, environment={
        "python": platform.python_version(), "packages": {"numpy": "0.9.0"}})
    registry.close()
    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    moved = served.put(f"/admin/models/{MODEL}/traffic", json={"canary_version": old.version}, headers=admin)
    assert moved.status_code == 409 and moved.json()["error"]["field"] == "version", moved.text
    assert f"{MODEL}:{old.version} was trained with numpy 0.9.0 (trained) vs 1." in moved.json()["error"]["problem"]
    described = served.get(f"/v1/models/{MODEL}").json()
    assert described["canary_version"] == 2 and described["environment"]["1"]["status"] == "unrecorded"


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
    from raymlops.auth import ensure_admin_token

    assert served.get("/v2/health/live").json() == {"live": True}
    assert served.get("/v2/health/ready").json() == {"ready": True}
    assert served.get("/v2").json()["name"] == "raymlops"
    meta = served.get(f"/v2/models/{MODEL}").json()
    assert meta["versions"] == ["1", "2", "3"] and {i["name"] for i in meta["inputs"]} == set(ROW)
    assert served.get(f"/v2/models/{MODEL}/ready").json()["ready"] is True
    tensors = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
               for k, v in ROW.items()]
    infer = served.post(f"/v2/models/{MODEL}/infer", json={"id": "abc", "inputs": tensors})
    assert infer.status_code == 200, infer.text
    body = infer.json()
    assert body["id"] == "abc" and body["outputs"][0]["name"] == "class" and body["outputs"][1]["shape"] == [1, 3]
    assert body["parameters"]["request_id"] == infer.headers["x-raymlops-request-id"]
    # tritonclient's default: inputs as binary tensor data after the JSON, outputs asked back in binary
    import json
    import struct

    import numpy as np

    blobs, inputs = [], []
    for k, v in ROW.items():
        blob = struct.pack("<I", len(v)) + v.encode() if isinstance(v, str) else np.array([v], "<f4").tobytes()
        blobs.append(blob)
        inputs.append({"name": k, "shape": [1, 1], "datatype": "BYTES" if isinstance(v, str) else "FP32",
                       "parameters": {"binary_data_size": len(blob)}})
    head = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    binary = served.post(f"/v2/models/{MODEL}/infer", content=head + b"".join(blobs),
                         headers={"content-type": "application/octet-stream",
                                  "inference-header-content-length": str(len(head))})
    assert binary.status_code == 200, binary.text
    length = int(binary.headers["inference-header-content-length"])
    outputs = json.loads(binary.content[:length])["outputs"]
    sizes = [o["parameters"]["binary_data_size"] for o in outputs]
    probabilities = np.frombuffer(binary.content[length + sizes[0]:], dtype="<f4")
    assert sizes[1] == 12 and abs(probabilities.sum() - 1) < 1e-4
    assert "binary_tensor_data" in served.get("/v2").json()["extensions"]
    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    refused = served.post(f"/v2/models/{MODEL}/versions/2/infer", json={"inputs": tensors})
    assert refused.status_code == 401 and "pinned" in refused.json()["error"], refused.text  # the protocol's shape
    pinned = served.post(f"/v2/models/{MODEL}/versions/2/infer", json={"inputs": tensors}, headers=admin)
    assert pinned.json()["model_version"] == "2" and pinned.headers["x-raymlops-arm"] == "pinned"
    assert served.post(f"/v2/models/{MODEL}/versions/9/infer", json={"inputs": tensors}, headers=admin).status_code == 404
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
    set_traffic(MODEL, {"canary_weight": 0.25})  # the cluster's traffic writer is up before the timed change
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


def test_racing_traffic_writers_one_wins_the_other_gets_409(served, ray_cluster):
    from raymlops.auth import ensure_admin_token
    from raymlops.errors import ConflictError

    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    version = served.get(f"/v1/models/{MODEL}").json()["traffic_version"]
    answers = []

    def change(weight):
        answers.append(served.put(f"/admin/models/{MODEL}/traffic", json={"canary_weight": weight},
                                  headers={**admin, "if-match": str(version)}))
    racers = [threading.Thread(target=change, args=(w,)) for w in (0.3, 0.35)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 200).json()["traffic"]
    lost = next(a for a in answers if a.status_code == 409).json()["error"]
    assert won["traffic_version"] == version + 1 and lost["field"] == "traffic_version"
    assert f"at version {version + 1}, not {version}" in lost["problem"]
    now = served.get(f"/v1/models/{MODEL}").json()
    assert now["canary_weight"] == won["canary_weight"] and now["traffic_version"] == version + 1
    with pytest.raises(ConflictError):  # the CLI's --if-version, with the version read before
        set_traffic(MODEL, {"canary_weight": 0.25}, expected_version=version)
    bad = served.put(f"/admin/models/{MODEL}/traffic", json={"canary_weight": 0.2}, headers={**admin, "if-match": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "if-match"
    assert set_traffic(MODEL, {"canary_weight": 0.25}, expected_version=version + 1).user_config[
        "traffic_version"] == version + 2


def test_a_deploy_carrying_older_traffic_does_not_undo_a_change(served, ray_cluster):
    """Another app's deploy that read Serve's config before a traffic change and writes it back
    after: the writer notices its change was carried over and writes it again."""
    from raymlops.serve import deploy as d

    stale = d.serve_state(ray_cluster)
    version = d.traffic_version(d.declared_traffic(stale, MODEL))
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", "app_name=plain", "route_prefix=/plain"])
    plain = d.application_config(cfg, d.registry_settings(cfg), {})
    changer = threading.Thread(target=set_traffic, args=(MODEL, {"canary_weight": 0.6}))
    changer.start()
    wait_for(lambda: d.traffic_version(d.declared_traffic(d.serve_state(ray_cluster), MODEL)) > version, 60, every_s=0.02)
    d._put(ray_cluster, [*d._others(stale, "plain"), plain], d._http_options(ray_cluster, stale))  # the stale deploy
    changer.join(120)
    declared = d.declared_traffic(d.serve_state(ray_cluster), MODEL)
    assert declared["canary_weight"] == 0.6 and declared["traffic_version"] >= version + 1
    wait_for(lambda: served.get(f"/v1/models/{MODEL}").json()["canary_weight"] == 0.6, 30)
    set_traffic(MODEL, {"canary_weight": 0.25})


def test_serve_deploy_config_without_user_config_serves_the_champion(served, ray_cluster):
    """What a user's own `serve deploy` file gets with no user_config: the champion, alone."""
    from raymlops.serve import deploy as d

    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", "app_name=plain", "route_prefix=/plain"])
    app = d.application_config(cfg, d.registry_settings(cfg), {})
    del app["deployments"][0]["user_config"]
    state = d.serve_state(ray_cluster)
    d._put(ray_cluster, [*d._others(state, "plain"), app], d._http_options(ray_cluster, state))
    d._wait_running(ray_cluster, "plain", 120)
    response = served.post(f"/plain/v1/models/{MODEL}/predict", json={"instances": [ROW]})
    assert response.status_code == 200 and response.json()["version"] == 1 and response.json()["arm"] == "stable"
    assert predict(served, {"instances": [ROW]}).status_code == 200  # the other application was kept


# --------------------------------------------------------------------------- shadow and records

def test_shadow_never_changes_the_answer_and_every_request_is_recorded(served, collector, ray_driver):
    tensors = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
               for k, v in ROW.items()]
    from raymlops.auth import ensure_admin_token

    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    pinned = {v: served.post(f"/v2/models/{MODEL}/versions/{v}/infer", json={"inputs": tensors},
                             headers=admin).json()["outputs"][0]["data"][0] for v in (1, 2, 3)}
    assert pinned[3] == "Gentoo"  # the constant shadow model
    answered = {}
    for i in range(80):
        response = predict(served, {"instances": [ROW]}, **{"x-request-id": f"shadow-{i}"})
        assert response.status_code == 200
        data = response.json()
        assert data["version"] in (1, 2), "the shadow version never answers"
        assert data["predictions"][0]["class"] == pinned[data["version"]]
        answered[data["request_id"]] = data["version"]
    bad = predict(served, {"instances": [{"island": "Dream"}]}, **{"x-request-id": "shadow-bad"})
    assert bad.status_code == 422
    bad_id = bad.headers["x-raymlops-request-id"]

    def recorded():
        columns = ray_driver.get(collector.columns.remote())
        ids = columns.get("request_id", [])
        return columns if set(answered) | {bad_id} <= set(ids) else None

    columns = wait_for(recorded)
    assert columns, "records did not reach the sink"
    rows = list(zip(columns["request_id"], columns["arm"], columns["version"], columns["status"],
                    columns["prediction"], columns["f.island"]))
    live = {r[0]: r for r in rows if r[1] in ("stable", "canary") and r[0] in answered}
    assert {rid: r[2] for rid, r in live.items()} == answered
    assert all(r[3] == 200 and r[5] == "Dream" for r in live.values())
    shadows = [r for r in rows if r[1] == "shadow" and r[0] in answered]
    assert 15 <= len(shadows) <= 65, len(shadows)  # about half of 80
    assert all(r[2] == 3 and r[4] == "Gentoo" for r in shadows)
    assert [r[3] for r in rows if r[0] == bad_id] == [422]


# --------------------------------------------------------------------------- admin endpoints and API keys

def test_admin_traffic_endpoint_needs_the_bearer_token(served, registry):
    from raymlops.auth import ensure_admin_token

    url = f"/admin/models/{MODEL}/traffic"
    assert served.put(url, json={"canary_weight": 0.5}).status_code == 401
    assert served.put(url, json={"canary_weight": 0.5}, headers={"authorization": "Bearer nope"}).status_code == 403
    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    bad = served.put(url, json={"canary_weight": 2}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "traffic"
    unknown = served.put(url, json={"weight": 0.5}, headers=admin)
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "weight"
    started = time.time()
    ok = served.put(url, json={"canary_weight": 0.5}, headers=admin)
    assert ok.status_code == 200, ok.text
    assert wait_for(lambda: served.get(f"/v1/models/{MODEL}").json()["canary_weight"] == 0.5, timeout_s=10)
    assert time.time() - started < 5
    events = registry.events(MODEL, kinds=["traffic_changed"])
    assert events and events[-1].payload["changes"] == {"canary_weight": 0.5}
    assert served.put(url, json={"canary_weight": 0.25}, headers=admin).status_code == 200
    wait_for(lambda: served.get(f"/v1/models/{MODEL}").json()["canary_weight"] == 0.25, timeout_s=10)


def test_inference_api_keys_401_403_200(served, ray_cluster):
    from raymlops.serve.access import digest

    key = "rmo_test-key"
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", "app_name=secured", "route_prefix=/secured",
                                         "replicas.max_replicas=1", "access.require_api_key=true",
                                         f"access.api_key_sha256=[{digest(key)}]"])
    deploy(cfg)
    url = f"/secured/v1/models/{MODEL}/predict"
    try:
        assert served.post(url, json={"instances": [ROW]}).status_code == 401
        assert served.post(url, json={"instances": [ROW]}, headers={"x-api-key": "rmo_wrong"}).status_code == 403
        assert served.post(url, json={"instances": [ROW]}, headers={"x-api-key": key}).status_code == 200
        assert served.post(url, json={"instances": [ROW]}, headers={"authorization": f"Bearer {key}"}).status_code == 200
        # every model endpoint needs the key; v2 health stays open for load balancers
        for path in (f"/v1/models/{MODEL}", f"/v1/models/{MODEL}/drift", f"/v2/models/{MODEL}", "/v2", "/docs",
                     "/openapi.json"):
            assert served.get(f"/secured{path}").status_code == 401, path
        assert served.get(f"/secured/v1/models/{MODEL}", headers={"x-api-key": key}).status_code == 200
        assert served.get("/secured/openapi.json", headers={"x-api-key": key}).json()["paths"]
        assert served.get("/secured/v2/health/ready").status_code == 200
        # an inference key may not label answers: feedback has its own scope
        feedback = served.post(f"/secured/v1/models/{MODEL}/feedback", json={"request_id": "x", "label": "Adelie"},
                               headers={"x-api-key": key})
        assert feedback.status_code == 403 and "feedback scope" in feedback.json()["error"]["problem"]
    finally:
        _remove_app(ray_cluster, "secured")


def test_hostile_bodies_get_a_4xx_and_the_replica_lives_on(served):
    url = f"/v1/models/{MODEL}/predict"
    deep = served.post(url, content=b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                       headers={"content-type": "application/json"})
    assert deep.status_code == 422 and "nested deeper" in deep.json()["error"]["problem"]
    for value in (1e308, -1e300, 10 ** 400):
        huge = predict(served, {"instances": [{**ROW, "body_mass_g": value}]})
        assert huge.status_code == 422 and huge.json()["error"]["field"] == "instances[0].body_mass_g", huge.text
    oversized = served.post(url, content=b" " * 1_100_000, headers={"content-type": "application/json"})
    assert oversized.status_code == 413 and oversized.json()["error"]["field"] == "body"
    v2_error = served.post(f"/v2/models/{MODEL}/infer", json={"inputs": "nope"})
    assert v2_error.status_code == 422 and v2_error.json()["error"].startswith("inputs: ")
    assert predict(served, {"instances": [ROW]}).status_code == 200


def _remove_app(addresses, name):
    from raymlops.serve.deploy import undeploy

    undeploy(name, addresses)


# --------------------------------------------------------------------------- metrics

def test_metrics_reach_the_clusters_prometheus_endpoint(served, ray_cluster):
    for _ in range(20):
        predict(served, {"instances": [ROW]})
    wanted = ["ray_raymlops_requests_total", "ray_raymlops_request_latency_ms_bucket", "ray_raymlops_traffic_weight",
              "ray_raymlops_shadow_comparisons_total", "ray_raymlops_shadow_disagreements_total",
              "ray_raymlops_records_sent_total"]

    def exported():
        text = httpx.get(ray_cluster.metrics, timeout=10).text
        lines = [line for line in text.splitlines() if f'model="{MODEL}"' in line]
        return lines if all(any(line.startswith(name) for line in lines) for name in wanted) else None

    lines = wait_for(exported, timeout_s=40, every_s=1)
    assert lines, "raymlops metrics not on the metrics endpoint"
    assert any('status="200"' in line and 'arm="stable"' in line for line in lines
               if line.startswith("ray_raymlops_requests_total")), lines
    assert any('version="3"' in line and 'arm="shadow"' in line for line in lines
               if line.startswith("ray_raymlops_traffic_weight")), lines


# --------------------------------------------------------------------------- fuzzing over HTTP

def test_fuzzed_bodies_get_4xx_never_5xx_and_the_replica_survives(served):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.text(max_size=8), st.sampled_from(["Dream", "male", "1e999", ""]))
    json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                               | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
    feature = st.sampled_from([*ROW, "wings", ""])
    row = st.dictionaries(feature, json_values | scalars, max_size=8)
    near_valid = st.fixed_dictionaries({}, optional={
        "instances": st.lists(row | st.builds(lambda extra: {**ROW, **extra}, row), max_size=4) | json_values,
        "inputs": st.dictionaries(feature, st.lists(scalars, max_size=3) | scalars, max_size=7) | json_values,
    })
    v2 = st.fixed_dictionaries({"inputs": st.lists(st.fixed_dictionaries(
        {"name": feature, "shape": st.lists(st.integers(-2, 3), max_size=2),
         "datatype": st.sampled_from(["FP64", "FP32", "BYTES", "INT64", "BOOL", "nope"]),
         "data": st.lists(scalars, max_size=3)}), max_size=7)})

    @settings(max_examples=120, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(body=near_valid | json_values, v2_body=v2)
    def check(body, v2_body):
        response = predict(served, body)
        assert response.status_code in (200, 413, 422), (body, response.text)
        if response.status_code != 200:
            assert response.json()["error"]["field"]
        infer = served.post(f"/v2/models/{MODEL}/infer", json=v2_body)
        assert infer.status_code in (200, 413, 422), (v2_body, infer.text)

    check()
    assert predict(served, {"instances": [ROW]}).status_code == 200
    assert served.get("/v2/health/ready").json() == {"ready": True}


# --------------------------------------------------------------------------- separate layout, autoscaling

def _replicas(addresses, app, deployment):
    from raymlops.serve import deploy as d

    details = d.serve_state(addresses)["applications"][app]["deployments"][deployment]
    return sum(r["state"] == "RUNNING" for r in details.get("replicas", []))


def _load(url, body, stop, seconds):
    """Eight concurrent callers for at most ``seconds``, bounded; returns the failures."""
    import asyncio

    async def caller(client, failures):
        deadline = time.time() + seconds
        while not stop.is_set() and time.time() < deadline:
            response = await client.post(url, json=body)
            if response.status_code != 200:
                failures.append(response.status_code)

    async def main():
        failures = []
        async with httpx.AsyncClient(timeout=30) as client:
            await asyncio.gather(*(caller(client, failures) for _ in range(8)))
        return failures

    return asyncio.run(main())


def test_separate_layout_splits_over_version_deployments_and_autoscales(served, ray_cluster):
    from raymlops.auth import ensure_admin_token

    cfg = load_config(None, ServeConfig, [
        f"model_name={MODEL}", "app_name=separate", "route_prefix=/separate", "layout=separate",
        "traffic.canary_weight=0.5", "batching.enabled=true", "replicas.min_replicas=1", "replicas.max_replicas=2",
        "replicas.target_ongoing_requests=1", "replicas.upscale_delay_s=1", "replicas.downscale_delay_s=4",
        "replicas.num_cpus=0.1", "router.num_cpus=0.1", "router.max_replicas=1"])
    deployed = deploy(cfg)
    base = f"{deployed.url}/v1/models/{MODEL}/predict"
    try:
        state = _current_app(ray_cluster, "separate")
        assert set(state["deployments"]) == {"ModelServer", "Version1", "Version2"}
        described = httpx.get(f"{deployed.url}/v1/models/{MODEL}").json()
        assert {v: e["status"] for v, e in described["environment"].items()} == {"1": "unrecorded", "2": "unrecorded"}
        versions = [httpx.post(base, json={"instances": [ROW]}).json()["version"] for _ in range(200)]
        assert 0.35 <= versions.count(2) / 200 <= 0.65
        admin = {"authorization": f"Bearer {ensure_admin_token()}"}
        moved = httpx.put(f"{deployed.url}/admin/models/{MODEL}/traffic", json={"canary_weight": 1.0}, headers=admin)
        assert moved.status_code == 200, moved.text
        assert wait_for(lambda: httpx.post(base, json={"instances": [ROW]}).json()["version"] == 2, timeout_s=10)
        not_deployed = httpx.put(f"{deployed.url}/admin/models/{MODEL}/traffic", json={"canary_version": 3},
                                 headers=admin)
        assert not_deployed.status_code == 422 and "[3]" in not_deployed.json()["error"]["problem"]

        stop = threading.Event()
        results = []
        loader = threading.Thread(target=lambda: results.append(_load(base, {"instances": [ROW] * 20}, stop, 60)))
        loader.start()
        try:
            scaled_up = wait_for(lambda: _replicas(ray_cluster, "separate", "Version2") >= 2, timeout_s=50, every_s=1)
        finally:
            stop.set()
            loader.join(90)
        assert scaled_up, "Version2 did not scale up under load"
        assert results == [[]], "requests failed while scaling"
        assert wait_for(lambda: _replicas(ray_cluster, "separate", "Version2") == 1, timeout_s=60, every_s=1), \
            "Version2 did not scale back down"
    finally:
        _remove_app(ray_cluster, "separate")


def _current_app(addresses, name):
    from raymlops.serve import deploy as d

    return d.serve_state(addresses)["applications"][name]


def test_a_failed_deploy_leaves_nothing_behind(ray_cluster, ray_driver, penguins_data):
    """Serve fails the app (the champion was trained with another torch release, and replicas
    refuse it by default): the error names package and versions, the application is removed and
    the monitor the deploy had started is stopped."""
    import platform

    from raymlops.actors import monitor_name
    from raymlops.cluster import actor_alive, dashboard_get
    from raymlops.config import RegistryConfig
    from raymlops.errors import RaymlopsError
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, "broken", penguins_data, seed=0, environment={
        "python": platform.python_version(), "packages": {"torch": "1.0.0"}})
    registry.set_alias("broken", "champion", 1)
    registry.close()
    cfg = load_config(None, ServeConfig, ["model_name=broken", "records.sink=monitor", "replicas.max_replicas=1"])
    assert not actor_alive(ray_cluster, monitor_name("broken"))
    with pytest.raises(RaymlopsError, match=r"broken is (DEPLOY_FAILED|UNHEALTHY): .*broken:1 was trained with "
                                            r"torch 1\.0\.0 \(trained\) vs 2\.\d+"):
        deploy(cfg, timeout_s=150)
    assert "broken" not in dashboard_get(ray_cluster, "/api/serve/applications/")["applications"]
    assert not actor_alive(ray_cluster, monitor_name("broken"))


def _grpc_request(rows: int = 2, **changes) -> "object":
    from raymlops.serve import grpc_v2

    request = grpc_v2.ModelInferRequest(model_name=MODEL, **changes)
    for name, value in ROW.items():
        tensor = request.inputs.add(name=name, shape=[rows], datatype="BYTES" if isinstance(value, str) else "FP64")
        if isinstance(value, str):
            tensor.contents.bytes_contents.extend([value.encode()] * rows)
        else:
            tensor.contents.fp64_contents.extend([value] * rows)
    return request


def test_the_v2_grpc_service_answers_through_the_split_on_the_front_door(served, collector, grpc_target):
    """The session cluster serves gRPC (serve_grpc_port): Serve routes by the `application`
    metadata to the model server's v2 methods; answers carry the issued request id, version and
    arm, are recorded like REST answers, and bad calls get a status code naming the field."""
    import grpc

    from raymlops.auth import ensure_admin_token
    from raymlops.serve import grpc_codec, grpc_v2

    metadata = [("application", MODEL)]
    with grpc.insecure_channel(grpc_target) as channel:
        stub = grpc_v2.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(grpc_v2.ServerLiveRequest(), metadata=metadata, timeout=30).live
        assert stub.ModelReady(grpc_v2.ModelReadyRequest(name=MODEL), metadata=metadata, timeout=30).ready
        described = stub.ModelMetadata(grpc_v2.ModelMetadataRequest(name=MODEL), metadata=metadata, timeout=30)
        assert {tensor.name for tensor in described.inputs} == set(ROW) and list(described.versions) == ["1", "2", "3"]

        answer, call = stub.ModelInfer.with_call(_grpc_request(id="mine"), metadata=metadata, timeout=30)
        trailing = dict(call.trailing_metadata())
        request_id = grpc_codec.parameter_dict(answer.parameters)["request_id"]
        assert answer.id == "mine" and trailing["x-raymlops-request-id"] == request_id
        assert answer.model_version == trailing["x-raymlops-version"] in ("1", "2") and trailing["x-raymlops-arm"]
        classes = next(output for output in answer.outputs if output.name == "class")
        assert list(classes.shape) == [2] and {c.decode() for c in classes.contents.bytes_contents} <= {
            "Adelie", "Chinstrap", "Gentoo"}
        raw = _grpc_request(rows=1)
        raw.parameters["binary_data_output"].bool_param = True
        binary = stub.ModelInfer(raw, metadata=metadata, timeout=30)
        assert len(binary.raw_output_contents) == len(binary.outputs) and not binary.outputs[0].HasField("contents")
        wait_for(lambda: request_id in set(ray_get(collector.columns.remote()).get("request_id", [])), timeout_s=20)

        wrong = _grpc_request()
        wrong.inputs[1].datatype = "BYTES"
        for request, code, details in [
            (wrong, grpc.StatusCode.INVALID_ARGUMENT, "inputs[1]"),
            (_grpc_request(rows=51), grpc.StatusCode.RESOURCE_EXHAUSTED, "51 rows"),
            (grpc_v2.ModelInferRequest(model_name="other"), grpc.StatusCode.NOT_FOUND, "model"),
            (_grpc_request(model_version="1"), grpc.StatusCode.UNAUTHENTICATED, "authorization"),
            (_grpc_request(model_version="9"), grpc.StatusCode.NOT_FOUND, "live version"),
        ]:
            extra = [("authorization", f"Bearer {ensure_admin_token()}")] if request.model_version == "9" else []
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, metadata=metadata + extra, timeout=30)
            assert caught.value.code() == code and details in caught.value.details(), caught.value.details()
        pinned = stub.ModelInfer(_grpc_request(model_version="1"), timeout=30,
                                 metadata=metadata + [("authorization", f"Bearer {ensure_admin_token()}")])
        assert pinned.model_version == "1"


def ray_get(ref):
    import ray

    return ray.get(ref, timeout=30)


def test_every_listener_of_the_cluster_is_on_its_host(served, ray_cluster):
    """Serve binds its gRPC servers (each replica's inter-deployment and direct-ingress servers, the
    fallback proxy's) to every interface; raymlops' worker hook keeps them, like every other port of
    the local cluster, on 127.0.0.1."""
    import psutil

    from raymlops.cluster import read_state
    from raymlops.local_head import select_cluster_processes

    state = read_state()
    roots = select_cluster_processes(psutil.process_iter(), state.temp_dir, ray_cluster.gcs)
    processes = {p.pid: p for root in roots for p in [root, *root.children(recursive=True)]}
    listening = {}
    for process in processes.values():
        try:
            for connection in process.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    listening[(process.name(), connection.laddr.port)] = connection.laddr.ip.removeprefix("::ffff:")
        except psutil.Error:
            continue
    assert len(listening) > 10, listening
    exposed = {where: ip for where, ip in listening.items() if not ip.startswith("127.")}
    assert not exposed, exposed
