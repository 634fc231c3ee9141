"""A training worker killed mid-run resumes from its checkpoint; a tune run registers its best trial."""

import os
import signal
import time

import psutil

from raymlops.config import SynthConfig
from raymlops.data import synthesize
from raymlops.submission import submit, wait_for
from raymlops.submission.client import job_client


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
    assert wait_for(job_id, client, echo=lambda _: None, timeout_s=600) == "SUCCEEDED", client.get_job_logs(job_id)[-3000:]
    logs = client.get_job_logs(job_id)
    assert "resumed from checkpoint: continuing at epoch" in logs
    version = registry.get("synth-recovery")
    history = version.lineage["extra"]["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3, 4, 5, 6]  # no epoch lost or repeated
    assert version.metrics["epochs"] == 6
    assert version.metrics["accuracy"] > version.metrics["majority_baseline"] + 0.1


def test_tune_registers_the_best_of_three_trials(shell_env, run_cli, penguins_data, registry):
    result = run_cli(
        "raymlops tune --set base.model_name=penguins-tuned --set base.train.epochs=3 --set tune.num_samples=3 "
        "--set tune.max_concurrent_trials=2 --set tune.grace_period=1",
        shell_env, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    version = registry.get("penguins-tuned")
    lineage = version.lineage
    assert lineage["trigger"]["kind"] == "tune" and lineage["trigger"]["tune_run"] == lineage["extra"]["tune_run"]
    trials = lineage["extra"]["trials"]
    assert len(trials) == 3
    assert all(set(t["params"]) == {"train.lr", "train.batch_size", "model.params.hidden"} for t in trials)
    best = max(t["final"]["val_accuracy"] for t in trials)
    assert lineage["extra"]["best_params"] in [t["params"] for t in trials if t["final"]["val_accuracy"] == best]
    assert registry.aliases("penguins-tuned")["candidate"] == version.version
