"""Integration tests run the real thing: real Ray processes on 127.0.0.1."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def cli_env(tmp_path):
    """A factory of isolated environments: own RAYMLOPS_HOME and Ray token file, venv first on PATH."""

    def make(name: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYMLOPS_"))}
        env["RAYMLOPS_HOME"] = str(tmp_path / name / "home")
        env["RAY_AUTH_TOKEN_PATH"] = str(tmp_path / "ray_auth_token")
        env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
        return env

    return make


@pytest.fixture
def run_cli():
    """Run a shell command line; returns the CompletedProcess (text, both streams)."""

    def run(command: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 240):
        return subprocess.run(
            ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )

    return run
