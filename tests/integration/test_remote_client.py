"""A client that knows only the cluster's addresses and tokens (a profile), with its own home and no
registry settings, drives everything from a project outside the repository: two models
registered, deployed, monitored and rolled out side by side, scored in batch, reported on,
undeployed — and a model trained from the project's own network module."""

import json
import os
import stat
import sys
import threading
from pathlib import Path

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from raymlops.config import PrepareConfig
from raymlops.data import prepare_dataset
from raymlops.data.tables import read_table, split_uri
from raymlops.testing import promote_under_traffic

BIN = Path(sys.executable).parent
MODELS = ("remote-a", "remote-b")
MONITOR_YAML = """model_name: remote-a
window: {size: 100, min_samples: 40, max_wait_s: 2}
detectors: {mmd: {enabled: false}, online: {enabled: false}}
snapshot_every_s: 2
prediction_log: {flush_every_s: 1}
num_cpus: 0.1
"""
STEPS = ("steps=[{weight: 0.5, min_duration_s: 2, min_canary_requests: 20}, "
         "{weight: 1.0, min_duration_s: 2, min_canary_requests: 20}]")


@pytest.fixture(scope="module")
def diabetes(ray_cluster):
    return prepare_dataset(PrepareConfig(dataset="diabetes")).directory


@pytest.fixture(scope="module")
def remote(ray_cluster, tmp_path_factory):
    """The client's environment (a profile in its own home; tokens in variables) and its project."""
    from raymlops import auth

    base = tmp_path_factory.mktemp("remote-client")
    home = base / "client-home"
    home.mkdir()
    profiles = home / "profiles.yaml"
    profiles.write_text(f"profiles:\n  lab:\n    dashboard: {ray_cluster.dashboard}\n    serve: {ray_cluster.serve_http}\n"
                        f"    gcs: {ray_cluster.gcs}\n    ray_token_env: LAB_RAY_TOKEN\n"
                        "    admin_token_env: LAB_ADMIN_TOKEN\n")
    profiles.chmod(stat.S_IRUSR | stat.S_IWUSR)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYMLOPS_"))}
    env.update({"RAYMLOPS_HOME": str(home), "RAYMLOPS_PROFILE": "lab", "LAB_RAY_TOKEN": auth.read_ray_token(),
                "LAB_ADMIN_TOKEN": auth.ensure_admin_token(), "HOME": str(base),
                "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])})
    return env, base, home


def test_a_client_with_only_addresses_drives_two_models(remote, diabetes, run_cli, ray_cluster, registry,
                                                       penguins_data):
    import skops.io
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    from raymlops.actors import controller_name, monitor_name
    from raymlops.cluster import actor_alive

    env, base, home = remote
    run = lambda command, **kw: run_cli(command, env, cwd=kw.pop("cwd", project), **kw)  # noqa: E731
    created = run_cli("raymlops init project --name remote-a", env, cwd=base)
    assert created.returncode == 0, created.stderr
    project = base / "project"
    (project / "configs" / "monitor.yaml").write_text(MONITOR_YAML)
    train_uri, test_uri = split_uri(diabetes, "train"), split_uri(diabetes, "test")
    train = read_table(train_uri).to_pandas()
    x, y = train.drop(columns=["target"]), train["target"]
    skops.io.dump(Ridge(alpha=0.1).fit(x, y), project / "ridge.skops")
    skops.io.dump(HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(x, y), project / "boosted.skops")

    # Registry writes and reads run on the cluster; the model files go up with the project.
    common = f"--flavor sklearn --reference {train_uri} --label target --test {test_uri} --json"
    for model in MODELS:
        first = run(f"raymlops registry register {model} --path ridge.skops {common}")
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        assert json.loads(first.stdout)["aliases"] == {"champion": 1, "candidate": 1}
        second = run(f"raymlops registry register {model} --path boosted.skops --margin -1000 {common}")
        assert second.returncode == 0, second.stderr[-2000:]
    listed = run("raymlops registry list --json")
    assert listed.returncode == 0, listed.stderr
    assert {m["name"] for m in json.loads(listed.stdout)} >= set(MODELS)
    assert not (home / "registry").exists(), "the client opened a registry of its own"

    urls = {}
    for model in MODELS:
        deployed = run(f"raymlops deploy --set model_name={model} --set replicas.max_replicas=1 "
                       "--set records.flush_ms=50", timeout=400)
        assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]
        assert f"route /{model}" in deployed.stdout
        assert f"predict: POST {env_serve(remote)}/{model}/v1/models/{model}/predict" in deployed.stdout
        urls[model] = f"{env_serve(remote)}/{model}"
    # A route another app holds is refused before anything starts.
    clash = run("raymlops deploy --set model_name=remote-b --set app_name=clash --set route_prefix=/remote-a")
    assert clash.returncode == 2 and "route_prefix: /remote-a is already the route of application 'remote-a'" \
        in clash.stderr, clash.stdout + clash.stderr
    assert "clash" not in httpx.get(f"{env_dashboard(remote)}/api/serve/applications/",
                                    headers=auth_headers(env)).json()["applications"]

    # Both roll out side by side, each judged on its own traffic.
    rows = [{k: v for k, v in r.items() if k != "target"} for r in read_table(test_uri).to_pylist()]
    for model in MODELS:
        started = run(f"raymlops rollout start {model} --set '{STEPS}' --set poll_interval_s=1 "
                      "--set gates.block_on_output_drift=false --set gates.latency_slack_ms=250")
        assert started.returncode == 0, started.stdout + started.stderr
    results = {}

    def roll(model):
        with httpx.Client(base_url=urls[model], timeout=60) as client:
            results[model] = promote_under_traffic(client, model, rows, registry)

    threads = [threading.Thread(target=roll, args=(m,)) for m in MODELS]
    [t.start() for t in threads]
    [t.join(240) for t in threads]
    for model in MODELS:
        promoted, failures, versions = results[model]
        assert promoted and failures == [] and versions == {1, 2}, \
            (model, failures, versions, [(e.kind, e.payload.get("reasons")) for e in registry.events(model)][-6:])
        status = run(f"raymlops rollout status {model} --json")
        assert status.returncode == 0 and json.loads(status.stdout)["state"]["phase"] == "promoted", status.stdout
        drift = run(f"raymlops drift status {model} --json")
        assert drift.returncode == 0, drift.stderr
        assert json.loads(drift.stdout)["model"] == model and json.loads(drift.stdout)["counters"]["rows_ingested"] > 0

    # Live traffic and alias moves; the report; a batch scored with the champion, and a shifted one.
    shadow = run("raymlops traffic set remote-b --shadow-version 1 --shadow-share 0.1")
    assert shadow.returncode == 0 and "shadow_version=1" in shadow.stdout, shadow.stderr
    moved = run("raymlops registry alias set remote-a previous 1")
    assert moved.returncode == 0, moved.stderr
    assert registry.aliases("remote-a")["previous"] == 1
    report = run("raymlops drift report remote-b --html report.html --json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["version"] == 2 and "<svg" in (project / "report.html").read_text()

    shifted = read_table(test_uri).to_pandas()
    shifted["bmi"] = shifted["bmi"] + 3 * shifted["bmi"].std()
    shifted.to_parquet(base / "shifted.parquet")
    scored = run(f"raymlops score remote-b --input {base}/shifted.parquet --output {base}/scored --json", timeout=400)
    assert scored.returncode == 0, scored.stdout[-3000:] + scored.stderr[-3000:]
    outcome = json.loads(scored.stdout)
    table = pq.read_table(base / "scored")
    assert outcome["version"] == 2 and outcome["rows"] == table.num_rows == len(rows)  # the champion, promoted
    assert set(pc.unique(table.column("model_version")).to_pylist()) == {2} and "value" in table.column_names
    drift = outcome["drift"]
    assert drift["drift"] is True and drift["detectors"]["feature"]["p_values"]["bmi"] < 1e-3, drift
    assert drift["detectors"]["feature"]["p_values"]["age"] > 1e-3  # the unshifted features stay calm

    # Undeploy one model: its app and actors go, the other keeps answering.
    gone = run("raymlops undeploy remote-a")
    assert gone.returncode == 0 and "application removed" in gone.stdout, gone.stdout + gone.stderr
    assert not actor_alive(ray_cluster, monitor_name("remote-a"))
    assert not actor_alive(ray_cluster, controller_name("remote-a"))
    assert actor_alive(ray_cluster, monitor_name("remote-b"))
    assert httpx.post(f"{urls['remote-a']}/v1/models/remote-a/predict", json={"instances": rows[:1]},
                      timeout=30).status_code == 404
    assert httpx.post(f"{urls['remote-b']}/v1/models/remote-b/predict", json={"instances": rows[:1]},
                      timeout=30).status_code == 200
    assert run("raymlops undeploy remote-b").returncode == 0

    # The CI path: `raymlops pipeline run` trains the project's own network and gates it (a pull
    # request), reuses that result when nothing changed, deploys it (main), and refuses a version
    # the gate does not pass — each with its exit code and a JSON summary written here.
    pipeline = (f"raymlops pipeline run configs/pipeline.yaml --set model_name=remote-torch --set data.prepare=null "
                f"--set data.path={penguins_data} --set 'train.set=[train.epochs=1, scaling.num_workers=1]' "
                "--set 'deploy.set=[records.sink=none, replicas.max_replicas=1]'")
    gated = run(pipeline + " --until gate --summary gate.json", timeout=600)
    assert gated.returncode == 0, gated.stdout[-3000:] + gated.stderr[-3000:]
    assert "==> train: running" in gated.stdout and "==> gate: passed" in gated.stdout
    summary = json.loads((project / "gate.json").read_text())
    assert summary["outcome"] == "gate_passed" and summary["version"] == 1 and summary["gate"]["passed"]
    assert [(s["name"], s["status"]) for s in summary["stages"]] == \
        [("data", "skipped"), ("train", "done"), ("deploy", "skipped"), ("rollout", "skipped")]
    assert summary["links"]["jobs"][0]["logs"].startswith(env_dashboard(remote))
    assert registry.get("remote-torch:1").lineage["config"]["model"]["builder"] == "remote_a_model:build"
    delivered = run(pipeline + " --summary main.json", timeout=600)
    assert delivered.returncode == 0, delivered.stdout[-3000:] + delivered.stderr[-3000:]
    summary = json.loads((project / "main.json").read_text())
    assert summary["outcome"] == "promoted" and summary["version"] == 1, summary  # v1 is the champion already
    assert [(s["name"], s["status"]) for s in summary["stages"]][1:] == \
        [("train", "reused"), ("deploy", "done"), ("rollout", "reused")]
    answer = httpx.post(f"{env_serve(remote)}/remote-torch/v1/models/remote-torch/predict",
                        json={"instances": [{k: v for k, v in read_table(split_uri(penguins_data, "test")).to_pylist()[0]
                                             .items() if k != "species"}]}, timeout=30)
    assert answer.status_code == 200 and answer.json()["version"] == 1, answer.text
    refused = run(pipeline.replace("scaling.num_workers=1]", "scaling.num_workers=1, gate.margin=1.0, "
                                   "model.estimator=sklearn.linear_model:LogisticRegression, \"model.params={}\"]")
                  + " --until gate --summary refused.json", timeout=600)
    assert refused.returncode == 3, refused.stdout[-3000:] + refused.stderr[-3000:]
    summary = json.loads((project / "refused.json").read_text())
    assert summary["outcome"] == "gate_refused" and summary["version"] == 2 and not summary["gate"]["passed"]
    assert registry.aliases("remote-torch") == {"champion": 1, "candidate": 1}
    assert run("raymlops undeploy remote-torch").returncode == 0
    env_lines = run("raymlops env").stdout
    assert f"export RAY_ADDRESS={remote_gcs(remote)}" in env_lines and "RAY_API_SERVER_ADDRESS" in env_lines
    assert not (home / "registry").exists() and not (home / "admin_token").exists()


def env_serve(remote):
    return _profile(remote)["serve"]


def env_dashboard(remote):
    return _profile(remote)["dashboard"]


def remote_gcs(remote):
    return _profile(remote)["gcs"]


def _profile(remote):
    import yaml

    return yaml.safe_load((remote[2] / "profiles.yaml").read_text())["profiles"]["lab"]


def auth_headers(env):
    return {"Authorization": f"Bearer {env['LAB_RAY_TOKEN']}"}
