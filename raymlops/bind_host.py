"""Keep Ray Serve's gRPC servers on the local cluster's host.

Serve 2.60 binds every gRPC server it starts to every interface (``[::]``), with no setting to
change it: each replica's inter-deployment server, each ingress replica's own gRPC port when the
cluster serves gRPC (direct ingress), and the fallback proxy's gRPC port. On a cluster meant for
one machine (``host: 127.0.0.1``) that would answer the network. ``raymlops up`` starts the
cluster's processes with :func:`environment`, so every Ray worker runs :func:`bind_to_host` when
it starts (Ray's worker setup hook): wildcard addresses given to a grpc.aio server become the
host. Clusters raymlops did not start are left as their operators set them up.
"""

from __future__ import annotations

import os

#: The address Serve's gRPC servers bind to, in the cluster's environment.
HOST_ENV = "RAYMLOPS_SERVE_BIND_HOST"
#: The environment variable through which Ray runs a setup hook in each worker it starts.
SETUP_HOOK_ENV = "__RAY_WORKER_PROCESS_SETUP_HOOK_ENV_VAR"
HOOK = "raymlops.bind_host.bind_to_host"
WILDCARD_HOSTS = ("[::]", "::", "0.0.0.0", "")


def environment(host: str) -> dict[str, str]:
    """The settings that make every worker of a cluster bind Serve's gRPC servers to ``host``
    (none when ``host`` is itself a wildcard)."""
    if host in WILDCARD_HOSTS:
        return {}
    return {HOST_ENV: host, SETUP_HOOK_ENV: HOOK}


def bound_address(address: str, host: str) -> str:
    """``address`` with a wildcard host (``[::]:0``, ``0.0.0.0:9000``, ``:9000``) replaced by ``host``."""
    where, _, port = address.rpartition(":")
    if where not in WILDCARD_HOSTS or not port.isdigit():
        return address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_to_host() -> None:
    """Ray's worker setup hook: bind wildcard gRPC listeners of this process to ``$RAYMLOPS_SERVE_BIND_HOST``."""
    host = os.environ.get(HOST_ENV)
    if not host:
        return
    from grpc.aio._server import Server

    if getattr(Server.add_insecure_port, "_raymlops_bound", False):
        return
    insecure, secure = Server.add_insecure_port, Server.add_secure_port

    def add_insecure_port(self, address: str) -> int:
        return insecure(self, bound_address(address, host))

    def add_secure_port(self, address: str, server_credentials) -> int:
        return secure(self, bound_address(address, host), server_credentials)

    add_insecure_port._raymlops_bound = True  # type: ignore[attr-defined]
    Server.add_insecure_port, Server.add_secure_port = add_insecure_port, add_secure_port
