"""A model over tensor inputs travels the loop on the session cluster: the 8×8 digit images
train with a small CNN over two DDP workers (torch-tensor flavor), two versions are served
side by side, called with v2 FP32 tensors as tritonclient sends them, the replicas record the
model's embedding, the monitor flags inverted images on that embedding (feature-wise and
MMD), and a gated rollout promotes the candidate."""

import time

import httpx
import numpy as np
import pytest

from raymlops.config import PrepareConfig, ServeConfig, load_config
from raymlops.data import prepare_dataset
from raymlops.data.tables import read_table, split_uri
from raymlops.monitor.client import start_monitor
from raymlops.serve.deploy import deploy
from raymlops.testing import promote_under_traffic, remove_served_model

MODEL = "digits"
TRAIN = ("--set model_name=digits --set data.path={data} --set model.builder=small_cnn "
         "--set 'model.params={{channels: 8, embedding: 8}}' --set train.epochs=6 --set train.lr=0.01 "
         "--set scaling.num_workers=2 --set detector.reference_rows=400")
MONITOR = ["window.size=120", "window.min_samples=60", "window.max_wait_s=2", "detectors.mmd.every=1", "detectors.mmd.min_interval_s=0",
           "detectors.mmd.n_permutations=50", "detectors.mmd.reference_rows=300", "detectors.online.enabled=false",
           "snapshot_every_s=2", "prediction_log.flush_every_s=1"]
STEPS = ("steps=[{weight: 0.5, min_duration_s: 2, min_canary_requests: 20}, "
         "{weight: 1.0, min_duration_s: 2, min_canary_requests: 20}]")


@pytest.fixture(scope="module")
def digits(ray_cluster, ray_driver, run_cli, shell_env):
    from raymlops.auth import ensure_admin_token

    data = prepare_dataset(PrepareConfig(dataset="digits")).directory
    for extra in ("", " --set train.seed=1 --set gate.margin=-1.0"):
        done = run_cli("raymlops train " + TRAIN.format(data=data) + extra, shell_env, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    start_monitor(MODEL, None, MONITOR)
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"route_prefix=/{MODEL}", "records.sink=monitor",
                                         "records.flush_ms=50", "replicas.max_replicas=1"])
    client = httpx.Client(base_url=deploy(cfg).url, timeout=60)
    images = [np.asarray(v, dtype=np.float32).reshape(1, 8, 8) for v in
              read_table(split_uri(data, "test")).column("image").to_pylist()]
    yield client, images, {"authorization": f"Bearer {ensure_admin_token()}"}
    client.close()
    remove_served_model(MODEL, ray_cluster)


def test_a_cnn_trains_on_two_workers_and_answers_v2_tensors(digits, registry):
    client, images, _ = digits
    v1 = registry.get(f"{MODEL}:1")
    assert v1.metrics["accuracy"] > 0.6, v1.metrics
    assert v1.lineage["config"]["scaling"]["num_workers"] == 2 and registry.aliases(MODEL)["champion"] == 1
    checked = client.get(f"/v1/models/{MODEL}").json()["environment"]["1"]
    assert checked["status"] == "match" and set(checked["recorded"]["packages"]) == {"torch", "numpy"}, checked
    meta = client.get(f"/v2/models/{MODEL}").json()
    assert meta["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    batch = np.stack(images[:3])
    body = {"inputs": [{"name": "image", "shape": [3, 1, 8, 8], "datatype": "FP32", "data": batch.reshape(-1).tolist()}]}
    answer = client.post(f"/v2/models/{MODEL}/infer", json=body)
    assert answer.status_code == 200, answer.text
    classes, proba = answer.json()["outputs"]
    assert classes["shape"] == [3] and proba["shape"] == [3, 10] and all(c in "0123456789" for c in classes["data"])
    v1_answer = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [{"image": images[0].tolist()}]})
    assert v1_answer.status_code == 200 and v1_answer.json()["predictions"][0]["class"] == classes["data"][0]
    bad = client.post(f"/v2/models/{MODEL}/infer", json={"inputs": [{**body["inputs"][0], "shape": [3, 8, 8]}]})
    assert bad.status_code == 422 and bad.json()["error"].startswith("inputs[0].shape: "), bad.text


def test_inverted_images_drift_on_the_embedding_and_the_candidate_is_promoted(digits, registry, run_cli, shell_env):
    client, images, admin = digits

    def send(count, invert=False):
        for i in range(count):
            image = images[i % len(images)]
            image = 16.0 - image if invert else image
            response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [{"image": image.tolist()}]})
            assert response.status_code == 200, response.text

    send(150)
    time.sleep(0.3)
    calm = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=60", headers=admin).json()["versions"]["1"]
    assert set(calm["reports"]["feature"]["p_values"]) == {f"emb_{i}" for i in range(8)}
    assert calm["reports"]["feature"]["drift"] is False, calm["reports"]["feature"]
    send(150, invert=True)
    time.sleep(0.3)
    shifted = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=60", headers=admin).json()["versions"]["1"]
    assert "feature" in shifted["drifting"] and "mmd" in shifted["drifting"], shifted["reports"]

    started = run_cli(f"raymlops rollout start {MODEL} --route-prefix /{MODEL} --set '{STEPS}' "
                      "--set poll_interval_s=1 --set gates.block_on_output_drift=false", shell_env)
    assert started.returncode == 0, started.stderr
    steady = [{"image": image.tolist()} for image in images[:50]]
    promoted, failures, _ = promote_under_traffic(client, MODEL, steady, registry)
    assert promoted, [(e.kind, e.payload.get("reasons")) for e in registry.events(MODEL)][-6:]
    assert registry.aliases(MODEL)["champion"] == 2 and failures == []
