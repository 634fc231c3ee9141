"""The local multi-node case: a head plus a second worker node on this machine, with training
workers and model replicas on both (tests/integration/multinode_scenario.py, own process)."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_training_workers_and_replicas_run_on_both_nodes(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYMLOPS_"))}
    env.update({"RAYMLOPS_HOME": str(tmp_path / "home"), "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5", "PYTHONUNBUFFERED": "1"})
    ray_tmp = tempfile.mkdtemp(prefix="rmo-mn")  # short: Ray's socket paths live under it
    env["RAY_TMPDIR"] = ray_tmp
    try:
        run = subprocess.run([sys.executable, str(HERE / "multinode_scenario.py")], env=env, cwd=HERE.parents[1],
                             capture_output=True, text=True, timeout=540)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("MULTINODE ")]
    assert run.returncode == 0 and lines, run.stdout[-3000:] + run.stderr[-5000:]
    seen = json.loads(lines[-1].removeprefix("MULTINODE "))
    assert len(seen["nodes"]) == 2, seen
    assert seen["train_workers"] == 2 and seen["train_nodes"] == seen["nodes"], seen  # one DDP worker per node
    assert seen["version"] == 1
    assert seen["replicas"] == 2 and seen["replica_nodes"] == seen["nodes"], seen  # one replica per node
    assert seen["statuses"] == [200] and seen["ok"] == 40, seen
