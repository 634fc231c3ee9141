"""Integration and chaos tests run the real thing: real Ray processes on 127.0.0.1, one session
cluster shared by both (its fixtures live here so that there is only one)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
# Ray reads this when it is imported: with it, a driver in this process finds the loopback-only
# session cluster (node IP 127.0.0.1) instead of looking for it on the external interface.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        if "tests/chaos" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.chaos)


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


@pytest.fixture(scope="session")
def run_cli():
    """Run a shell command line; returns the CompletedProcess (text, both streams)."""

    def run(command: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 240):
        return subprocess.run(
            ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
        )

    return run


SESSION_PORTS = {"gcs_port": 25379, "dashboard_port": 25265, "serve_http_port": 25100, "metrics_export_port": 25090,
                 "client_server_port": 25001, "dashboard_agent_port": 25365, "haproxy_stats_port": 25404,
                 "haproxy_metrics_port": 25101, "fallback_proxy_http_port": 25500, "fallback_proxy_grpc_port": 25501,
                 "serve_grpc_port": 25200}


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One local cluster for the whole session, started with `raymlops up`'s code path.

    RAYMLOPS_HOME points into a temp dir, so data, registry and runs of the tests never
    touch the user's; the cluster's processes (and so every job) inherit it.
    """
    from raymlops.config import LocalClusterConfig
    from raymlops.local_head import down, up

    home = tmp_path_factory.mktemp("raymlops-home")
    saved = {k: os.environ.get(k) for k in ("RAYMLOPS_HOME", "RAY_AUTH_TOKEN_PATH", "RAY_ADDRESS",
                                            "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S",
                                            "RAY_metrics_report_interval_ms")}
    os.environ["RAYMLOPS_HOME"] = str(home)
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(home / "ray_auth_token")
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.5"
    os.environ["RAY_metrics_report_interval_ms"] = "2000"  # metrics reach /metrics within seconds
    os.environ.pop("RAY_ADDRESS", None)
    cfg = LocalClusterConfig(**SESSION_PORTS, temp_dir=f"/tmp/rmo-s{os.getpid()}", num_cpus=2)
    try:
        result = up(cfg)
    except BaseException:
        down()  # a failed start leaves no cluster behind for the next session
        raise
    assert result.started, result.message
    try:
        yield result.addresses
    finally:
        down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def grpc_target(ray_cluster) -> str:
    """host:port of the session cluster's Open Inference Protocol v2 gRPC service."""
    return f"127.0.0.1:{SESSION_PORTS['serve_grpc_port']}"


@pytest.fixture(scope="session")
def shell_env(ray_cluster):
    """Environment for subprocesses that use the session cluster as a user would."""
    from raymlops.auth import client_environment

    env = dict(os.environ)
    env.update(client_environment(loopback=True))
    env["RAY_ADDRESS"] = ray_cluster.dashboard
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    return env


@pytest.fixture(scope="session")
def ray_driver(ray_cluster):
    """This test process connected to the session cluster as a driver (namespace ``raymlops``)."""
    import ray

    from raymlops.auth import client_environment

    os.environ.update(client_environment(loopback=True))
    ray.init(address=ray_cluster.gcs, namespace="raymlops", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def penguins_data(ray_cluster):
    """Palmer Penguins prepared at the configs' default location under RAYMLOPS_HOME."""
    from raymlops.config import PrepareConfig
    from raymlops.data import prepare_dataset

    return prepare_dataset(PrepareConfig()).directory


@pytest.fixture
def registry(ray_cluster):
    """The registry the jobs write to (defaults under the session's RAYMLOPS_HOME)."""
    from raymlops.config import RegistryConfig
    from raymlops.registry import Registry

    reg = Registry.from_config(RegistryConfig())
    yield reg
    reg.close()
