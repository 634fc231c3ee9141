"""Where a Serve application answers HTTP: Serve's proxy, and with direct ingress (in raymlops'
default Serve settings) each ingress replica's own port.

Serve's controller keeps these as target groups — what an external load balancer registers.
Without direct ingress (or before a replica runs) the targets are the proxies.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable


def http_endpoints(target_groups: Iterable[Any]) -> list[str]:
    """Base URLs (``http://ip:port/prefix``) of the HTTP targets in Serve's target groups.

    Accepts ``TargetGroup`` models or their dicts.
    """
    urls = []
    for group in target_groups:
        data = group.model_dump() if hasattr(group, "model_dump") else dict(group)
        protocol = getattr(data.get("protocol"), "value", data.get("protocol"))
        if str(protocol) != "HTTP":
            continue
        prefix = (data.get("route_prefix") or "/").rstrip("/")
        for target in data.get("targets", []):
            urls.append(f"http://{target['ip']}:{target['port']}{prefix}")
    return sorted(set(urls))


async def app_endpoints(app_name: str) -> list[str]:
    """The application's HTTP endpoints, asked from Serve's controller (inside the cluster)."""
    from ray.serve.context import _get_global_client

    client: Any = _get_global_client()
    controller = client._controller
    return http_endpoints(await asyncio.wait_for(controller.get_target_groups.remote(app_name), timeout=10))


def direct_endpoints(endpoints: Iterable[str], proxy_url: str) -> list[str]:
    """The endpoints that are not Serve's proxy (another host:port than ``proxy_url``): replica ports."""
    from urllib.parse import urlparse

    proxy = urlparse(proxy_url).netloc
    return [url for url in endpoints if urlparse(url).netloc != proxy]
