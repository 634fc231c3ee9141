"""Serving: traffic, replicas, batching, records, access and limits (``configs/serve.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from raymlops.config.base import StrictModel


class TrafficSettings(StrictModel):
    """How requests are shared between the live versions (changed live with `raymlops traffic set`)."""

    canary_weight: float = Field(0.0, ge=0, le=1, description="Share of requests the canary (`candidate`) answers.")
    shadow_version: int | None = Field(None, ge=1, description="A version that also receives a share of requests in "
                                       "the background; its answers are logged, never returned.")
    shadow_share: float = Field(0.0, ge=0, le=1, description="Share of requests copied to the shadow version.")
    sticky_field: str | None = Field(
        None, description="Request field whose value keeps a caller on one version (the `x-raymlops-key` header "
        "always works).",
    )
    shadow_max_in_flight: int = Field(64, ge=1, description="Shadow predictions a replica runs at once; beyond "
                                      "this, shadow copies are skipped and counted, never queued.")


class ReplicaSettings(StrictModel):
    """Replicas of the model server deployment."""

    min_replicas: int = Field(1, ge=1, description="Autoscaling lower bound.")
    max_replicas: int = Field(2, ge=1, description="Autoscaling upper bound.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Autoscaling target per replica.")
    upscale_delay_s: float = Field(30.0, ge=0, description="How long load must stay high before adding a replica.")
    downscale_delay_s: float = Field(600.0, ge=0, description="How long load must stay low before removing one.")
    max_ongoing_requests: int = Field(32, ge=1, description="Requests a replica works on at once.")
    num_cpus: float = Field(0.25, gt=0, description="CPUs reserved per replica (fractional on small machines).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per model replica (`separate` layout only).")
    health_check_period_s: float = Field(10.0, gt=0, description="How often Serve checks that each replica "
                                         "can still predict.")
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0, description="How long a stopping replica may finish "
                                               "its requests and flush its records.")
    max_replicas_per_node: int | None = Field(None, ge=1, description="Model replicas one node may hold (1 spreads "
                                              "them over nodes for availability); unset = no limit.")


class RouterSettings(StrictModel):
    """Replicas of the router in the `separate` layout (it holds no model)."""

    min_replicas: int = Field(1, ge=1, description="Autoscaling lower bound.")
    max_replicas: int = Field(2, ge=1, description="Autoscaling upper bound.")
    num_cpus: float = Field(0.1, gt=0, description="CPUs reserved per router replica.")


class BatchSettings(StrictModel):
    """Dynamic batching of prediction calls with `@serve.batch`."""

    enabled: bool | None = Field(None, description="Group concurrent requests into one model call; unset = on for "
                                 "replicas with GPUs (`replicas.num_gpus > 0`), off otherwise.")
    max_batch_size: int = Field(16, ge=1, description="Most requests in one model call.")
    batch_wait_timeout_s: float = Field(0.002, ge=0, description="How long the first request waits for others.")


class RecordSettings(StrictModel):
    """The prediction stream every replica sends to its sink."""

    sink: str = Field("none", description="`monitor` (the model's drift monitor actor, started by `raymlops deploy`), "
                      "`none`, `actor` (fire-and-forget `ingest(batch)` calls to the named Ray actor in `options`) or "
                      "`package.module:Class` implementing RecordSink.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the sink, e.g. "
                                    "`{actor_name: raymlops-monitor-penguins}` for `actor`.")
    capacity: int = Field(10_000, ge=1, description="Rows a replica buffers at most; beyond, rows are dropped "
                          "and counted.")
    flush_rows: int = Field(1024, ge=1, description="Flush when this many rows are buffered; also the most "
                            "rows one flush sends (a backlog goes at the next looks, 50 ms apart at most).")
    flush_ms: float = Field(1000.0, gt=0, description="...or when the oldest buffered row is this old (each flush "
                            "is one Ray call on the replica's event loop: fewer, larger flushes cost callers less).")


class AccessSettings(StrictModel):
    """Who may call the model server (admin endpoints always need the admin bearer token)."""

    require_api_key: bool = Field(False, description="Every model endpoint but v2 health needs an API key "
                                  "(`x-api-key` header or `Authorization: Bearer`). Calls pinned to a version always do.")
    api_key_sha256: list[str] = Field(default_factory=list, description="SHA-256 digests of accepted API keys "
                                      "(`raymlops apikey create` prints one); keys in `$RAYMLOPS_API_KEYS` at "
                                      "deploy time are added. Never put keys themselves in YAML.")
    feedback_key_sha256: list[str] = Field(default_factory=list, description="SHA-256 digests of the keys that may "
                                           "post feedback labels (`raymlops apikey create --scope feedback`); keys in "
                                           "`$RAYMLOPS_FEEDBACK_KEYS` at deploy time are added. Without one, only the "
                                           "admin token may label answers.")

    trusted_modules: list[str] | None = Field(None, description="Module prefixes the replicas may import a "
                                              "version's code from (user flavors, builders, record sinks), e.g. "
                                              "`[my_team_models]`; `raymlops` is always allowed. Unset = any module "
                                              "a registered version names (whoever registers is trusted).")

    @field_validator("api_key_sha256", "feedback_key_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{digest[:12]}... is not a SHA-256 hex digest (64 lowercase hex characters)")
        return value


class RequestLimits(StrictModel):
    """Bounds on a single request."""

    max_rows: int = Field(1000, ge=1, description="Rows per request; more is a 413.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Bytes per request body; more is a 413.")


class EnvironmentSettings(StrictModel):
    """Whether a version may be served by packages other than those it was trained with."""

    on_mismatch: Literal["refuse", "warn"] = Field(
        "refuse", description="A replica whose release (major.minor) of Python or of a package the version's flavor "
        "depends on differs from the version's recorded one: `refuse` to load it (the error names package and "
        "versions), or `warn` and serve it.")
    runtime_env: Literal["replica", "recorded"] = Field(
        "replica", description="`recorded`: each version deployment runs in the version's recorded environment "
        "(Ray runtime_env `image_uri` when an image was recorded, else `pip` pins of its packages; `layout: "
        "separate` only, and the cluster must reach a package index or have the image). `replica`: the "
        "replicas' own packages.")


class ServeConfig(StrictModel):
    """``configs/serve.yaml``: one model behind the raymlops router on Ray Serve."""

    model_name: str = Field("penguins", description="Registry name of the model to serve.")
    app_name: str | None = Field(None, description="Serve application name; unset = the model name.")
    route_prefix: str | None = Field(
        None, pattern=r"^/[A-Za-z0-9._~/-]*$",
        description="HTTP route prefix of the application; unset = `/<app name>` (e.g. `/penguins`), so several "
        "models share one cluster. `/` serves the model at the root (one such app per cluster).")
    layout: Literal["colocated", "separate"] = Field(
        "colocated", description="`colocated`: every live version in the same replicas, split decided in-process "
        "(no extra hop per request; for models that fit together). `separate`: one deployment per version "
        "behind a router, each autoscaling on its own (for large or GPU models).",
    )
    registry: str | None = Field("configs/registry.yaml", description="Registry config file; unset = defaults.")
    monitor: str | None = Field("configs/monitor.yaml", description="Drift monitor config, used when "
                                "`records.sink` is `monitor`; unset = defaults.")
    traffic: TrafficSettings = Field(default_factory=TrafficSettings, description="Traffic split.")
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings, description="Replicas and autoscaling.")
    router: RouterSettings = Field(default_factory=RouterSettings, description="Router replicas (`separate`).")
    batching: BatchSettings = Field(default_factory=BatchSettings, description="Dynamic batching.")
    records: RecordSettings = Field(default_factory=RecordSettings, description="Prediction stream.")
    access: AccessSettings = Field(default_factory=AccessSettings, description="API keys.")
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Request limits.")
    environment: EnvironmentSettings = Field(default_factory=EnvironmentSettings,
                                             description="Environment parity of served versions.")
    code: list[str] = Field(
        default_factory=list, description="Your code the replicas import (a model flavor `package.module:Class`, "
        "a builder): local module files or package directories, uploaded to the cluster with the application "
        "(runtime_env `py_modules`), or remote URIs (s3://, gs://, https://…zip) passed as they are.")

    @model_validator(mode="after")
    def _recorded_needs_separate(self) -> "ServeConfig":
        if self.environment.runtime_env == "recorded" and self.layout != "separate":
            raise ValueError("environment.runtime_env: recorded gives each version its own environment, so it needs "
                             "layout: separate (colocated versions share one replica)")
        return self

    @property
    def application(self) -> str:
        """The Serve application's name: ``app_name``, else the model name."""
        return self.app_name or self.model_name

    @property
    def prefix(self) -> str:
        """The application's route prefix: ``route_prefix``, else ``/<application>``."""
        return self.route_prefix or f"/{self.application}"
