"""Where a Serve application answers HTTP: Serve's proxy, and with direct ingress (in raymlops'
default Serve settings) each ingress replica's own port.

Serve's controller keeps these as target groups — what an external load balancer registers.
Without direct ingress (or before a replica runs) the targets are the proxies.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

REPLICA_TARGET_PREFIX = "SERVE_REPLICA::"  # how Serve names a replica target (proxies are named otherwise)


def http_endpoints(target_groups: Iterable[Any], replicas_only: bool = False) -> list[str]:
    """Base URLs (``http://ip:port/prefix``) of the HTTP targets in Serve's target groups.

    Accepts ``TargetGroup`` models or their dicts; ``replicas_only`` keeps the replicas' own ports.
    """
    urls = []
    for group in target_groups:
        data = group.model_dump() if hasattr(group, "model_dump") else dict(group)
        protocol = getattr(data.get("protocol"), "value", data.get("protocol"))
        if str(protocol) != "HTTP":
            continue
        prefix = (data.get("route_prefix") or "/").rstrip("/")
        for target in data.get("targets", []):
            if replicas_only and not str(target.get("name", "")).startswith(REPLICA_TARGET_PREFIX):
                continue
            urls.append(f"http://{target['ip']}:{target['port']}{prefix}")
    return sorted(set(urls))


async def app_endpoints(app_name: str) -> list[str]:
    """The application's HTTP endpoints, asked from Serve's controller (inside the cluster)."""
    from ray.serve.context import _get_global_client

    client: Any = _get_global_client()
    controller = client._controller
    return http_endpoints(await asyncio.wait_for(controller.get_target_groups.remote(app_name), timeout=10))


def replica_endpoints(app_name: str, timeout_s: float = 10) -> list[str]:
    """Each ingress replica's own HTTP endpoint (direct ingress), asked from a connected driver.

    Asked as Serve's HAProxy manager asks: with HAProxy as the front door, other callers are
    given HAProxy's address. Empty when direct ingress is off or no replica runs yet.
    """
    import ray
    from ray.serve.context import _get_global_client

    client: Any = _get_global_client()
    groups = ray.get(client._controller.get_target_groups.remote(app_name, from_proxy_manager=True), timeout=timeout_s)
    return http_endpoints(groups, replicas_only=True)


def direct_endpoints(endpoints: Iterable[str], proxy_url: str) -> list[str]:
    """The endpoints that are not Serve's proxy (another host:port than ``proxy_url``): replica ports."""
    from urllib.parse import urlparse

    proxy = urlparse(proxy_url).netloc
    return [url for url in endpoints if urlparse(url).netloc != proxy]


def grpc_target(serve_state: dict[str, Any], host: str) -> str | None:
    """``host:port`` of the cluster's v2 gRPC service, from Serve's state (dashboard REST API); None
    when Serve has no gRPC port or does not register raymlops' servicer."""
    from raymlops.serve.grpc_v2 import SERVICER_FUNCTION

    options = serve_state.get("grpc_options") or {}
    if SERVICER_FUNCTION not in (options.get("grpc_servicer_functions") or []) or not options.get("port"):
        return None
    bound = (serve_state.get("http_options") or {}).get("host")  # Serve's gRPC ports share the HTTP host
    return f"{bound if bound and bound not in ('0.0.0.0', '::') else host}:{options['port']}"


def wait_grpc_ready(target: str, app_name: str, timeout_s: float) -> None:
    """Wait until ``app_name`` answers the v2 gRPC service at ``target``.

    HTTP reaches a new app at once (through Serve's fallback proxy), gRPC only once the front door
    has the replicas' own gRPC ports, which on a busy machine can take seconds.

    Raises:
        ClusterError: the app does not answer gRPC within ``timeout_s``.
    """
    import time

    import grpc

    from raymlops.errors import ClusterError
    from raymlops.serve import grpc_v2

    deadline, problem = time.time() + timeout_s, ""
    with grpc.insecure_channel(target) as channel:
        stub = grpc_v2.GRPCInferenceServiceStub(channel)
        while time.time() < deadline:
            try:
                stub.ServerLive(grpc_v2.ServerLiveRequest(), metadata=[("application", app_name)], timeout=5)
                return
            except grpc.RpcError as exc:
                problem = f"{exc.code().name}: {exc.details()}"
            time.sleep(0.25)
    raise ClusterError(problem=f"application {app_name} does not answer gRPC on {target} after {timeout_s:.0f} s "
                       f"({problem})", fix="see `serve status` and the HAProxy manager's log in the session dir")
