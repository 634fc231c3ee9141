"""Chaos on the session cluster: parts of a served model's loop are killed or broken under a
bounded open-loop load on 127.0.0.1 at a fixed request rate. Each scenario checks what was lost —
every answered request leaves one record row, which the drift monitor counts or its replica reports
lost, exactly — how long recovery took, and that the registry, Serve and the rollout controller
agree afterwards. The figures are written to docs/RELIABILITY.md at the end of the module."""

import os
import platform
import re
import shutil
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from raymlops.actors import NAMESPACE, controller_name, monitor_name
from raymlops.config import RegistryConfig, ServeConfig, SynthConfig, load_config
from raymlops.data import synthesize
from raymlops.data.tables import read_table, split_uri
from raymlops.monitor.client import start_monitor
from raymlops.registry import Registry
from raymlops.serve.deploy import deploy
from raymlops.submission import submit
from raymlops.submission import wait_for as wait_for_job
from raymlops.submission.client import job_client
from raymlops.testing import OpenLoopLoad, register_untrained_version, remove_served_model, wait_for

MODEL = "chaos"
RATE_PER_S = 40
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
MONITOR = ["window.size=200", "window.min_samples=50", "window.max_wait_s=5", "detectors.mmd.enabled=false",
           "detectors.online.enabled=false", "snapshot_every_s=2", "prediction_log.flush_every_s=1"]
RELIABILITY = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
FIGURES: dict[str, dict] = {}


@pytest.fixture(scope="module")
def chaos(ray_cluster, ray_driver, penguins_data):
    from raymlops.auth import ensure_admin_token

    registry = Registry.from_config(RegistryConfig())
    for seed in (0, 1):
        register_untrained_version(registry, MODEL, penguins_data, seed=seed)
    registry.set_alias(MODEL, "champion", 1)
    registry.close()
    start_monitor(MODEL, None, MONITOR)
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"app_name={MODEL}", f"route_prefix=/{MODEL}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.min_replicas=2",
                                         "replicas.max_replicas=2"])
    deployed = deploy(cfg)
    row = {k: v for k, v in read_table(split_uri(penguins_data, "test")).drop_null().to_pylist()[0].items()
           if k in FEATURES}
    client = httpx.Client(base_url=deployed.url, timeout=60)
    yield client, {"authorization": f"Bearer {ensure_admin_token()}"}, row, deployed.url
    client.close()
    remove_served_model(MODEL, ray_cluster)
    if FIGURES:
        write_reliability(FIGURES)


def load(url: str, row: dict, duration_s: float) -> OpenLoopLoad:
    return OpenLoopLoad(f"{url}/v1/models/{MODEL}/predict", {"instances": [row]}, RATE_PER_S, duration_s).start()


def replica_counts(client) -> dict[str, dict]:
    """Each replica's record stream (describe is answered by one replica at a time: ask until both did)."""
    seen: dict[str, dict] = {}
    for _ in range(60):
        records = client.get(f"/v1/models/{MODEL}").json()["records"]
        seen[records["replica"]] = records
        if len(seen) >= 2:
            break
    return seen


def settled(client, admin) -> tuple[int, int, dict]:
    """Once every replica delivered what it holds: rows the monitor counted, rows the live
    replicas report lost, and the monitor's status."""
    def delivered():
        counts = replica_counts(client)
        return counts if all(c["buffered_rows"] == 0 and c["waiting_rows"] == 0 for c in counts.values()) else None

    counts = wait_for(delivered, 60, every_s=0.5) or replica_counts(client)
    response = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=1000000000", headers=admin)
    assert response.status_code == 200, response.text
    status = response.json()
    return status["counters"].get("rows_ingested", 0), sum(c["lost_rows"] for c in counts.values()), status


def alive(call, timeout_s: float = 120.0) -> float:
    """Seconds until ``call()`` answers without raising (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            call()
            return time.monotonic() - started
        except Exception:  # noqa: BLE001 - still restarting
            time.sleep(0.2)
    raise AssertionError(f"not back within {timeout_s} s")


def test_the_monitor_killed_under_load_loses_no_counted_row(chaos, ray_driver):
    client, admin, row, url = chaos
    ingested_before, lost_before, _ = settled(client, admin)
    traffic = load(url, row, 20)
    time.sleep(6)
    monitor = ray_driver.get_actor(monitor_name(MODEL), namespace=NAMESPACE)
    os.kill(ray_driver.get(monitor.pid.remote(), timeout=30), signal.SIGKILL)
    recovered_s = alive(lambda: ray_driver.get(monitor.ping.remote(), timeout=5))
    traffic.wait()
    ingested_after, lost_after, status = settled(client, admin)
    sent, ingested, lost = traffic.recorded(), ingested_after - ingested_before, lost_after - lost_before
    FIGURES["SIGKILL the drift monitor"] = {
        "requests": len(traffic.answers), "failed by status": failed(traffic), "rows sent": sent,
        "rows counted": ingested, "rows reported lost": lost, "recovery s": round(recovered_s, 1),
        "consistent": ingested + lost == sent and status["counters"].get("restarts", 0) >= 1}
    assert ingested + lost == sent, FIGURES["SIGKILL the drift monitor"]
    assert lost <= 0.01 * sent and failed(traffic) == {}
    assert status["counters"].get("restarts", 0) >= 1


def test_a_replica_killed_under_load_is_replaced_and_the_split_keeps_answering(chaos, ray_driver):
    from ray.util.state import list_actors

    client, admin, row, url = chaos

    def replicas():
        return [a for a in list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
                if a.class_name.startswith(f"ServeReplica:{MODEL}:ModelServer")]

    ingested_before, _, _ = settled(client, admin)
    victim = replicas()[0]
    traffic = load(url, row, 20)
    time.sleep(5)
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.monotonic()
    assert wait_for(lambda: len([a for a in replicas() if a.pid != victim.pid]) >= 2, 120, every_s=0.5)
    recovered_s = time.monotonic() - killed
    traffic.wait()
    ingested_after, _, _ = settled(client, admin)
    sent, ingested = traffic.recorded(), ingested_after - ingested_before
    FIGURES["SIGKILL a model replica"] = {
        "requests": len(traffic.answers), "failed by status": failed(traffic), "rows sent": sent,
        "rows counted": ingested, "rows reported lost": "the killed replica's count died with it",
        "rows unaccounted": sent - ingested, "recovery s": round(recovered_s, 1),
        "consistent": client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]}).status_code == 200}
    assert sum(failed(traffic).values()) <= 0.05 * len(traffic.answers), FIGURES["SIGKILL a model replica"]
    # what the killed replica held in its buffer (at most its flush interval of rows) is all it can lose
    assert 0 <= sent - ingested <= RATE_PER_S, FIGURES["SIGKILL a model replica"]
    assert FIGURES["SIGKILL a model replica"]["consistent"]


def test_an_artifact_store_refusing_writes_for_10s_loses_no_row_of_the_log(chaos, ray_driver):
    from raymlops.monitor.storage import read_prediction_log

    client, admin, row, url = chaos
    root = Path(Registry.from_config(RegistryConfig()).artifacts.root)
    broken = [root / "_monitor" / MODEL, root / "_predictions" / f"model={MODEL}"]
    ingested_before, lost_before, status_before = settled(client, admin)
    logged_before = read_prediction_log(str(root / "_predictions"), MODEL).num_rows
    traffic = load(url, row, 20)
    time.sleep(3)
    for path in broken:  # the directory becomes a file: every write under it fails (root ignores chmod)
        path.rename(path.with_name(path.name + ".away"))
        path.write_text("not a directory")
    time.sleep(10)
    snapshots = client.get(f"/v1/models/{MODEL}/drift").json()["counters"].get("snapshots", 0)
    for path in broken:
        path.unlink()
        path.with_name(path.name + ".away").rename(path)
    repaired = time.monotonic()
    assert wait_for(lambda: client.get(f"/v1/models/{MODEL}/drift").json()["counters"].get("snapshots", 0) > snapshots,
                    60, every_s=0.2)
    recovered_s = time.monotonic() - repaired  # until the monitor wrote a snapshot again
    traffic.wait()
    ingested_after, lost_after, status = settled(client, admin)
    logged = read_prediction_log(str(root / "_predictions"), MODEL).num_rows - logged_before
    counters, before = status["counters"], status_before["counters"]
    sent, ingested, lost = traffic.recorded(), ingested_after - ingested_before, lost_after - lost_before
    FIGURES["Artifact store refuses writes for 10 s"] = {
        "requests": len(traffic.answers), "failed by status": failed(traffic), "rows sent": sent,
        "rows counted": ingested, "rows reported lost": lost, "rows in the prediction log": logged,
        "recovery s": round(recovered_s, 1),
        "consistent": logged == ingested and ingested + lost == sent}
    assert counters.get("log_write_failures", 0) > before.get("log_write_failures", 0)
    assert counters.get("snapshot_failures", 0) > before.get("snapshot_failures", 0)
    assert logged == ingested and ingested + lost == sent, FIGURES["Artifact store refuses writes for 10 s"]
    assert failed(traffic) == {}


def test_the_rollout_controller_killed_again_and_again_still_promotes_consistently(chaos, ray_driver):
    client, admin, row, url = chaos
    registry = Registry.from_config(RegistryConfig())
    registry.set_alias(MODEL, "candidate", 2)
    steps = [{"weight": 0.5, "min_duration_s": 2, "min_canary_requests": 20},
             {"weight": 1.0, "min_duration_s": 2, "min_canary_requests": 20}]
    started = client.post(f"/admin/models/{MODEL}/rollout/start", headers=admin, json={
        "steps": steps, "poll_interval_s": 1, "rollback_window_s": 1,
        "gates": {"block_on_output_drift": False, "latency_slack_ms": 1000}})
    assert started.status_code == 200, started.text
    traffic = load(url, row, 120)
    controller = ray_driver.get_actor(controller_name(MODEL), namespace=NAMESPACE)
    kills, began = 0, time.monotonic()
    while kills < 6 and not registry.events(MODEL, kinds=["rollout_promote"]):
        time.sleep(3)
        try:
            os.kill(ray_driver.get(controller.pid.remote(), timeout=30), signal.SIGKILL)
            kills += 1
        except Exception:  # noqa: BLE001 - it is restarting from the previous kill
            pass
    promoted = wait_for(lambda: registry.events(MODEL, kinds=["rollout_promote"]), 120, every_s=1)
    promoted_after = time.monotonic() - began

    def agree():
        served = client.get(f"/v1/models/{MODEL}").json()
        return served if served["stable_version"] == 2 and not served["canary_weight"] else None

    served = wait_for(agree, 60, every_s=1)
    traffic.stop()
    aliases = registry.aliases(MODEL)

    def status():  # the last kill may still be restarting it
        try:
            return ray_driver.get(controller.status.remote(), timeout=30)
        except ray_driver.exceptions.ActorUnavailableError:
            return None
    state = wait_for(status, 60, every_s=1) or {"pending_decision": "the controller did not come back"}
    FIGURES["SIGKILL the rollout controller through a promotion"] = {
        "requests": len(traffic.answers), "failed by status": failed(traffic), "controller kills": kills,
        "promoted after s": round(promoted_after, 1),
        "consistent": bool(promoted) and bool(served) and aliases.get("champion") == 2
        and "candidate" not in aliases and state["pending_decision"] is None}
    registry.close()
    assert FIGURES["SIGKILL the rollout controller through a promotion"]["consistent"], (aliases, state, served)
    assert kills >= 1 and failed(traffic) == {}


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL on 127.0.0.1:25432 (run as `nobody`: it refuses to run as root; its
    directory lies outside pytest's root-only temp dir); yields (url, stop(), start())."""
    import subprocess
    import tempfile

    if not shutil.which("initdb") or not shutil.which("pg_ctl") or not shutil.which("runuser"):
        pytest.skip("PostgreSQL's initdb/pg_ctl (or runuser) are not installed")
    base = Path(tempfile.mkdtemp(prefix="rmo-postgres-"))
    os.chmod(base, 0o777)
    data = base / "data"

    def as_postgres(*args: str) -> None:
        subprocess.run(["runuser", "-u", "nobody", "--", *args], check=True, capture_output=True, timeout=120)

    as_postgres("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    control = ["pg_ctl", "-D", str(data), "-o", f"-h 127.0.0.1 -p 25432 -k {base}", "-l", str(base / "log"), "-w"]
    as_postgres(*control, "start")
    yield ("postgresql+psycopg://postgres@127.0.0.1:25432/postgres", lambda: as_postgres(*control, "-m", "fast", "stop"),
           lambda: as_postgres(*control, "start"))
    subprocess.run(["runuser", "-u", "nobody", "--", *control, "-m", "fast", "stop"], capture_output=True, timeout=120)
    shutil.rmtree(base, ignore_errors=True)


def test_postgresql_stopped_for_10s_under_load_loses_no_row_and_no_event(ray_cluster, penguins_data, postgres, tmp_path):
    import yaml

    url, stop_database, start_database = postgres
    model = "chaos-pg"
    settings = tmp_path / "registry.yaml"
    settings.write_text(yaml.safe_dump({"database_url": url, "artifact_root": str(tmp_path / "artifacts")}))
    registry = Registry.from_config(load_config(settings, RegistryConfig))
    register_untrained_version(registry, model, penguins_data, seed=0)
    registry.set_alias(model, "champion", 1)
    start_monitor(model, None, [*MONITOR, f"registry={settings}"])
    cfg = load_config(None, ServeConfig, [f"model_name={model}", f"app_name={model}", f"route_prefix=/{model}",
                                         f"registry={settings}", "records.sink=monitor", "records.flush_ms=50",
                                         "replicas.max_replicas=1"])
    deployed = deploy(cfg)
    row = {k: v for k, v in read_table(split_uri(penguins_data, "test")).drop_null().to_pylist()[0].items()
           if k in FEATURES}
    shifted = {**row, "bill_length_mm": row["bill_length_mm"] + 15, "body_mass_g": row["body_mass_g"] + 1500}
    admin = {"authorization": f"Bearer {__import__('raymlops.auth', fromlist=['x']).ensure_admin_token()}"}
    try:
        with httpx.Client(base_url=deployed.url, timeout=60) as client:
            traffic = OpenLoopLoad(f"{deployed.url}/v1/models/{model}/predict", {"instances": [shifted]}, RATE_PER_S,
                                   20).start()
            time.sleep(3)
            stop_database()
            stopped = time.monotonic()
            time.sleep(10)  # the shifted windows are checked meanwhile: the drift event cannot be written yet
            start_database()
            restarted = time.monotonic()
            traffic.wait()
            events = wait_for(lambda: registry.events(model, kinds=["drift_detected"]), 60, every_s=0.5)
            recovered_s = time.monotonic() - restarted
            status = client.post(f"/admin/models/{model}/drift/check?min_rows=1000000000", headers=admin).json()
            records = client.get(f"/v1/models/{model}").json()["records"]
        sent, ingested, lost = traffic.recorded(), status["counters"].get("rows_ingested", 0), records["lost_rows"]
        FIGURES["PostgreSQL stopped for 10 s"] = {
            "requests": len(traffic.answers), "failed by status": failed(traffic), "rows sent": sent,
            "rows counted": ingested, "rows reported lost": lost, "outage s": round(restarted - stopped, 1),
            "events written after the outage": len(events), "recovery s": round(recovered_s, 1),
            "consistent": ingested + lost == sent and bool(events)}
        assert events, status.get("pending_events")
        assert ingested + lost == sent and failed(traffic) == {}, FIGURES["PostgreSQL stopped for 10 s"]
    finally:
        remove_served_model(model, ray_cluster)
        registry.close()


REGISTER = """
import sys
from pathlib import Path
from raymlops.config import RegistryConfig
from raymlops.registry import Registry
directory = Path(sys.argv[1])
Registry.from_config(RegistryConfig()).register("chaos-upload", directory, metrics={"accuracy": 0.5})
print("registered", flush=True)
"""


def test_a_registering_process_killed_mid_upload_leaves_no_half_version(ray_cluster, tmp_path):
    import subprocess
    import sys

    artifact = tmp_path / "artifact"
    artifact.mkdir()
    for name in ("model.json", "signature.json", "reference.parquet", "detector.json"):  # the required files
        (artifact / name).write_text("{}")
    (artifact / "weights.bin").write_bytes(os.urandom(64 * 1024 * 1024))  # long enough to be killed in the middle
    registry = Registry.from_config(RegistryConfig())
    env = dict(os.environ)
    staging = Path(registry.artifacts.root) / "_staging"
    outcomes = []
    for delay_s in (0.0, 0.05, 0.3):  # into the copy, the read-back check, the publish
        before = set(staging.iterdir()) if staging.exists() else set()
        process = subprocess.Popen([sys.executable, "-c", REGISTER, str(artifact)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda p=process, b=before: p.poll() is not None or (staging.exists() and set(staging.iterdir()) - b),
                 60, every_s=0.01)
        time.sleep(delay_s)
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=60)
        outcomes.append("registered" if "registered" in out else "killed")
    versions = registry.list_versions("chaos-upload")
    for version in versions:  # whatever was recorded is whole: every file matches its manifest
        registry.verify(f"chaos-upload:{version.version}")
    finished = subprocess.run([sys.executable, "-c", REGISTER, str(artifact)], env=env, capture_output=True,
                              text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    latest = registry.list_versions("chaos-upload")[-1]
    registry.verify(f"chaos-upload:{latest.version}")
    FIGURES["Kill a registering process mid-upload (64 MB, 3 times)"] = {
        "kills": outcomes.count("killed"), "versions recorded by killed processes": len(versions),
        "all recorded versions verify": True, "next registration": f"version {latest.version}, verified",
        "staging directories left behind": len(list(staging.iterdir())) if staging.exists() else 0,
        "consistent": True}
    registry.close()
    assert outcomes.count("killed") >= 1


def train_workers(since: float):
    """RayTrainWorker processes started after ``since`` (not idle ones left by earlier runs)."""
    found = []
    for process in psutil.process_iter(["cmdline", "create_time"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if cmdline.startswith("ray::RayTrainWorker") and process.info["create_time"] >= since:
            found.append(process)
    return found


def checkpoint_registered(runs) -> bool:
    """Whether the run's Train controller has registered a checkpoint (its snapshot exists)."""
    return any(runs.glob("*/checkpoint_manager_snapshot.json"))


def test_killed_worker_resumes_from_last_checkpoint(ray_cluster, registry, tmp_path):
    data = synthesize(SynthConfig(rows=6000, output=str(tmp_path / "synth"))).directory
    runs = tmp_path / "runs"
    entrypoint = ["python", "-m", "raymlops.jobs.train", "--set", "model_name=synth-recovery", "--set", f"data.path={data}",
                  "--set", f"storage.path={runs}",
                  "--set", "train.epochs=6", "--set", "scaling.num_workers=2", "--set", "scaling.max_failures=2",
                  "--set", "train.batch_size=32"]
    client = job_client()
    submitted_at = time.time()
    job_id = submit(entrypoint, client=client)
    deadline, killed = time.time() + 300, None
    while time.time() < deadline and killed is None:
        # Ray Train's controller takes a reported checkpoint on its next poll (every 2 s) and only
        # then writes its snapshot: killing earlier would restart from scratch, not resume
        if "[raymlops] epoch 2/6" in client.get_job_logs(job_id) and checkpoint_registered(runs):
            victims = train_workers(submitted_at)
            assert victims, "no RayTrainWorker process found"
            # every worker of the group: one failure of the group whichever process is which
            for victim in victims:
                os.kill(victim.pid, signal.SIGKILL)
            killed = [victim.pid for victim in victims]
        time.sleep(0.2)
    assert killed is not None, "training never reached epoch 2"
    assert wait_for_job(job_id, client, echo=lambda _: None, timeout_s=600) == "SUCCEEDED", client.get_job_logs(job_id)[-3000:]
    logs = client.get_job_logs(job_id)
    assert "resumed from checkpoint: continuing at epoch" in logs
    version = registry.get("synth-recovery")
    history = version.lineage["extra"]["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5, 6]  # no epoch lost or repeated
    assert version.metrics["epochs"] == 6
    assert version.metrics["accuracy"] > version.metrics["majority_baseline"] + 0.1
    FIGURES["SIGKILL the training workers at epoch 2 of 6"] = {
        "workers killed": len(killed), "job": "SUCCEEDED", "resumed from its checkpoint": True,
        "epochs recorded": "1, 2, 3, 4, 5, 6 (none lost or repeated)", "consistent": True}


@pytest.mark.parametrize("credentials", ["none", "admin token"])
def test_every_route_fuzzed_from_the_openapi_schema_answers_without_a_5xx(chaos, credentials):
    """Schemathesis builds requests for every route of /openapi.json (examples, edge cases, then
    random ones); none may answer 5xx, and the replicas live on. Last in this module: with the
    admin token it changes traffic and starts rollouts for real."""
    import subprocess
    import sys

    client, admin, row, url = chaos
    headers = ["-H", f"authorization: {admin['authorization']}"] if credentials == "admin token" else []
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", f"{url}/openapi.json", "--url", url,
               "--checks", "not_a_server_error", "--max-examples", "25", "--max-time", "30", "--workers", "1",
               "--seed", "7", "--request-timeout", "30", "--phases", "examples,coverage,fuzzing", *headers]
    run = subprocess.run(command, capture_output=True, text=True, timeout=400)
    totals = re.findall(r"(\d+) generated, (\d+) passed", run.stdout)
    # exit 1 also reports errors of the tool itself (an internal exception after every case passed):
    # what counts is that every generated case passed (a 5xx fails its case)
    clean = run.returncode == 0 or (bool(totals) and totals[-1][0] == totals[-1][1])
    FIGURES[f"Fuzzing every route from /openapi.json ({credentials})"] = {
        "tool": "schemathesis, checks not_a_server_error",
        "cases": f"{totals[-1][0]} generated, {totals[-1][1]} passed" if totals else run.stdout[-200:],
        "replicas alive after": client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]}).status_code == 200,
        "consistent": clean}
    assert clean, run.stdout[-6000:]
    assert client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]}).status_code == 200


def failed(traffic: OpenLoopLoad) -> dict[int, int]:
    return {status: n for status, n in traffic.statuses().items() if status != 200}


def write_reliability(figures: dict[str, dict]) -> None:
    """docs/RELIABILITY.md from this run's figures."""
    lines = ["# Reliability under failure", "",
             "Written by `tests/chaos/` (`make chaos`, and every `make test`): each scenario runs under a bounded "
             f"open-loop load of {RATE_PER_S} one-row requests per second on 127.0.0.1 against a model served by "
             "two replicas with its drift monitor and rollout controller. Rows sent are the requests a replica "
             "answered (each leaves one record row); counted ones reached the drift monitor, lost ones were "
             "reported lost by their replica.", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    for scenario, numbers in figures.items():
        lines += [f"## {scenario}", "", "| | |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in numbers.items()]
        lines.append("")
    RELIABILITY.write_text("\n".join(lines))
