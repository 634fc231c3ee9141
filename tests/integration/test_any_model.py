"""Models other than raymlops's own classifier travel the whole loop on the session cluster:
a scikit-learn regression trained elsewhere is imported (CLI and Python), served beside a
second version through /v1 and v2 (the payloads a tritonclient user sends), its records reach
the monitor, a real shift of its inputs is detected, and a gated rollout promotes the
candidate. A torch-tabular regression trains as a Ray job with regression metrics."""

import json
import time

import httpx
import numpy as np
import pytest

import raymlops
from raymlops.config import PrepareConfig, ServeConfig, load_config
from raymlops.data import prepare_dataset
from raymlops.data.tables import read_table, split_uri
from raymlops.monitor.client import start_monitor
from raymlops.serve.deploy import deploy
from raymlops.testing import promote_under_traffic, remove_served_model, wait_for

MODEL = "diabetes"
MONITOR = ["window.size=100", "window.min_samples=40", "window.max_wait_s=2", "detectors.mmd.enabled=false",
           "detectors.online.enabled=false", "snapshot_every_s=2", "prediction_log.flush_every_s=1"]
FAST_STEPS = ("steps=[{weight: 0.5, min_duration_s: 2, min_canary_requests: 20}, "
              "{weight: 1.0, min_duration_s: 2, min_canary_requests: 20}]")


@pytest.fixture(scope="module")
def diabetes_data(ray_cluster):
    return prepare_dataset(PrepareConfig(dataset="diabetes")).directory


def feature_rows(directory, split="test"):
    table = read_table(split_uri(directory, split))
    return [{k: v for k, v in row.items() if k != "target"} for row in table.to_pylist()], \
        table.column("target").to_pylist()


@pytest.fixture(scope="module")
def imported(diabetes_data, run_cli, shell_env, tmp_path_factory):
    """v1 (ridge) through the CLI from a skops file; v2 (gradient boosting) from Python."""
    import skops.io
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    train = read_table(split_uri(diabetes_data, "train")).to_pandas()
    x, y = train.drop(columns=["target"]), train["target"]
    saved = tmp_path_factory.mktemp("elsewhere") / "ridge.skops"
    skops.io.dump(Ridge(alpha=0.1).fit(x, y), saved)
    train_uri, test_uri = split_uri(diabetes_data, "train"), split_uri(diabetes_data, "test")
    done = run_cli(f"raymlops registry register {MODEL} --flavor sklearn --path {saved} --reference {train_uri} "
                   f"--label target --test {test_uri} --json", shell_env)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["version"] == 1 and first["aliases"] == {"champion": 1, "candidate": 1}
    assert set(first["metrics"]) >= {"rmse", "mae", "r2"} and first["metrics"]["r2"] > 0.2

    registry = Registry.from_config(RegistryConfig())
    boosted = HistGradientBoostingRegressor(max_iter=60, random_state=0).fit(x, y)
    outcome = raymlops.register_model(MODEL, boosted, train, "target", read_table(test_uri), registry=registry,
                                      gate_margin=-1000.0)  # any rmse passes: the rollout decides
    assert outcome.version.version == 2 and outcome.aliases == {"champion": 1, "candidate": 2}
    lineage = registry.get(f"{MODEL}:2").lineage
    assert lineage["trigger"]["kind"] == "import" and lineage["extra"]["imported"]["flavor"] == "sklearn"
    assert len(lineage["extra"]["imported"]["source_sha256"]) == 64
    registry.close()
    return first


@pytest.fixture(scope="module")
def served(imported, ray_cluster, ray_driver, diabetes_data):
    from raymlops.auth import ensure_admin_token

    start_monitor(MODEL, None, MONITOR)
    cfg = load_config(None, ServeConfig, [f"model_name={MODEL}", f"app_name={MODEL}", f"route_prefix=/{MODEL}",
                                         "records.sink=monitor", "records.flush_ms=50", "replicas.max_replicas=1"])
    client = httpx.Client(base_url=deploy(cfg).url, timeout=60)
    yield client, {"authorization": f"Bearer {ensure_admin_token()}"}
    client.close()
    remove_served_model(MODEL, ray_cluster)


def tritonclient_body(rows):
    """What ``tritonclient.http`` sends: one tensor per input — shape [n, 1] (FP32, or BYTES for
    text) for a column, [n, *shape] with flat FP32 data for a tensor input."""
    inputs = []
    for name, first in rows[0].items():
        if isinstance(first, list):
            data = np.asarray([r[name] for r in rows], dtype=np.float32)
            inputs.append({"name": name, "shape": list(data.shape), "datatype": "FP32", "data": data.reshape(-1).tolist()})
        else:
            inputs.append({"name": name, "shape": [len(rows), 1], "data": [r[name] for r in rows],
                           "datatype": "BYTES" if isinstance(first, str) else "FP32"})
    return {"inputs": inputs}


def travel_the_loop(model, rows, shift, watched, registry, run_cli, shell_env, ray_cluster):
    """Deploy ``model`` (champion v1, candidate v2) with its monitor; answer /v1 and v2; see
    in-distribution traffic stay calm and ``shift``-ed traffic drift on ``watched``; roll the
    candidate out and promote it with no failed request."""
    from raymlops.auth import ensure_admin_token

    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]  # splits keep the data's order
    start_monitor(model, None, MONITOR)
    cfg = load_config(None, ServeConfig, [f"model_name={model}", f"route_prefix=/{model}", "records.sink=monitor",
                                         "records.flush_ms=50", "replicas.max_replicas=1"])
    client, admin = httpx.Client(base_url=deploy(cfg).url, timeout=60), {"authorization": f"Bearer {ensure_admin_token()}"}
    try:
        v1 = client.post(f"/v1/models/{model}/predict", json={"instances": rows[:2]})
        v2 = client.post(f"/v2/models/{model}/infer", json=tritonclient_body(rows[:2]))
        assert v1.status_code == 200 and v2.status_code == 200, (v1.text, v2.text)
        assert [o["name"] for o in v2.json()["outputs"]] == list(v1.json()["predictions"][0])

        def send(count, shifted=False):
            for i in range(count):
                row = shift(dict(rows[i % len(rows)])) if shifted else rows[i % len(rows)]
                response = client.post(f"/v1/models/{model}/predict", json={"instances": [row]})
                assert response.status_code == 200, response.text

        def check():
            time.sleep(0.3)
            return client.post(f"/admin/models/{model}/drift/check?min_rows=40", headers=admin).json()["versions"]["1"]

        send(150)
        assert check()["reports"]["feature"]["drift"] is False
        send(150, shifted=True)
        drifting = check()
        assert "feature" in drifting["drifting"], drifting["reports"]["feature"]
        assert watched is None or drifting["reports"]["feature"]["p_values"][watched] < 0.001, drifting["reports"]

        started = run_cli(f"raymlops rollout start {model} --route-prefix /{model} --set '{FAST_STEPS}' "
                          "--set poll_interval_s=1 --set gates.block_on_output_drift=false "
                          "--set gates.latency_slack_ms=250", shell_env)
        assert started.returncode == 0, started.stderr
        promoted, failures, _ = promote_under_traffic(client, model, rows, registry)
        assert promoted, [(e.kind, e.payload.get("reasons")) for e in registry.events(model)][-6:]
        assert registry.aliases(model)["champion"] == 2 and failures == []
    finally:
        client.close()
        remove_served_model(model, ray_cluster)


def test_an_imported_regression_is_served_through_v1_and_v2(served, diabetes_data):
    client, admin = served
    rows, targets = feature_rows(diabetes_data)
    answer = client.post(f"/v1/models/{MODEL}/predict", json={"instances": rows[:3]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["version"] == 1 and [set(p) for p in body["predictions"]] == [{"value"}] * 3
    assert all(isinstance(p["value"], float) and 25 < p["value"] < 350 for p in body["predictions"])

    meta = client.get(f"/v2/models/{MODEL}").json()
    assert meta["outputs"] == [{"name": "value", "datatype": "FP64", "shape": [-1]}]
    v2 = client.post(f"/v2/models/{MODEL}/infer", json=tritonclient_body(rows[:4]))
    assert v2.status_code == 200, v2.text
    (output,) = v2.json()["outputs"]
    assert output["name"] == "value" and output["shape"] == [4]
    np.testing.assert_allclose(output["data"][:3], [p["value"] for p in body["predictions"]], rtol=1e-5)

    def give_feedback():  # the answer's records reach the monitor within a flush or two
        response = client.post(f"/v1/models/{MODEL}/feedback", json={"request_id": body["request_id"],
                                                                      "labels": targets[:3]}, headers=admin)
        return response if response.status_code != 404 else None

    feedback = wait_for(give_feedback, 20)
    assert feedback is not None and feedback.status_code == 200 and feedback.json()["accepted"] == 3, feedback.text
    wrong = client.post(f"/v1/models/{MODEL}/feedback", json={"request_id": body["request_id"], "labels": ["high"] * 3},
                        headers=admin)
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "body.labels[0]", wrong.text


def test_a_shift_is_detected_and_the_candidate_is_promoted(served, diabetes_data, run_cli, shell_env, registry):
    client, admin = served
    rows, _ = feature_rows(diabetes_data, "train")

    def send(count, shift=0.0):
        for i in range(count):
            row = dict(rows[i % len(rows)])
            row["bmi"] += shift
            row["s5"] += shift
            response = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]})
            assert response.status_code == 200, response.text

    send(150)
    time.sleep(0.3)
    calm = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=40", headers=admin).json()
    assert calm["versions"]["1"]["reports"]["feature"]["drift"] is False, calm["versions"]["1"]["reports"]
    send(150, shift=0.1)  # about two standard deviations of bmi and s5
    time.sleep(0.3)
    shifted = client.post(f"/admin/models/{MODEL}/drift/check?min_rows=40", headers=admin).json()["versions"]["1"]
    assert "feature" in shifted["drifting"] and shifted["reports"]["feature"]["p_values"]["bmi"] < 0.001, shifted
    assert "output" in shifted["drifting"], shifted["reports"]["output"]  # predicted values moved too (KS)

    # gradient boosting answers slower than ridge: the latency gate is right to notice, but this
    # test is about the loop, so it gets a slack a loaded 2-CPU machine cannot exceed by accident
    started = run_cli(f"raymlops rollout start {MODEL} --route-prefix /{MODEL} --set '{FAST_STEPS}' "
                      "--set poll_interval_s=1 --set gates.block_on_output_drift=false "
                      "--set gates.latency_slack_ms=250", shell_env)
    assert started.returncode == 0, started.stderr
    promoted, failures, versions = promote_under_traffic(client, MODEL, rows, registry)
    assert promoted, [(e.kind, e.payload.get("reasons")) for e in registry.events(MODEL)][-6:]
    assert registry.aliases(MODEL)["champion"] == 2 and failures == [] and versions == {1, 2}
    health = client.get(f"/admin/models/{MODEL}/rollout", headers=admin).json()
    assert health["state"]["phase"] == "promoted"


def test_a_torch_regression_trains_as_a_ray_job(diabetes_data, run_cli, shell_env, registry):
    """The built-in network as a regression on two DDP workers: regression metrics, the gate on rmse
    (the loop of a torch regression is travelled by the tensor regression below)."""
    common = (f"raymlops train --set model_name=diabetes-mlp --set data.path={diabetes_data} "
              "--set train.epochs=15 --set scaling.num_workers=2 --set train.lr=0.01")
    done = run_cli(common, shell_env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = registry.get("diabetes-mlp:1")
    assert version.metrics["r2"] > 0.2 and version.metrics["rmse"] < version.metrics["mean_baseline_rmse"], \
        version.metrics
    gate = registry.events("diabetes-mlp", kinds=["offline_gate"])[0].payload
    assert gate["metric"] == "rmse" and gate["passed"]
    assert "val_rmse_std" in version.lineage["extra"]["history"][-1]
    assert version.lineage["environment"]["packages"].keys() == {"torch", "numpy"}


def test_your_own_loop_from_outside_the_repository(penguins_data, run_cli, shell_env, registry, tmp_path):
    """The example loop, copied to a directory this process cannot import, reaches the job's
    driver and both workers through `code` (runtime_env py_modules)."""
    import importlib.util
    import shutil

    from raymlops.data.schema import read_schema

    project = tmp_path / "team_project"
    project.mkdir()
    shutil.copy("examples/own_loop/my_loop.py", project / "team_loop.py")
    assert importlib.util.find_spec("team_loop") is None
    done = run_cli(f"raymlops train --set model_name=penguins-own-loop --set data.path={penguins_data} "
                   f"--set train.loop=team_loop:train --set 'code=[{project / 'team_loop.py'}]' "
                   "--set 'train.loop_params={momentum: 0.8}' --set train.epochs=6 --set train.lr=0.05 "
                   "--set scaling.num_workers=2", shell_env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[raymlops] epoch 6/6" in done.stdout and " lr " in done.stdout
    version = registry.get("penguins-own-loop:1")
    history = version.lineage["extra"]["history"]
    assert [h["epoch"] for h in history] == list(range(1, 7)) and history[-1]["lr"] < 0.05  # the cosine schedule ran
    assert version.lineage["config"]["train"]["loop"] == "team_loop:train"
    assert version.metrics["accuracy"] > version.metrics["majority_baseline"] + 0.2, version.metrics
    assert read_schema(penguins_data).label == "species"


TEAM_FLAVOR = '''"""A team's own flavor: a linear model stored as JSON."""
import json
from pathlib import Path

import numpy as np

import raymlops
from raymlops.data.schema import DatasetSchema


class LinearFlavor(raymlops.Model):
    flavor = "team_flavor:LinearFlavor"

    def __init__(self, weights, bias, signature):
        self.weights, self.bias, self.signature = np.asarray(weights, dtype=float), float(bias), signature

    @classmethod
    def load(cls, directory, spec):
        saved = json.loads((Path(directory) / "linear.json").read_text())
        signature = DatasetSchema.from_json((Path(directory) / "signature.json").read_text())
        return cls(saved["weights"], saved["bias"], signature)

    def predict(self, columns):
        x = np.column_stack([np.asarray(columns[n], dtype=float) for n in self.signature.feature_names])
        return raymlops.Prediction.from_values(x @ self.weights + self.bias)

    def save(self, directory):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.json").write_text(json.dumps({"flavor": self.flavor}))
        (directory / "signature.json").write_text(self.signature.to_json())
        (directory / "linear.json").write_text(json.dumps({"weights": self.weights.tolist(), "bias": self.bias}))


def fit(train_path, out):
    import pyarrow.parquet as pq
    from raymlops.data.prepare import infer_schema

    table = pq.read_table(train_path)
    signature = infer_schema(table, "diabetes", "target", [], task="regression")
    x = np.column_stack([table.column(n).to_numpy() for n in signature.feature_names] + [np.ones(table.num_rows)])
    solution = np.linalg.lstsq(x, table.column("target").to_numpy(), rcond=None)[0]
    LinearFlavor(solution[:-1], solution[-1], signature).save(out)
'''


def test_your_own_flavor_from_outside_the_repository(diabetes_data, run_cli, shell_env, ray_cluster, ray_driver,
                                                     tmp_path):
    """A Model subclass in a directory this process cannot import is registered through the CLI
    and served by replicas that get it through the application's runtime_env."""
    import importlib.util

    project = tmp_path / "team_project"
    project.mkdir()
    (project / "team_flavor.py").write_text(TEAM_FLAVOR)
    assert importlib.util.find_spec("team_flavor") is None
    env = {**shell_env, "PYTHONPATH": str(project)}
    saved = tmp_path / "saved"
    train_uri, test_uri = split_uri(diabetes_data, "train"), split_uri(diabetes_data, "test")
    fitted = run_cli(f"python -c 'import team_flavor; team_flavor.fit(\"{train_uri}\", \"{saved}\")'", env)
    assert fitted.returncode == 0, fitted.stderr
    # The command runs on the cluster: the flavor's module travels with it (--code).
    done = run_cli(f"raymlops registry register diabetes-team --flavor team_flavor:LinearFlavor --path {saved} "
                   f"--code {project / 'team_flavor.py'} --reference {train_uri} --label target --test {test_uri} "
                   "--json", shell_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["r2"] > 0.3

    cfg = load_config(None, ServeConfig, ["model_name=diabetes-team", "route_prefix=/diabetes-team",
                                         "records.sink=none", "replicas.max_replicas=1",
                                         f"code=[{project / 'team_flavor.py'}]"])
    deployed = deploy(cfg)
    try:
        rows, _ = feature_rows(diabetes_data)
        answer = httpx.post(f"{deployed.url}/v1/models/diabetes-team/predict", json={"instances": rows[:2]}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert [set(p) for p in answer.json()["predictions"]] == [{"value"}, {"value"}]
    finally:
        remove_served_model("diabetes-team", ray_cluster)


def test_a_scikit_learn_model_trains_and_tunes_as_ray_jobs_and_travels_the_loop(penguins_data, run_cli, shell_env,
                                                                                 registry, tmp_path, ray_cluster,
                                                                                 ray_driver):
    estimator = "sklearn.ensemble:HistGradientBoostingClassifier"
    done = run_cli(f"raymlops train --set model_name=penguins-hgb --set data.path={penguins_data} "
                   f"--set model.estimator={estimator} --set 'model.params={{max_iter: 40}}'", shell_env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"[raymlops] fitted {estimator}" in done.stdout
    first = registry.get("penguins-hgb:1")
    assert first.metrics["accuracy"] > 0.9 and "model.skops" in first.manifest, first.metrics
    assert registry.aliases("penguins-hgb") == {"champion": 1, "candidate": 1}

    tune_config = tmp_path / "tune-hgb.yaml"
    tune_config.write_text(f"""
base:
  model_name: penguins-hgb
  data: {{path: {penguins_data}}}
  model: {{estimator: "{estimator}"}}
  scaling: {{cpus_per_worker: 0.5}}
  gate: {{margin: -1.0}}
search_space:
  model.params.max_iter: {{type: choice, values: [10, 60]}}
  model.params.learning_rate: {{type: loguniform, low: 0.02, high: 0.3}}
tune: {{num_samples: 3, max_concurrent_trials: 1}}
""")
    tuned = run_cli(f"raymlops tune --config {tune_config}", shell_env, timeout=600)
    assert tuned.returncode == 0, tuned.stdout[-3000:] + tuned.stderr[-3000:]
    second = registry.get("penguins-hgb:2")
    lineage = second.lineage
    assert lineage["trigger"]["kind"] == "tune" and len(lineage["extra"]["trials"]) == 3
    assert set(lineage["extra"]["best_params"]) == {"model.params.max_iter", "model.params.learning_rate"}
    assert "model.skops" in second.manifest and registry.aliases("penguins-hgb")["candidate"] == 2

    features = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
    rows = [{k: r[k] for k in features} for r in read_table(split_uri(penguins_data, "train")).to_pylist()]

    def shift(row):
        return {**row, "bill_length_mm": row["bill_length_mm"] + 15, "body_mass_g": row["body_mass_g"] + 1500}

    travel_the_loop("penguins-hgb", rows, shift, "bill_length_mm", registry, run_cli, shell_env, ray_cluster)


def test_a_pytorch_model_from_mlflow_is_served(diabetes_data, run_cli, shell_env, ray_cluster, ray_driver, tmp_path):
    """An MLflow pytorch model (opted in: MLflow pickles it) is registered from its directory
    through the CLI and served through MLflow's pyfunc by the replicas."""
    import mlflow.pytorch
    import torch

    train = read_table(split_uri(diabetes_data, "train"))
    names = [n for n in train.column_names if n != "target"]
    x = torch.tensor(np.column_stack([train.column(n).to_numpy() for n in names]), dtype=torch.float32)
    y = torch.tensor(train.column("target").to_numpy(), dtype=torch.float32)
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(len(names), 1))
    optimizer = torch.optim.Adam(network.parameters(), lr=0.5)
    for _ in range(800):
        loss = torch.nn.functional.mse_loss(network(x)[:, 0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    mlflow.pytorch.save_model(network, tmp_path / "mlflow-model", input_example=x[:2].numpy())
    train_uri, test_uri = split_uri(diabetes_data, "train"), split_uri(diabetes_data, "test")
    command = (f"raymlops registry register diabetes-mlflow --flavor mlflow --path {tmp_path / 'mlflow-model'} "
               f"--reference {train_uri} --label target --test {test_uri} --json")
    refused = run_cli(command, shell_env)
    assert refused.returncode == 2 and "--allow-pickle" in refused.stderr
    done = run_cli(command + " --allow-pickle", shell_env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["r2"] > 0.2

    cfg = load_config(None, ServeConfig, ["model_name=diabetes-mlflow", "route_prefix=/diabetes-mlflow",
                                         "records.sink=none", "replicas.max_replicas=1"])
    deployed = deploy(cfg)
    try:
        rows, _ = feature_rows(diabetes_data)
        answer = httpx.post(f"{deployed.url}/v1/models/diabetes-mlflow/predict", json={"instances": rows[:2]},
                            timeout=30)
        assert answer.status_code == 200, answer.text
        expected = network(torch.tensor([[r[n] for n in names] for r in rows[:2]], dtype=torch.float32))[:, 0]
        np.testing.assert_allclose([p["value"] for p in answer.json()["predictions"]], expected.detach().numpy(),
                                   rtol=1e-4)
        v2 = httpx.post(f"{deployed.url}/v2/models/diabetes-mlflow/infer", json=tritonclient_body(rows[:2]), timeout=30)
        assert v2.status_code == 200 and v2.json()["outputs"][0]["name"] == "value", v2.text
    finally:
        remove_served_model("diabetes-mlflow", ray_cluster)


def test_a_tensor_regression_travels_the_loop(run_cli, shell_env, registry, ray_cluster, ray_driver):
    """The digit images with the digit's value as a number: a CNN regression on two DDP workers,
    its embedding watched for drift."""
    data = prepare_dataset(PrepareConfig(dataset="digits", task="regression",
                                         output="$RAYMLOPS_HOME/data/digits-regression")).directory
    common = (f"raymlops train --set model_name=digits-value --set data.path={data} --set model.builder=small_cnn "
              "--set 'model.params={channels: 8, embedding: 8}' --set train.epochs=6 --set train.lr=0.01 "
              "--set scaling.num_workers=2 --set detector.reference_rows=400")
    for extra in ("", " --set train.seed=1 --set gate.margin=-1000"):
        done = run_cli(common + extra, shell_env, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    first = registry.get("digits-value:1")
    assert first.metrics["r2"] > 0.5 and set(first.metrics) >= {"rmse", "mae"}, first.metrics
    rows = [{"image": np.asarray(v, dtype=float).reshape(1, 8, 8).tolist()}
            for v in read_table(split_uri(data, "test")).column("image").to_pylist()]

    def invert(row):
        return {"image": (16.0 - np.asarray(row["image"])).tolist()}

    travel_the_loop("digits-value", rows, invert, None, registry, run_cli, shell_env, ray_cluster)
