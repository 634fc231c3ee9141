"""The managed local Ray cluster: ``raymlops up | status | down``, addresses and connection.

``up`` starts one head node with every port bound to ``host`` (127.0.0.1 by default), Ray's
token authentication on, and the Serve HTTP proxy; it records what it started in
``$RAYMLOPS_HOME/cluster.json``. ``down`` stops exactly the processes of that cluster
(``ray stop`` would stop every Ray cluster on the machine). Every command also works
against an existing cluster named by ``RAY_ADDRESS``.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from raymlops import auth
from raymlops.config import LocalClusterConfig
from raymlops.errors import ClusterError

STATE_FILE = "cluster.json"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ClusterAddresses:
    """Where a cluster's endpoints are.

    Attributes:
        dashboard: base URL of the dashboard and Jobs API.
        gcs: ``host:port`` of the GCS, for ``ray.init``; None when only the dashboard is known.
        serve_http: base URL of the Serve HTTP proxy.
        metrics: Prometheus metrics URL of the head node, when known.
        managed: whether ``raymlops up`` started this cluster.
    """

    dashboard: str
    gcs: str | None = None
    serve_http: str | None = None
    metrics: str | None = None
    managed: bool = False

    @property
    def host(self) -> str:
        """Host name of the dashboard."""
        return urlparse(self.dashboard).hostname or "127.0.0.1"

    @property
    def loopback(self) -> bool:
        """Whether the cluster is on this machine's loopback interface."""
        return self.host in LOOPBACK_HOSTS


@dataclass(frozen=True)
class ClusterState:
    """What ``raymlops up`` started, as written to ``cluster.json``."""

    addresses: ClusterAddresses
    temp_dir: str
    started_at: float

    def to_json(self) -> str:
        """Serialize for the state file."""
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        """Parse the state file."""
        data = json.loads(text)
        return cls(addresses=ClusterAddresses(**data["addresses"]), temp_dir=data["temp_dir"], started_at=data["started_at"])


@dataclass
class ClusterStatus:
    """A snapshot of a running cluster for ``raymlops status``."""

    addresses: ClusterAddresses
    nodes: list[dict[str, Any]] = field(default_factory=list)
    serve_applications: dict[str, str] = field(default_factory=dict)
    serve_routes: dict[str, str] = field(default_factory=dict)
    running_jobs: list[dict[str, str]] = field(default_factory=list)

    @property
    def cpus(self) -> float:
        """CPUs over all alive nodes."""
        return sum(node.get("resources_total", {}).get("CPU", 0.0) for node in self.nodes)

    @property
    def gpus(self) -> float:
        """GPUs over all alive nodes."""
        return sum(node.get("resources_total", {}).get("GPU", 0.0) for node in self.nodes)


# --------------------------------------------------------------------------- addresses


def state_path() -> Path:
    """The state file of the cluster that ``raymlops up`` started."""
    return auth.home_dir() / STATE_FILE


def read_state() -> ClusterState | None:
    """The recorded cluster, or None when ``up`` has not started one."""
    try:
        return ClusterState.from_json(state_path().read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def addresses_from_config(cfg: LocalClusterConfig) -> ClusterAddresses:
    """The addresses a cluster started from ``cfg`` has."""
    host = cfg.host
    return ClusterAddresses(
        dashboard=f"http://{host}:{cfg.dashboard_port}",
        gcs=f"{host}:{cfg.gcs_port}",
        serve_http=f"http://{host}:{cfg.serve_http_port}",
        metrics=f"http://{host}:{cfg.metrics_export_port}/metrics",
        managed=True,
    )


def addresses_from_env(value: str) -> ClusterAddresses:
    """Addresses for ``RAY_ADDRESS``: a dashboard URL (``http://h:8265``) or a GCS address (``h:6379``)."""
    if value.startswith(("http://", "https://")):
        host = urlparse(value).hostname or "127.0.0.1"
        dashboard, gcs = value.rstrip("/"), None
    else:
        host = value.rsplit(":", 1)[0]
        dashboard = os.environ.get("RAY_API_SERVER_ADDRESS") or f"http://{host}:8265"
        gcs = value
    serve = os.environ.get("RAYMLOPS_SERVE_URL") or f"http://{host}:8000"
    return ClusterAddresses(dashboard=dashboard, gcs=gcs, serve_http=serve)


def resolve_addresses(cfg: LocalClusterConfig | None = None) -> ClusterAddresses:
    """Find the cluster to talk to: ``RAY_ADDRESS``, else the one ``up`` started, else the config's."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env not in ("auto", "local"):
        state = read_state()
        if state and env in (state.addresses.gcs, state.addresses.dashboard):
            return state.addresses
        return addresses_from_env(env)
    state = read_state()
    if state is not None:
        return state.addresses
    return addresses_from_config(cfg or LocalClusterConfig())


def client_admin_token(addresses: ClusterAddresses | None = None) -> str:
    """The admin token this client sends to the model server's /admin endpoints:
    ``$RAYMLOPS_ADMIN_TOKEN`` (or a profile's), else the token file of this machine's home — created
    only for the cluster ``raymlops up`` started here; a remote cluster's token is never invented.

    Raises:
        ClusterError: a cluster not started here, and no token was given.
    """
    addresses = addresses or resolve_addresses()
    token = auth.ensure_admin_token() if addresses.managed else auth.read_admin_token()
    if not token:
        raise ClusterError(problem=f"no admin token for the cluster at {addresses.dashboard}",
                           fix="set RAYMLOPS_ADMIN_TOKEN (on the cluster: `raymlops env --admin-token`) or use "
                               "--profile with admin_token_env")
    return token


def prepare_client_environment(addresses: ClusterAddresses) -> None:
    """Put what Ray's clients need into this process's environment (explicit values win)."""
    for key, value in auth.client_environment(addresses.loopback).items():
        os.environ.setdefault(key, value)


# --------------------------------------------------------------------------- HTTP probes


def dashboard_get(addresses: ClusterAddresses, path: str, timeout: float = 5.0) -> Any:
    """GET a dashboard REST path with the Ray token; returns parsed JSON.

    Raises:
        ClusterError: unreachable, unauthorized, or an error status.
    """
    url = addresses.dashboard + path
    try:
        response = httpx.get(url, headers=auth.auth_headers(), timeout=timeout)
    except httpx.HTTPError as exc:
        raise ClusterError(problem=f"no Ray dashboard answers at {addresses.dashboard} ({type(exc).__name__})",
                           fix="run `raymlops up`, or set RAY_ADDRESS to your cluster") from None
    if response.status_code in (401, 403):
        raise ClusterError(problem=f"the Ray dashboard at {addresses.dashboard} refused the token",
                           fix="set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH to this cluster's token")
    if response.status_code >= 400:
        raise ClusterError(problem=f"GET {url} answered {response.status_code}", fix="check the cluster's logs")
    return response.json()


def actor_alive(addresses: ClusterAddresses, name: str) -> bool:
    """Whether a named actor is alive (or starting), asked from the dashboard's state API — no Ray
    driver needed, so it works from any client."""
    from urllib.parse import quote

    found = dashboard_get(addresses, f"/api/v0/actors?filter_keys=name&filter_predicates=%3D&filter_values="
                                     f"{quote(name)}&limit=100")
    actors = ((found.get("data") or {}).get("result") or {}).get("result") or []
    return any(a.get("state") in ("ALIVE", "PENDING_CREATION", "DEPENDENCIES_UNREADY", "RESTARTING") for a in actors)


def is_running(addresses: ClusterAddresses) -> bool:
    """Whether the dashboard at ``addresses`` answers (with or without our token)."""
    try:
        httpx.get(addresses.dashboard + "/api/version", headers=auth.auth_headers(), timeout=2.0)
        return True
    except httpx.HTTPError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def status(addresses: ClusterAddresses | None = None) -> ClusterStatus:
    """Nodes, resources, Serve applications and running jobs of the resolved cluster.

    Raises:
        ClusterError: when no cluster answers.
    """
    addresses = addresses or resolve_addresses()
    nodes = dashboard_get(addresses, "/api/v0/nodes?detail=1&limit=1000")["data"]["result"]["result"]
    result = ClusterStatus(addresses=addresses, nodes=[n for n in nodes if n.get("state") == "ALIVE"])
    apps = dashboard_get(addresses, "/api/serve/applications/").get("applications") or {}
    result.serve_applications = {name: app.get("status", "?") for name, app in apps.items()}
    result.serve_routes = {name: app.get("route_prefix") or "" for name, app in apps.items()}
    jobs = dashboard_get(addresses, "/api/jobs/")
    result.running_jobs = [
        {"id": job.get("submission_id") or job.get("job_id") or "?", "status": job["status"], "entrypoint": job.get("entrypoint", "")}
        for job in jobs
        if job.get("status") in ("PENDING", "RUNNING") and job.get("type") == "SUBMISSION"
    ]
    return result
