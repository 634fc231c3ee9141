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
