"""raymlops as a package, not a checkout: the wheel, installed into a fresh virtual environment,
gives the job entrypoints, the default configs and `raymlops init`, and its commands work from a
directory outside the repository against the session cluster."""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _not_sources(directory, names):
    """What the wheel is not built from: environments, caches, build output, the local data dir."""
    skipped = {".venv", ".git", "build", "dist", "__pycache__", ".hypothesis"}
    return [n for n in names if n in skipped or n.endswith(("_cache", ".egg-info"))
            or (n == "data" and Path(directory) == ROOT)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv holding only the built wheel; its dependencies come from this environment's
    site-packages through a .pth file (nothing is downloaded), never this checkout."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(ROOT, source, symlinks=True, ignore=_not_sources)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(base / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((base / "dist").glob("raymlops-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]
    return venv, base


def test_the_wheel_carries_jobs_configs_and_a_scaffold(installed, run_cli, shell_env):
    venv, base = installed
    env = {**shell_env, "PATH": os.pathsep.join([str(venv / "bin"), shell_env["PATH"]]), "PYTHONPATH": ""}
    outside = base / "elsewhere"
    outside.mkdir()
    where = run_cli("python -c 'import raymlops; print(raymlops.__file__)'", env, cwd=outside)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout, where.stdout + where.stderr

    jobs = run_cli("python -c 'import importlib; [importlib.import_module(f\"raymlops.jobs.{j}\").main for j in "
                   "(\"train\", \"tune\", \"score\", \"monitor\", \"command\")]'", env, cwd=outside)
    assert jobs.returncode == 0, jobs.stderr[-1500:]
    helped = run_cli("python -m raymlops.jobs.score --help", env, cwd=outside)
    assert helped.returncode == 0 and "usage" in helped.stdout.lower(), helped.stderr[-1500:]
    defaults = run_cli("python -c 'from raymlops.config import CONFIG_MODELS, packaged_default; "
                       "print(sorted(k for k in CONFIG_MODELS if packaged_default(k).is_file()))'", env, cwd=outside)
    assert defaults.stdout.strip() == str(sorted(["local", "data", "registry", "train", "tune", "serve", "monitor",
                                                  "rollout", "pipeline"])), defaults.stderr

    made = run_cli("raymlops init fraud", env, cwd=outside)
    assert made.returncode == 0, made.stderr
    project = outside / "fraud"
    for kind in ("train", "serve", "monitor", "pipeline"):
        valid = run_cli(f"raymlops config validate configs/{kind}.yaml", env, cwd=project)
        assert valid.returncode == 0, valid.stdout + valid.stderr
    # A bad job config fails with one line, from the packaged entrypoint, outside any checkout.
    bad = run_cli("python -m raymlops.jobs.train --set data.path=/nonexistent", env, cwd=project)
    assert bad.returncode == 2 and bad.stderr.startswith("error: /nonexistent"), bad.stderr[-1500:]

    # The cluster from outside the repository: a command that runs on the cluster, and status.
    listed = run_cli("raymlops registry list --json", env, cwd=outside, timeout=300)
    assert listed.returncode == 0 and listed.stdout.lstrip().startswith("["), listed.stdout + listed.stderr
    status = run_cli("raymlops status", env, cwd=outside)
    assert status.returncode == 0 and "nodes: 1" in status.stdout, status.stderr
