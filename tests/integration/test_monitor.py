"""The drift monitor on the session cluster: records from the model server's replicas reach
the DriftMonitor actor; in-distribution traffic leaves it calm, shifted traffic is flagged
once; the prediction log is exported; a SIGKILLed monitor comes back from its snapshot."""

import json
import os
import random
import signal
import threading
import time

import httpx
import pytest

from raymlops.config import ServeConfig, load_config
from raymlops.data.tables import read_table, split_uri
from raymlops.monitor.client import start_monitor
from raymlops.serve.deploy import deploy
from raymlops.testing import register_untrained_version, remove_served_model

MODEL = "monitored"
FAST = ["window.size=100", "window.min_samples=20", "window.max_wait_s=2", "detectors.mmd.every=2", "detectors.mmd.min_interval_s=0",
        "detectors.mmd.n_permutations=20", "detectors.mmd.reference_rows=200", "detectors.online.enabled=true",
        "detectors.online.ert=50", "detectors.online.window_size=10", "detectors.online.n_bootstraps=300",
        "detectors.online.reference_rows=200", "detectors.online.sample_rate=0.01",
        # the fast online detector spends 4 of 9 false alarms per 20,000 rows (200 sampled rows over ERT 50);
        # the window tests share the other 5 (α 0.01 per window): calm traffic stays calm
        "detectors.budget.false_alarms=9", "detectors.budget.per_rows=20000",
        "snapshot_every_s=1", "prediction_log.flush_every_s=1"]


@pytest.fixture(scope="module")
def monitored(ray_cluster, ray_driver, penguins_data):
    from raymlops.actors import NAMESPACE, monitor_name
    from raymlops.auth import ensure_admin_token
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, MODEL, penguins_data, seed=0)
    registry.set_alias(MODEL, "champion", 1)
    registry.close()
    start_monitor(MODEL, None, FAST)
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"app_name={MODEL}", f"route_prefix=/{MODEL}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.max_replicas=1"])
    deployed = deploy(cfg)  # the monitor already runs: deploy's own start is a no-op
    rows = read_table(split_uri(penguins_data, "test")).drop_null().to_pylist()
    features = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    rows = [{k: row[k] for k in features} for row in rows]
    client = httpx.Client(base_url=deployed.url, timeout=60)
    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    actor = ray_driver.get_actor(monitor_name(MODEL), namespace=NAMESPACE)
    yield client, rows, admin, actor
    client.close()
    remove_served_model(MODEL, ray_cluster)


def send(client, rows, count, shift=0.0):
    for i in range(count):
        row = dict(rows[i % len(rows)])
        if shift:
            row["bill_length_mm"] += shift
            row["body_mass_g"] += 100 * shift
        response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]})
        assert response.status_code == 200, response.text


def check_now(client, admin):
    time.sleep(0.3)  # the replica flushes its records every 50 ms
    response = client.post(f"/admin/models/{MODEL}/drift/check", headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def drift_events(kind="drift_detected"):
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    try:
        return [e for e in registry.events(MODEL, kinds=[kind], limit=None)]
    finally:
        registry.close()


def test_in_distribution_traffic_is_calm_and_shifted_traffic_is_flagged_once(monitored, ray_driver):
    client, rows, admin, actor = monitored
    send(client, rows, 200)
    status = check_now(client, admin)
    v1 = status["versions"]["1"]
    assert status["counters"]["rows_ingested"] >= 200 and status["counters"].get("windows_checked", 0) >= 2, \
        status["last_error"]
    assert v1["reports"]["feature"]["drift"] is False, v1["reports"]["feature"]
    assert set(v1["reports"]["feature"]["p_values"]) == set(rows[0])
    assert "output" in v1["reports"] and "mmd" in v1["reports"]
    assert drift_events() == []
    # the budget, the calibrated thresholds and the accuracy estimate, per version
    budget = v1["budget"]
    assert budget["false_alarms"] == 9 and budget["rows"] >= 200 and budget["alarms"] == 0, budget
    assert budget["detectors"]["feature"]["looks"] >= 2 and budget["detectors"]["online"]["allocation"]["ert"] == 50
    feature = v1["reports"]["feature"]
    assert feature["threshold"] == pytest.approx(v1["calibration"]["feature"]["threshold"], rel=1e-4)
    assert feature["threshold"] > 0 and feature["alpha"] > 0
    assert set(feature["effects"]) == set(rows[0]) and feature["min_effect"]["bill_length_mm"] == 0.1
    assert v1["reports"]["output"]["backend"] == "exact"
    estimate = v1["accuracy_estimate"]
    assert estimate["state"] == "ready" and 0 <= estimate["estimated_accuracy"] <= 1, estimate

    send(client, rows, 200, shift=15.0)
    status = check_now(client, admin)
    v1 = status["versions"]["1"]
    assert "feature" in v1["drifting"], v1
    assert v1["reports"]["feature"]["p_values"]["bill_length_mm"] < 0.001
    send(client, rows, 200, shift=15.0)
    check_now(client, admin)
    feature_events = [e for e in drift_events() if e.payload["detector"] == "feature"]
    assert len(feature_events) == 1 and feature_events[0].version == 1, "a drift event is written once, on the change"
    assert feature_events[0].payload["report"]["drift"] is True

    health = ray_driver.get(actor.health.remote())
    assert health["1"]["requests"] >= 600 and health["1"]["error_rate"] == 0.0
    pid = ray_driver.get(actor.__ray_call__.remote(lambda self: os.getpid()))
    priority = {int(tid): (os.getpriority(os.PRIO_PROCESS, int(tid)), os.sched_getscheduler(int(tid)))
                for tid in os.listdir(f"/proc/{pid}/task")}
    assert priority[pid][0] < 19 and priority[pid][1] != os.SCHED_IDLE, priority  # checks: thread — the checks
    assert (19, os.SCHED_IDLE) in priority.values(), priority  # thread only, in the idle class
    assert health["1"]["latency_p99_ms"] is not None and sum(health["1"]["predictions"].values()) >= 600

    drift = client.get(f"/v1/models/{MODEL}/drift")
    assert drift.status_code == 200 and drift.json()["versions"]["1"]["drifting"]


def test_drift_metrics_reach_the_prometheus_endpoint(monitored, ray_cluster):
    wanted = ["ray_raymlops_drift_p_value", "ray_raymlops_drift_detected", "ray_raymlops_monitor_rows_ingested_total"]
    deadline, lines, flags = time.time() + 40, [], []
    while time.time() < deadline:  # gauges are exported every few seconds: the calm phase's 0 may still show
        text = httpx.get(ray_cluster.metrics, timeout=10).text
        lines = [line for line in text.splitlines() if f'model="{MODEL}"' in line]
        flags = [line for line in lines if line.startswith("ray_raymlops_drift_detected") and 'detector="feature"' in line]
        if all(any(line.startswith(name) for line in lines) for name in wanted) and flags \
                and flags[0].rstrip().endswith("1.0"):
            break
        time.sleep(1)
    assert all(any(line.startswith(name) for line in lines) for name in wanted), wanted
    assert flags and flags[0].rstrip().endswith("1.0"), flags


def test_online_detector_is_calibrated_once_and_kept_with_the_version(monitored, ray_driver):
    client, rows, admin, actor = monitored
    deadline = time.time() + 120
    while time.time() < deadline:
        status = ray_driver.get(actor.status.remote())
        if status["versions"]["1"]["online_detector"] == "ready":
            break
        time.sleep(1)
    assert status["versions"]["1"]["online_detector"] == "ready", status["versions"]["1"]
    send(client, rows, 100, shift=15.0)
    report = check_now(client, admin)["versions"]["1"]["reports"].get("online")
    assert report is not None and report["window_rows"] > 0


def test_drift_status_cli_and_prediction_export(monitored, run_cli, shell_env, tmp_path):
    done = run_cli(f"raymlops drift status {MODEL} --route-prefix /{MODEL}", shell_env)
    assert done.returncode == 0, done.stderr
    assert "v1: DRIFT" in done.stdout and "feature" in done.stdout
    out = tmp_path / "log.parquet"
    done = run_cli(f"raymlops predictions export {MODEL} --since 1h -o {out}", shell_env)
    assert done.returncode == 0, done.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.num_rows >= 600 and {"request_id", "version", "prediction", "f.bill_length_mm"} <= set(table.column_names)
    bad = run_cli(f"raymlops predictions export {MODEL} --since yesterday -o {out}", shell_env)
    assert bad.returncode == 2 and "--since" in bad.stderr


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(tmp_path, *args):
    """Run Debian's headless chromium (installed by .ci/run) with a fresh profile; returns stdout."""
    import shutil
    import subprocess

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        if os.environ.get("RAYMLOPS_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    done = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}", *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_drift_report_page_shows_what_drifted_in_a_browser(monitored, run_cli, shell_env, tmp_path):
    client = monitored[0]
    page = tmp_path / "report.html"
    done = run_cli(f"raymlops drift report {MODEL} --html {page} --json", shell_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["version"] == 1 and "feature" in report["drifting"]
    bill = report["features"]["bill_length_mm"]
    assert bill["recent_mean"] > bill["reference_mean"] + 10  # the window it tested last was the shifted one
    assert any(point["drift"] for point in report["p_values"]["feature"])
    assert "drift_detected" in [event["kind"] for event in report["timeline"]]
    served = client.get(f"/v1/models/{MODEL}/drift/report", params={"format": "html"})
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
    assert f"Drift report: {MODEL} v1" in served.text

    # As a person sees it: rendered by a browser with no network, then looked at.
    dom = chromium(tmp_path, "--dump-dom", page.as_uri())
    assert f"Drift report: {MODEL} v1" in dom and "DRIFT (" in dom and "drift_detected" in dom
    for label in ("distribution of bill_length_mm", "distribution of island", "p-values of feature"):
        assert f'aria-label="{label}"' in dom, label
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri())
    from PIL import Image

    colours = {colour for _count, colour in Image.open(shot).convert("RGB").getcolors(1 << 20)}
    assert (0xe0, 0x7b, 0x39) in colours and (0x7a, 0x8c, 0xa5) in colours  # recent and reference bars drawn
    assert (0xc0, 0x39, 0x2b) in colours  # a drifting run in red


def test_sigkilled_monitor_restores_its_snapshot_and_keeps_going(monitored, ray_driver):
    client, rows, admin, actor = monitored
    before = ray_driver.get(actor.status.remote())
    # the online detector, fed a few rows a window, may flip between windows: its events are its own
    window_events = lambda: [e for e in drift_events() if e.payload["detector"] != "online"]  # noqa: E731
    events_before = len(window_events())
    stop = threading.Event()
    failures = []

    def load():
        deadline = time.time() + 60
        i = 0
        while not stop.is_set() and time.time() < deadline:
            row = dict(rows[i % len(rows)], bill_length_mm=rows[i % len(rows)]["bill_length_mm"] + 15.0)
            if client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]}).status_code != 200:
                failures.append(i)
            i += 1

    loader = threading.Thread(target=load)
    loader.start()
    try:
        time.sleep(1.5)
        os.kill(ray_driver.get(actor.pid.remote()), signal.SIGKILL)
        deadline = time.time() + 60
        after = None
        while time.time() < deadline:
            try:
                after = ray_driver.get(actor.status.remote(), timeout=5)
                if after["counters"].get("restarts", 0) > before["counters"].get("restarts", 0):
                    break
            except Exception:  # noqa: BLE001 - restarting
                pass
            time.sleep(0.5)
        time.sleep(2)
    finally:
        stop.set()
        loader.join(90)
    assert failures == [], "callers must never see the monitor's death"
    assert after is not None and after["restored_snapshot_age_s"] is not None
    assert after["counters"]["rows_ingested"] >= before["counters"]["rows_ingested"] - 200
    status = check_now(client, admin)
    assert status["counters"]["rows_ingested"] > after["counters"]["rows_ingested"], "ingestion resumed"
    assert "feature" in status["versions"]["1"]["drifting"]
    assert len(window_events()) == events_before, "no drift event is written twice after a restart"


def test_a_sharded_monitor_splits_the_stream_and_speaks_with_one_voice(ray_cluster, ray_driver, penguins_data):
    """``shards=2``: replicas send each request to the shard its id hashes to; shard 0 merges the
    verdicts (one set of events), the health and accuracy a rollout judges, and routes labels."""
    from raymlops.actors import NAMESPACE, monitor_name
    from raymlops.auth import ensure_admin_token
    from raymlops.config import RegistryConfig
    from raymlops.monitor.shards import shard_of
    from raymlops.registry import Registry

    model = "sharded"
    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, model, penguins_data, seed=0)
    registry.set_alias(model, "champion", 1)
    start_monitor(model, None, ["shards=2", "window.size=100", "window.min_samples=20", "detectors.mmd.enabled=false",
                                "snapshot_every_s=1"])
    cfg = load_config(None, ServeConfig, [f"model_name={model}", f"app_name={model}", f"route_prefix=/{model}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.max_replicas=1"])
    client = httpx.Client(base_url=deploy(cfg).url, timeout=60)
    admin = {"authorization": f"Bearer {ensure_admin_token()}"}
    # distinct calm rows from every split, in random order (the test split alone, cycled, repeats rows within
    # a shard's window; the splits keep the data set's order, by species)
    table = [row for split in ("train", "valid", "test")
             for row in read_table(split_uri(penguins_data, split)).drop_null().to_pylist()]
    random.Random(0).shuffle(table)
    features = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    try:
        def answer(i, shift=0.0):
            row = {k: table[i % len(table)][k] for k in features}
            row["bill_length_mm"] += shift
            response = client.post(f"/v1/models/{model}/predict", json={"instances": [row]})
            assert response.status_code == 200, response.text
            return response.json()["request_id"], table[i % len(table)]["species"]

        calm = [answer(i) for i in range(240)]
        assert set(shard_of([rid for rid, _ in calm], 2).tolist()) == {0, 1}
        time.sleep(0.5)
        labelled = client.post(f"/v1/models/{model}/feedback", headers=admin, json={
            "feedback": [{"request_id": rid, "label": label} for rid, label in calm[:40]]})
        assert labelled.status_code == 200 and labelled.json()["accepted"] == 40, labelled.text
        again = client.post(f"/v1/models/{model}/feedback", headers=admin, json={
            "feedback": [{"request_id": rid, "label": label} for rid, label in calm[40:42] + calm[:1]]})
        assert again.status_code == 409, again.text  # one already labelled: nothing recorded, on either shard
        status = client.post(f"/admin/models/{model}/drift/check", headers=admin).json()
        shards = status["shards"]
        assert [s["shard"] for s in shards] == [0, 1] and all(s["reachable"] for s in shards), shards
        assert all(s["rows_ingested"] > 0 for s in shards) and sum(s["rows_ingested"] for s in shards) == 240, shards
        assert status["versions"]["1"]["drifting"] == [], status["versions"]["1"]["reports"]

        for i in range(400):
            answer(i, shift=15.0)
        status = client.post(f"/admin/models/{model}/drift/check", headers=admin).json()
        assert "feature" in status["versions"]["1"]["drifting"], status["versions"]["1"]
        assert sum(s["windows_checked"] for s in status["shards"]) >= 6, status["shards"]
        events = [e for e in registry.events(model, kinds=["drift_detected"], limit=None)
                  if e.payload["detector"] == "feature"]
        assert len(events) == 1, "one set of events for all shards"

        leader = ray_driver.get_actor(monitor_name(model), namespace=NAMESPACE)
        health = ray_driver.get(leader.health.remote(), timeout=60)
        assert health["1"]["requests"] == 640, health
        accuracy = ray_driver.get(leader.accuracy.remote(), timeout=60)
        assert accuracy["1"]["labelled"] == 40, accuracy  # the call with a repeat recorded nothing
    finally:
        client.close()
        registry.close()
        remove_served_model(model, ray_cluster)
    with pytest.raises(ValueError):
        ray_driver.get_actor(monitor_name(model, 1), namespace=NAMESPACE)  # undeploy stopped every shard


def test_checks_in_an_actor_of_their_own_run_at_the_lowest_priority_and_survive_its_death(ray_cluster, ray_driver,
                                                                                            penguins_data):
    """``checks=actor``: the shard's windows are tested in an unnamed runner actor at niceness 19;
    a runner that dies costs the window it held (counted) and the next window starts a new one;
    the runner ends with its shard."""
    from ray.util.state import list_actors

    from raymlops.actors import NAMESPACE, monitor_name, stop_model_actors
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry
    from raymlops.testing import wait_for

    model = "checked-apart"
    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, model, penguins_data, seed=0)
    registry.close()
    start_monitor(model, None, ["checks=actor", "window.size=50", "window.min_samples=20",
                                "detectors.mmd.enabled=false", "detectors.online.enabled=false"])
    monitor = ray_driver.get_actor(monitor_name(model), namespace=NAMESPACE)
    rows = read_table(split_uri(penguins_data, "test")).drop_null().to_pylist()
    features = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    sent = 0

    def ingest(count, shift=0.0):
        nonlocal sent
        chosen = [rows[(sent + i) % len(rows)] for i in range(count)]
        batch = {"request_id": [f"r{sent + i}" for i in range(count)], "time": [time.time()] * count,
                 "model": [model] * count, "version": [1] * count, "arm": ["stable"] * count,
                 "latency_ms": [1.0] * count, "status": [200] * count,
                 "prediction": [row["species"] for row in chosen], "confidence": [0.9] * count,
                 **{f"f.{name}": [row[name] + shift if name == "bill_length_mm" else row[name] for row in chosen]
                    for name in features}}
        sent += count
        ray_driver.get(monitor.ingest.remote(batch), timeout=60)
        return ray_driver.get(monitor.flush.remote(1), timeout=300)["counters"]

    def runners():
        return [a for a in list_actors(filters=[("class_name", "=", "CheckRunner"), ("state", "=", "ALIVE")], limit=100)]

    try:
        counters = ingest(150)
        assert counters["windows_checked"] == 3 and counters["check_actor_starts"] == 1, counters
        assert counters.get("checks_failed", 0) == 0
        status = ray_driver.get(monitor.status.remote(), timeout=60)
        assert status["versions"]["1"]["reports"]["feature"]["drift"] is False
        assert status["versions"]["1"]["accuracy_estimate"]["state"] == "ready"  # the runner's estimate came back
        (runner,) = runners()
        assert os.getpriority(os.PRIO_PROCESS, runner.pid) == 19 and os.sched_getscheduler(runner.pid) == os.SCHED_IDLE

        os.kill(runner.pid, signal.SIGKILL)
        wait_for(lambda: not runners(), timeout_s=60)
        counters = ingest(150, shift=15.0)  # three windows: the first meets the dead runner
        assert counters["checks_failed"] == 1 and counters["check_actor_starts"] == 2, counters
        assert counters["windows_checked"] == 5, counters
        status = ray_driver.get(monitor.status.remote(), timeout=60)
        assert "feature" in status["versions"]["1"]["drifting"], status["versions"]["1"]
        assert len(runners()) == 1
    finally:
        stop_model_actors(model)
    wait_for(lambda: not runners(), timeout_s=60)  # the runner ended with its shard
