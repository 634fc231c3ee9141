"""A real Prometheus, configured by configs/prometheus.yml, scrapes the session cluster while a
model is served, monitored and rolled out; every query of configs/grafana/raymlops.json runs
against it, and the core series come back with data.

Needs the `prometheus` binary (Debian's package; `.ci/run` installs it and sets
RAYMLOPS_TEST_PROMETHEUS, which makes a missing binary a failure instead of a skip).
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from raymlops.config import ServeConfig, load_config
from raymlops.monitor.client import start_monitor
from raymlops.serve.deploy import deploy
from raymlops.testing import register_untrained_version, remove_served_model, wait_for

ROOT = Path(__file__).resolve().parents[2]
MODEL = "promtest"
ROW = {"island": "Dream", "bill_length_mm": 40.0, "bill_depth_mm": 18.0, "flipper_length_mm": 190.0,
       "body_mass_g": 3500.0, "sex": "female"}


def prometheus_binary() -> str:
    required = os.environ.get("RAYMLOPS_TEST_PROMETHEUS")
    found = required or shutil.which("prometheus")
    if not found or not Path(found).exists():
        if required:
            pytest.fail(f"RAYMLOPS_TEST_PROMETHEUS={required} does not exist")
        pytest.skip("no `prometheus` binary (apt-get install prometheus; .ci/run installs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape_config_for(metrics_url: str) -> dict:
    """configs/prometheus.yml with its local target pointed at the session cluster, scraped every second."""
    config = yaml.safe_load((ROOT / "configs/prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "ray")
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8090"]  # the local cluster's metrics_export_port
    job["static_configs"][0]["targets"] = [metrics_url.split("//", 1)[1].split("/", 1)[0]]
    return config


@pytest.fixture(scope="module")
def prometheus(ray_cluster, tmp_path_factory):
    binary = prometheus_binary()
    work = tmp_path_factory.mktemp("prometheus")
    (work / "prometheus.yml").write_text(yaml.safe_dump(scrape_config_for(ray_cluster.metrics)))
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(work / "prometheus.log", "w"))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        assert wait_for(lambda: _ready(client, process), 60), (work / "prometheus.log").read_text()[-3000:]
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(30)


def _ready(client, process) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"prometheus exited with {process.returncode}")
    try:
        return client.get("/-/ready").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def observed_model(ray_cluster, ray_driver, penguins_data, shell_env, run_cli):
    """v1 champion, v2 candidate under a rollout that waits at its first step, records to the monitor."""
    from raymlops.auth import ensure_admin_token
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    registry = Registry.from_config(RegistryConfig())
    register_untrained_version(registry, MODEL, penguins_data, seed=0)
    register_untrained_version(registry, MODEL, penguins_data, seed=1)
    registry.set_alias(MODEL, "champion", 1)
    registry.set_alias(MODEL, "candidate", 2)
    registry.close()
    start_monitor(MODEL, None, ["window.size=50", "window.min_samples=20", "window.max_wait_s=1",
                                "detectors.mmd.enabled=false", "detectors.online.enabled=false"])
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"app_name={MODEL}", f"route_prefix=/{MODEL}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.max_replicas=1",
                                         "traffic.canary_weight=0.0"])
    deployed = deploy(cfg)
    # two untrained versions predict different classes: the output gate is off, so the rollout stays
    # at its first step for the whole test instead of rolling back whenever the canary has enough rows
    started = run_cli(f"raymlops rollout start {MODEL} --route-prefix /{MODEL} --set poll_interval_s=1 "
                      "--set 'steps=[{weight: 0.3, min_duration_s: 3600, min_canary_requests: 100000}]' "
                      "--set gates.block_on_output_drift=false", shell_env)
    assert started.returncode == 0, started.stdout + started.stderr
    client = httpx.Client(base_url=deployed.url, timeout=60)
    yield client, {"authorization": f"Bearer {ensure_admin_token()}"}
    client.close()
    run_cli(f"raymlops rollout abort {MODEL} --route-prefix /{MODEL}", shell_env)
    remove_served_model(MODEL, ray_cluster)


def query(prometheus, expr: str) -> list[dict]:
    response = prometheus.get("/api/v1/query", params={"query": expr})
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "configs/grafana/raymlops.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def test_prometheus_scrapes_raymlops_series_and_every_dashboard_query_runs(prometheus, observed_model):
    client, admin = observed_model
    for i in range(150):
        response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [ROW]})
        assert response.status_code == 200, response.text
        if i % 50 == 49:
            time.sleep(1)  # spread the traffic over a few scrapes so rate() has two points
    time.sleep(0.5)
    check = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=20", headers=admin)
    assert check.status_code == 200, check.text

    model = f'model="{MODEL}"'
    wanted = {
        "requests": f"ray_raymlops_requests_total{{{model}}}",
        "latency": f"ray_raymlops_request_latency_ms_bucket{{{model}}}",
        "weights": f"ray_raymlops_traffic_weight{{{model}}}",
        "p-values": f"ray_raymlops_drift_p_value{{{model}}}",
        "drift flags": f"ray_raymlops_drift_detected{{{model}}}",
        "ingested": f"ray_raymlops_monitor_rows_ingested_total{{{model}}}",
        "rollout step": f"ray_raymlops_rollout_step{{{model}}}",
        "rollout phase": f'ray_raymlops_rollout_phase{{{model}, phase="running"}}',
    }
    seen = {}
    deadline = time.time() + 90
    while time.time() < deadline and len(seen) < len(wanted):
        for name, expr in wanted.items():
            if name not in seen and (result := query(prometheus, expr)):
                seen[name] = result
        time.sleep(1)
    assert set(seen) == set(wanted), f"missing in Prometheus: {sorted(set(wanted) - set(seen))}"
    versions = {sample["metric"]["version"] for sample in seen["requests"]}
    assert "1" in versions
    assert {s["metric"]["feature"] for s in seen["p-values"]} >= {"bill_length_mm", "island"}
    assert float(seen["rollout step"][0]["value"][1]) == 1.0 and float(seen["rollout phase"][0]["value"][1]) == 1.0
    weights = {(s["metric"]["version"], s["metric"]["arm"]): float(s["value"][1]) for s in seen["weights"]}
    assert weights.get(("2", "canary")) == pytest.approx(0.3), weights

    # the Grafana dashboard: every query is valid PromQL here, and the traffic panels have data
    results = {}
    for title, expr in dashboard_queries():
        concrete = expr.replace("$__rate_interval", "1m").replace('model=~"$model"', f'model=~"{MODEL}"')
        results[(title, expr)] = query(prometheus, concrete)
    with_data = {title for (title, _), result in results.items() if result}
    for title in ("Traffic share per version", "Requests per second by status", "Latency p50 / p99 per version",
                  "Drift p-values per feature", "Configured weights and rollout step", "Rollout phase"):
        assert title in with_data, f"dashboard panel {title!r} has no data"
