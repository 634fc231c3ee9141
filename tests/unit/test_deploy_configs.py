"""The configs for running beyond one machine, checked offline: cluster.yaml against Ray's own
cluster-config schema, the KubeRay manifests against raymlops' entrypoints, configs and app
arguments, the Dockerfile they use, and the Prometheus / Grafana files against the metrics
raymlops defines."""

import copy
import importlib
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from raymlops.config import LocalClusterConfig, TrainConfig, load_config, read_yaml

ROOT = Path(__file__).resolve().parents[2]


def pinned(package: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in constraints.txt")


# --------------------------------------------------------------------------- cluster launcher

@pytest.fixture(scope="module")
def cluster_config():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_cluster_config_schema(cluster_config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(cluster_config)))


def test_the_schema_check_rejects_a_broken_cluster_yaml(cluster_config):
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    broken = copy.deepcopy(cluster_config)
    broken["available_node_types"]["raymlops.gpu_worker"]["min_wrokers"] = 0
    with pytest.raises(jsonschema.ValidationError, match="min_wrokers"):
        validate_config(prepare_config(broken))


def test_cluster_yaml_has_a_cpu_head_and_autoscaling_gpu_workers_installed_with_the_pins(cluster_config):
    types = cluster_config["available_node_types"]
    head = types[cluster_config["head_node_type"]]
    assert not head["node_config"]["InstanceType"].startswith(("g", "p"))  # CPU head
    gpu = types["raymlops.gpu_worker"]
    assert gpu["node_config"]["InstanceType"].startswith(("g", "p")) and gpu["min_workers"] == 0 < gpu["max_workers"]
    setup = "\n".join(cluster_config["setup_commands"])
    assert "constraints.txt" in setup and "[postgres,s3]" in setup and f"torch=={pinned('torch')}" in setup
    assert "raymlops.env" in setup  # registry (PostgreSQL) and artifacts (S3) from the environment
    mounts = cluster_config["file_mounts"]
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"
    for command in cluster_config["head_start_ray_commands"] + cluster_config["worker_start_ray_commands"]:
        if "ray start" in command:
            assert "RAY_AUTH_MODE=token" in command  # token auth stays on, on every node
            assert "0.0.0.0" not in command


# --------------------------------------------------------------------------- KubeRay

@pytest.fixture(scope="module")
def manifests():
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "configs/k8s").glob("*.yaml"))}


def _containers(cluster_spec):
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


SECRET_NAMES = re.compile(r"(TOKEN|_URL|ROOT|SECRET|KEY_ID)$")


def test_the_manifests_are_a_rayservice_and_a_rayjob_on_the_pinned_ray_with_token_auth(manifests):
    kinds = {m["kind"]: m for m in manifests.values()}
    assert set(kinds) == {"RayService", "RayJob", "PodMonitor"}
    for manifest, spec in ((kinds["RayService"], kinds["RayService"]["spec"]["rayClusterConfig"]),
                           (kinds["RayJob"], kinds["RayJob"]["spec"]["rayClusterSpec"])):
        assert manifest["apiVersion"] == "ray.io/v1"
        assert spec["rayVersion"] == pinned("ray") and spec["authOptions"] == {"mode": "token"}
        assert spec["enableInTreeAutoscaling"] is True  # worker pods follow Serve's and Train's demand
        for container in _containers(spec):
            assert container["image"].startswith("raymlops:")  # built from the repo's Dockerfile
            env = {e["name"]: e for e in container["env"]}
            assert {"RAYMLOPS_REGISTRY_URL", "RAYMLOPS_ARTIFACT_ROOT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
            secrets = [e for name, e in env.items() if SECRET_NAMES.search(name)]
            assert secrets and all("valueFrom" in e for e in secrets)  # secrets from Secrets, never inline


def test_the_rayservice_feeds_prometheus_and_grafana(manifests):
    kinds = {m["kind"]: m for m in manifests.values()}
    spec = kinds["RayService"]["spec"]["rayClusterConfig"]
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in head["env"]}
    assert env["RAY_GRAFANA_HOST"].startswith("http") and env["RAY_PROMETHEUS_HOST"].startswith("http")
    monitor = kinds["PodMonitor"]["spec"]
    port = monitor["podMetricsEndpoints"][0]["port"]
    for group in (spec["headGroupSpec"], *spec["workerGroupSpecs"]):
        assert group["rayStartParams"]["metrics-export-port"] == "8090"
    assert {"containerPort": 8090, "name": port} in head["ports"]
    assert monitor["selector"]["matchExpressions"][0]["key"] == "ray.io/node-type"


def test_the_rayservice_serve_config_is_valid_and_builds_raymlops_app(manifests):
    from ray.serve.schema import ServeDeploySchema

    from raymlops.serve.app import AppArgs
    from raymlops.serve.control import DEPLOYMENT

    service = next(m for m in manifests.values() if m["kind"] == "RayService")
    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(service["spec"]["serveConfigV2"]))
    assert serve_config.applications
    for app in serve_config.applications:
        module, _, attr = app.import_path.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), app.import_path
        AppArgs.model_validate(app.args)
        assert [d.name for d in app.deployments] == [DEPLOYMENT]
        assert app.route_prefix == f"/{app.name}"  # what `raymlops deploy` derives: models share the cluster


def test_the_rayjob_runs_an_existing_job_script_with_an_existing_valid_config(manifests):
    job = next(m for m in manifests.values() if m["kind"] == "RayJob")
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:3] == ["python", "-m", "raymlops.jobs.train"], argv[:3]
    assert callable(importlib.import_module(argv[2]).main)
    config = argv[argv.index("--config") + 1]
    assert (ROOT / config).is_file()
    overrides = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--set"]
    cfg = load_config(ROOT / config, TrainConfig, overrides)
    assert cfg.model_name == "penguins" and cfg.storage.path.startswith("s3://")  # shared storage across nodes
    working_dirs = {c.get("workingDir") for c in _containers(job["spec"]["rayClusterSpec"])}
    assert working_dirs == {"/home/ray/raymlops"}


def test_the_dockerfile_builds_from_the_pinned_ray_and_copies_what_the_manifests_run():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"rayproject/ray:{pinned('ray')}-py311-" in dockerfile
    assert "-c constraints.txt" in dockerfile and "WORKDIR /home/ray/raymlops" in dockerfile
    for copied in ("raymlops", "jobs", "configs"):
        assert re.search(rf"^COPY .*\b{copied} \./{copied}$", dockerfile, re.M), copied


# --------------------------------------------------------------------------- Prometheus and Grafana

def defined_metrics() -> set[str]:
    """Every metric name raymlops registers, as Prometheus sees it (Ray adds ``ray_``)."""
    names = set()
    for path in (ROOT / "raymlops").rglob("*.py"):
        names |= set(re.findall(r'"(raymlops_[a-z_]+)",\s*(?:description|boundaries|tag_keys)', path.read_text()))
        names |= set(re.findall(r'\(\s*"(raymlops_[a-z_]+)"', path.read_text()))
    return {f"ray_{name}" for name in names if not name.startswith(("raymlops_meta", "raymlops_models"))}


def test_prometheus_config_scrapes_the_local_clusters_metrics_port():
    config = yaml.safe_load((ROOT / "configs/prometheus.yml").read_text())
    local = LocalClusterConfig.model_validate(read_yaml(ROOT / "configs/local.yaml"))
    targets = [t for job in config["scrape_configs"] for group in job.get("static_configs", []) for t in group["targets"]]
    assert targets == [f"{local.host}:{local.metrics_export_port}"]


def test_every_dashboard_query_uses_metrics_raymlops_defines():
    dashboard = json.loads((ROOT / "configs/grafana/raymlops.json").read_text())
    known = defined_metrics()
    assert {"ray_raymlops_requests_total", "ray_raymlops_drift_p_value", "ray_raymlops_rollout_step"} <= known
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            metrics = set(re.findall(r"\bray_raymlops_[a-z_]+", target["expr"]))
            assert metrics, (panel["title"], target["expr"])
            used |= {re.sub(r"_bucket$", "", m) for m in metrics}
    assert used <= known, sorted(used - known)
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("traffic share", "latency", "error", "drift p-values", "drift detected", "rollout", "weights",
                  "dropped"):
        assert topic in titles, topic


def test_gpu_replicas_batch_unless_told_otherwise():
    from raymlops.config import ServeConfig, load_config
    from raymlops.serve.deploy import batching_of

    def batching(*overrides):
        return batching_of(load_config(None, ServeConfig, list(overrides))).enabled

    assert batching() is False and batching("replicas.num_gpus=1", "layout=separate") is True
    assert batching("replicas.num_gpus=1", "layout=separate", "batching.enabled=false") is False
    assert batching("batching.enabled=true") is True
