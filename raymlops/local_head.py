"""Starting and stopping the single-machine head node behind ``raymlops up`` and ``down``.

Every process of a cluster started here carries its temp directory in its command line
or descends from one that does; :func:`cluster_processes` finds exactly those, so
``down`` never touches another Ray cluster on the same machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

from raymlops import auth, bind_host, front_door
from raymlops.cluster import (
    ClusterAddresses,
    ClusterState,
    addresses_from_config,
    addresses_from_env,
    is_running,
    port_in_use,
    read_state,
    state_path,
)
from raymlops.config import LocalClusterConfig
from raymlops.errors import ClusterError


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: ``started`` is False when a cluster was already there."""

    started: bool
    addresses: ClusterAddresses
    message: str


class ProcessLike(Protocol):
    """The slice of ``psutil.Process`` that process selection needs."""

    pid: int

    def cmdline(self) -> list[str]: ...


def default_temp_dir() -> str:
    """A short per-user temp root (Ray's socket paths must stay under ~107 characters)."""
    return str(Path(tempfile.gettempdir()) / f"raymlops-{os.getuid()}")


def select_cluster_processes(
    processes: Iterable[ProcessLike], temp_dir: str, gcs_address: str | None = None
) -> list[ProcessLike]:
    """The roots of one cluster: processes whose command line names its ``temp_dir`` or GCS address.

    A path must match whole (``/tmp/raymlops-0`` does not select ``/tmp/raymlops-01``) and
    an address exactly; no two live clusters share either.
    """
    root = temp_dir.rstrip("/")
    chosen = []
    for process in processes:
        try:
            args = process.cmdline()
        except Exception:  # noqa: BLE001 - processes vanish or deny access while we look
            continue
        for arg in args:
            value = arg.split("=", 1)[-1]
            if value == root or value.startswith(root + "/") or (gcs_address and value == gcs_address):
                chosen.append(process)
                break
    return chosen


def _ray_cli(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


def _run(command: list[str], env: dict[str, str], timeout: float, what: str) -> None:
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ClusterError(problem=f"{what} did not finish within {timeout:.0f} s", fix="see `raymlops status` and Ray's logs") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise ClusterError(problem=f"{what} failed: {tail}", fix="see the message above; `raymlops down` cleans up")


def _start_command(cfg: LocalClusterConfig, temp_dir: str) -> list[str]:
    command = [
        _ray_cli("ray"), "start", "--head", "--disable-usage-stats",
        f"--node-ip-address={cfg.host}", f"--port={cfg.gcs_port}",
        f"--dashboard-host={cfg.host}", f"--dashboard-port={cfg.dashboard_port}",
        f"--metrics-export-port={cfg.metrics_export_port}", f"--temp-dir={temp_dir}",
        f"--ray-client-server-port={cfg.client_server_port}", "--include-dashboard=true",
        f"--dashboard-agent-listen-port={cfg.dashboard_agent_port}",
    ]
    if cfg.num_cpus is not None:
        command.append(f"--num-cpus={cfg.num_cpus}")
    if cfg.num_gpus is not None:
        command.append(f"--num-gpus={cfg.num_gpus}")
    if cfg.object_store_memory_mb is not None:
        command.append(f"--object-store-memory={cfg.object_store_memory_mb * 1024 * 1024}")
    return command


def up(cfg: LocalClusterConfig) -> UpResult:
    """Start the local head node (and Serve's proxy) unless one is already running.

    Raises:
        ClusterError: a port is taken by something else, or Ray fails to start.
    """
    env_address = os.environ.get("RAY_ADDRESS", "").strip()
    state = read_state()
    if state is not None and is_running(state.addresses):
        return UpResult(False, state.addresses, f"already running (dashboard {state.addresses.dashboard}); nothing changed")
    if env_address and env_address not in ("auto", "local"):
        return UpResult(False, addresses_from_env(env_address),
                        f"RAY_ADDRESS={env_address} names an existing cluster; nothing started")
    if state is not None:  # recorded but dead: clear what is left of it
        stop_processes(state.temp_dir, state.addresses.gcs)
        state_path().unlink(missing_ok=True)

    ports = {"gcs_port": cfg.gcs_port, "dashboard_port": cfg.dashboard_port,
             "metrics_export_port": cfg.metrics_export_port, "client_server_port": cfg.client_server_port,
             "dashboard_agent_port": cfg.dashboard_agent_port}
    temp_dir = cfg.temp_dir or default_temp_dir()
    door = front_door.choose(cfg.front_door if cfg.start_serve else "python", cfg.host, temp_dir,
                             cfg.haproxy_stats_port, cfg.haproxy_metrics_port,
                             lambda port: not port_in_use(cfg.host, port))
    if cfg.start_serve:
        ports["serve_http_port"] = cfg.serve_http_port
        if cfg.serve_grpc_port is not None:
            ports["serve_grpc_port"] = cfg.serve_grpc_port
    if door.kind == "haproxy":
        ports["fallback_proxy_http_port"] = cfg.fallback_proxy_http_port
        if cfg.serve_grpc_port is not None:
            ports["fallback_proxy_grpc_port"] = cfg.fallback_proxy_grpc_port
    for name, port in ports.items():
        if port_in_use(cfg.host, port):
            raise ClusterError(problem=f"port {port} ({name}) on {cfg.host} is already in use",
                               fix=f"stop what listens there or set {name} in configs/local.yaml")

    addresses = addresses_from_config(cfg)
    auth.ensure_ray_token()
    auth.ensure_admin_token()
    fallback = {"RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(cfg.fallback_proxy_http_port),
                "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(cfg.fallback_proxy_grpc_port)}
    env = {**cfg.serve_settings, **door.env, **fallback, **bind_host.environment(cfg.host), **os.environ,
           **auth.client_environment(addresses.loopback)}
    env.pop("RAY_ADDRESS", None)
    # Job entrypoints such as `python -m raymlops.jobs.train` must find this installation's python.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    state = ClusterState(addresses=addresses, temp_dir=temp_dir, started_at=time.time())
    state_path().parent.mkdir(parents=True, exist_ok=True)
    state_path().write_text(state.to_json())  # before starting, so `down` can clean up a failed start
    _run(_start_command(cfg, temp_dir), env, cfg.start_timeout_s, "ray start")
    if cfg.start_serve:
        serve = [_ray_cli("serve"), "start", f"--address={addresses.gcs}",
                 f"--http-host={cfg.host}", f"--http-port={cfg.serve_http_port}", *grpc_arguments(cfg.serve_grpc_port)]
        _run(serve, env, cfg.start_timeout_s, "serve start")
        grpc = "" if cfg.serve_grpc_port is None else \
            f"; gRPC (Open Inference Protocol v2) on {cfg.host}:{cfg.serve_grpc_port}"
        return UpResult(True, addresses, f"started (dashboard {addresses.dashboard}); "
                        f"{door.describe(cfg.host, cfg.serve_http_port)}{grpc}")
    return UpResult(True, addresses, f"started (dashboard {addresses.dashboard})")


#: What Serve's gRPC ingress registers: ``raymlops.serve.grpc_v2``'s servicer function, by import path
#: (Serve imports it in its proxies and replicas; this module never imports the serve room).
GRPC_SERVICER_FUNCTION = "raymlops.serve.grpc_v2.add_GRPCInferenceServiceServicer_to_server"


def grpc_arguments(port: int | None) -> list[str]:
    """``serve start``'s arguments for the v2 gRPC service on ``port`` (none without a port)."""
    return [] if port is None else [f"--grpc-port={port}", f"--grpc-servicer-functions={GRPC_SERVICER_FUNCTION}"]


def stop_processes(temp_dir: str, gcs_address: str | None, grace_s: float = 5.0) -> int:
    """Terminate the processes of the cluster rooted at ``temp_dir`` and their children."""
    import psutil

    roots = select_cluster_processes(psutil.process_iter(), temp_dir, gcs_address)
    victims: dict[int, Any] = {}
    for root in roots:
        victims[root.pid] = root
        try:
            victims.update({child.pid: child for child in root.children(recursive=True)})  # type: ignore[attr-defined]
        except psutil.Error:
            pass
    victims.pop(os.getpid(), None)
    for process in victims.values():
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(victims.values()), timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return len(victims)


def down() -> str:
    """Stop the cluster that ``up`` started (and nothing else); return what happened.

    Raises:
        ClusterError: when RAY_ADDRESS names a cluster that ``up`` did not start.
    """
    state = read_state()
    if state is None:
        env_address = os.environ.get("RAY_ADDRESS", "").strip()
        if env_address and env_address not in ("auto", "local"):
            raise ClusterError(problem=f"RAY_ADDRESS={env_address} is not a cluster that `raymlops up` started",
                               fix="stop it with the tool that started it")
        return "no cluster started by `raymlops up` is running; nothing to stop"
    count = stop_processes(state.temp_dir, state.addresses.gcs)
    state_path().unlink(missing_ok=True)
    _forget_current_cluster(state.addresses)
    return f"stopped {count} processes of the cluster at {state.addresses.dashboard}"


def _forget_current_cluster(addresses: ClusterAddresses) -> None:
    """Drop Ray's 'current cluster' pointer when it names the cluster we just stopped."""
    pointer = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if addresses.gcs and pointer.read_text().strip() == addresses.gcs:
            pointer.unlink()
    except OSError:
        pass
