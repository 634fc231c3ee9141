"""The closed loop on the session cluster: train v1 → deploy → in-distribution traffic →
shifted traffic → drift detected → retraining job submitted → v2 registered with lineage to
the drift event → canary rollout → promoted. And a deliberately bad candidate is rolled back
with no failed request returned to callers."""

import os
import signal
import threading
import time

import httpx
import pytest

from raymlops.config import ServeConfig, load_config
from raymlops.data.tables import read_table, split_uri
from raymlops.monitor.client import start_monitor
from raymlops.serve.deploy import deploy
from raymlops.testing import register_untrained_version, remove_served_model, wait_for

MODEL = "loop"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
FAST_STEPS = ("steps=[{weight: 0.5, min_duration_s: 2, min_canary_requests: 20}, "
              "{weight: 1.0, min_duration_s: 2, min_canary_requests: 20}]")
MONITOR = ["window.size=100", "window.min_samples=40", "window.max_wait_s=2", "detectors.mmd.enabled=false",
           "detectors.online.enabled=false", "snapshot_every_s=2", "prediction_log.flush_every_s=1",
           "retrain.enabled=true", "retrain.detectors=[feature]", "retrain.k=1", "retrain.n=1", "retrain.cooldown_s=900",
           "retrain.train_overrides=[train.epochs=2, scaling.num_workers=1, gate.margin=-1.0]",
           f'retrain.rollout_overrides=["{FAST_STEPS}", poll_interval_s=1, gates.block_on_output_drift=false]']


def rows_of(penguins_data):
    rows = read_table(split_uri(penguins_data, "test")).drop_null().to_pylist()
    return [{k: row[k] for k in FEATURES} for row in rows], [row["species"] for row in rows]


def shifted(row, amount=15.0):
    return {**row, "bill_length_mm": row["bill_length_mm"] + amount, "body_mass_g": row["body_mass_g"] + 100 * amount}


@pytest.fixture(scope="module")
def loop(ray_cluster, ray_driver, penguins_data, shell_env, run_cli):
    from raymlops.auth import ensure_admin_token

    trained = run_cli(f"raymlops train --set model_name={MODEL} --set train.epochs=4 --set scaling.num_workers=1",
                      shell_env, timeout=600)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    start_monitor(MODEL, None, MONITOR)
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"app_name={MODEL}", f"route_prefix=/{MODEL}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.max_replicas=1"])
    deployed = deploy(cfg)
    client = httpx.Client(base_url=deployed.url, timeout=60)
    yield client, {"authorization": f"Bearer {ensure_admin_token()}"}
    client.close()
    remove_served_model(MODEL, ray_cluster)


def predict(client, row):
    response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]})
    assert response.status_code == 200, response.text
    return response


def test_drift_retrains_canaries_and_promotes(loop, penguins_data, registry, run_cli, shell_env):
    client, admin = loop
    rows, labels = rows_of(penguins_data)
    calm_answers = [predict(client, row).json()["request_id"] for row in rows[:60]]
    # feedback labels for the calm traffic: they join the retraining data
    time.sleep(0.5)  # the replica flushes its records to the monitor every 50 ms
    feedback = client.post(f"/v1/models/{MODEL}/feedback",
                           json={"feedback": [{"request_id": rid, "label": label}
                                              for rid, label in zip(calm_answers, labels[:60])]}, headers=admin)
    assert feedback.status_code == 200 and feedback.json()["accepted"] == len(calm_answers), feedback.text
    unknown = client.post(f"/v1/models/{MODEL}/feedback", json={"request_id": "nope", "label": labels[0]}, headers=admin)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["problem"]
    bad_label = client.post(f"/v1/models/{MODEL}/feedback", json={"request_id": calm_answers[0], "label": "Emperor"},
                            headers=admin)
    assert bad_label.status_code == 422 and bad_label.json()["error"]["field"] == "body.label"
    calm = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=40", headers=admin).json()
    assert calm["versions"]["1"]["drifting"] == [] and calm["retrain"]["in_flight"] is None
    assert calm["counters"]["labelled_rows_written"] == len(calm_answers)

    for i in range(120):
        predict(client, shifted(rows[i % len(rows)]))
    time.sleep(0.3)
    status = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=40", headers=admin).json()
    assert "feature" in status["versions"]["1"]["drifting"], status["versions"]["1"]
    drift_event = [e for e in registry.events(MODEL, kinds=["drift_detected"]) if e.payload["detector"] == "feature"][-1]
    submitted = wait_for(lambda: registry.events(MODEL, kinds=["retrain_submitted"]), 30)
    assert submitted and submitted[0].payload["drift_event_id"] == drift_event.id

    # keep traffic flowing while the job trains and the rollout walks its steps
    stop, failures, served_by = threading.Event(), [], []

    def traffic():
        deadline = time.time() + 400
        i = 0
        while not stop.is_set() and time.time() < deadline:
            response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [shifted(rows[i % len(rows)])]})
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                served_by.append(response.json()["version"])
            i += 1
            time.sleep(0.02)

    loader = threading.Thread(target=traffic)
    loader.start()
    try:
        promoted = wait_for(lambda: registry.events(MODEL, kinds=["rollout_promote"]), 400, every_s=2)
    finally:
        stop.set()
        loader.join(60)
    finished = registry.events(MODEL, kinds=["retrain_finished"])
    assert finished and finished[0].payload["status"] == "SUCCEEDED", finished
    started = [e for e in registry.events(MODEL, kinds=["training_started"])
               if e.payload["job_id"] == submitted[0].payload["job_id"]]
    assert started, "the retraining job's first epoch was not recorded (the stall guard would stop it)"
    rollout = client.get(f"/admin/models/{MODEL}/rollout", headers=admin).json()
    assert promoted, ([(e.kind, e.payload.get("reasons"), e.payload.get("weight"))
                       for e in registry.events(MODEL) if e.kind.startswith("rollout")], rollout.get("last_decision"))
    v2 = registry.get(f"{MODEL}:2")
    assert v2.lineage["trigger"]["kind"] == "drift" and v2.lineage["parent_version"] == 1
    assert v2.lineage["trigger"].get("drift_event_id") == drift_event.id or \
        v2.lineage.get("drift_event_id") == drift_event.id, v2.lineage["trigger"]
    assert any(f"_labels/model={MODEL}/" in d["uri"] for d in v2.lineage["data"]), \
        ([d["uri"][-40:] for d in v2.lineage["data"]], submitted[0].payload["overrides"][-3:])
    assert registry.aliases(MODEL)["champion"] == 2 and "candidate" not in registry.aliases(MODEL)
    steps = registry.events(MODEL, kinds=["rollout_advance"])
    assert [e.payload["weight"] for e in steps] == [0.5, 1.0]
    assert failures == [] and 2 in served_by
    describe = client.get(f"/v1/models/{MODEL}").json()
    assert describe["stable_version"] == 2 and describe["canary_version"] == 1  # old champion kept warm

    # within the rollback window the old champion comes back at once
    back = run_cli(f"raymlops rollout rollback {MODEL} --route-prefix /{MODEL}", shell_env)
    assert back.returncode == 0, back.stderr
    assert registry.aliases(MODEL)["champion"] == 1
    assert wait_for(lambda: client.get(f"/v1/models/{MODEL}").json()["stable_version"] == 1, 5)
    assert registry.events(MODEL, kinds=["rollout_rollback"])[-1].payload["numbers"] == {"champion_restored": 1}


def test_bad_candidate_is_rolled_back_by_its_gate_even_across_a_controller_restart(loop, penguins_data, registry,
                                                                                    run_cli, shell_env, ray_driver):
    client, admin = loop
    rows, _ = rows_of(penguins_data)
    bad = register_untrained_version(registry, MODEL, penguins_data, seed=7, constant_class=2)
    registry.set_alias(MODEL, "candidate", bad.version)
    started = run_cli(f"raymlops rollout start {MODEL} --route-prefix /{MODEL} --set 'steps=[{{weight: 0.3, "
                      "min_duration_s: 30, min_canary_requests: 500}]' --set poll_interval_s=1 "
                      "--set gates.output_drift_min_rows=30", shell_env)
    assert started.returncode == 0, started.stderr
    assert "running" in started.stdout
    again = run_cli(f"raymlops rollout start {MODEL} --route-prefix /{MODEL}", shell_env)
    assert again.returncode == 2 and "already running" in again.stderr
    # the controller dies mid-rollout; Ray restarts it and it continues from its persisted state
    controller = ray_driver.get_actor(f"raymlops-rollout-{MODEL}", namespace="raymlops")
    os.kill(ray_driver.get(controller.pid.remote()), signal.SIGKILL)
    failures, answers = [], []
    deadline = time.time() + 240  # bounded; a busy 2-CPU cluster restarts the actor slowly
    while time.time() < deadline and not [e for e in registry.events(MODEL, kinds=["rollout_rollback"])
                                          if e.version == bad.version]:
        response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [rows[len(answers) % len(rows)]]})
        if response.status_code != 200:
            failures.append(response.status_code)
        answers.append(response.headers.get("x-raymlops-version"))
        time.sleep(0.01)
    rollback = [e for e in registry.events(MODEL, kinds=["rollout_rollback"]) if e.version == bad.version]
    assert rollback, ("the constant candidate was not rolled back",
                      client.get(f"/admin/models/{MODEL}/rollout", headers=admin).json(),
                      [(e.kind, e.version, e.payload.get("reasons")) for e in registry.events(MODEL)][-8:],
                      {v: answers.count(v) for v in set(answers)})
    assert "predictions drift" in rollback[-1].payload["reasons"][0]
    assert rollback[-1].payload["numbers"]["canary"]["requests"] >= 1
    assert failures == []
    assert "candidate" not in registry.aliases(MODEL)
    assert wait_for(lambda: client.get(f"/v1/models/{MODEL}").json()["canary_version"] is None, 10)
    status = run_cli(f"raymlops rollout status {MODEL} --route-prefix /{MODEL}", shell_env)
    assert status.returncode == 0 and "rolled_back" in status.stdout
    assert client.get(f"/admin/models/{MODEL}/rollout").status_code == 401


# --------------------------------------------------------------------------- abuse: feedback and pinned calls

def test_labels_fit_only_answers_this_server_gave_once_and_need_the_feedback_scope(loop, penguins_data):
    client, admin = loop
    rows, labels = rows_of(penguins_data)
    url = f"/v1/models/{MODEL}/feedback"
    answer = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [rows[0]]}, headers={"x-request-id": "mine"})
    body = answer.json()
    assert body["correlation_id"] == "mine" and body["request_id"] != "mine"
    item = {"request_id": body["request_id"], "label": labels[0]}
    # no credential, or an inference caller: refused before anything is looked up
    assert client.post(url, json=item).status_code == 401
    # right after its answer, with no pause: the label waits for the record instead of racing it
    first = client.post(url, json=item, headers=admin)
    assert first.status_code == 200 and first.json()["accepted"] == 1, first.text
    for _ in range(3):  # the same answer labelled again never counts again
        again = client.post(url, json=item, headers=admin)
        assert again.status_code == 409 and again.json()["error"]["field"] == "feedback", again.text
    for foreign in ("mine", "0" * 40, body["request_id"][:-1] + "x"):  # a caller's id, a guess, a forgery
        refused = client.post(url, json={"request_id": foreign, "label": labels[0]}, headers=admin)
        assert refused.status_code == 404 and "issued by this server" in refused.json()["error"]["problem"]


def test_calls_pinned_to_a_version_do_not_count_as_its_rollout_evidence(loop, penguins_data, ray_driver):
    from raymlops.actors import NAMESPACE, monitor_name

    client, admin = loop
    rows, _ = rows_of(penguins_data)
    monitor = ray_driver.get_actor(monitor_name(MODEL), namespace=NAMESPACE)
    version = client.get(f"/v1/models/{MODEL}").json()["stable_version"]
    tensors = [{"name": k, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
               for k, v in rows[0].items()]
    url = f"/v2/models/{MODEL}/versions/{version}/infer"
    assert client.post(url, json={"inputs": tensors}).status_code == 401  # pinning needs a key or the admin token
    client.post(f"/admin/models/{MODEL}/drift/check?min_rows=100000", headers=admin)  # every record delivered
    before = ray_driver.get(monitor.health.remote())[str(version)]["requests"]
    for _ in range(15):
        assert client.post(url, json={"inputs": tensors}, headers=admin).status_code == 200
    status = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=100000", headers=admin).json()
    assert ray_driver.get(monitor.health.remote())[str(version)]["requests"] == before
    assert status["versions"][str(version)]["side_rows"]["pinned"] >= 15
