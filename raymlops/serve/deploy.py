"""Deploy a model through Serve's declarative REST API.

``deploy`` writes the same application config a user could ``serve deploy`` (the next
``traffic_version`` included: a redeploy is a traffic write too); traffic changes go through
the cluster's traffic writer (:mod:`raymlops.serve.writer`). Other Serve applications on the
cluster are kept as they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from raymlops import auth
from raymlops.cluster import ClusterAddresses, dashboard_get, resolve_addresses
from raymlops.config import RegistryConfig, ServeConfig
from raymlops.errors import ClusterError, NotFoundError, RaymlopsError
from raymlops.registry import Registry
from raymlops.registry.registry import absolute_settings
from raymlops.serve.access import FEEDBACK_KEYS_ENV, api_key_digests_from_env, digest
from raymlops.serve.args import AppArgs
from raymlops.serve.control import (
    DEPLOYMENT,
    VERSION_KEY,
    declared_traffic,
    failure_summary,
    traffic_version,
    version_deployment,
)
from raymlops.serve.endpoints import grpc_target, wait_grpc_ready
from raymlops.serve.split import TrafficPolicy

APPLICATIONS_PATH = "/api/serve/applications/"


@dataclass(frozen=True)
class Deployed:
    """What is live after a deploy or a traffic change."""

    app_name: str
    url: str
    user_config: dict[str, Any]
    model: str = ""
    endpoints: tuple[str, ...] = ()
    """Every HTTP endpoint of the app: Serve's proxy (``url``) and, with direct ingress, each replica's port."""


def registry_settings(cfg: ServeConfig) -> dict[str, Any]:
    """The registry config with locations made absolute, as replicas must see them — except a
    database URL that holds a password: that one is passed as ``${RAYMLOPS_REGISTRY_URL}``, which
    replicas read from the cluster's environment, so no secret lands in Serve's application config.

    Raises:
        ConfigError: the registry config itself holds a password in clear.
    """
    import os
    from urllib.parse import urlparse

    from raymlops.config import find_config, load_config
    from raymlops.errors import ConfigError
    from raymlops.registry.registry import REGISTRY_URL_ENV

    written = load_config(find_config(cfg.registry, "registry"), RegistryConfig).database_url or ""
    if "${" not in written and urlparse(written).password:
        raise ConfigError(file=str(cfg.registry), problems=[(
            "database_url", "holds a password in clear; write ${RAYMLOPS_REGISTRY_URL} (or another ${VAR}) and set "
            "the variable in the cluster's environment")])
    settings = absolute_settings(cfg.registry)
    if urlparse(settings["database_url"]).password:
        settings["database_url"] = written if "${" in written else f"${{{REGISTRY_URL_ENV}}}"
        if "${" not in written and not os.environ.get(REGISTRY_URL_ENV):
            raise ConfigError(file=str(cfg.registry), problems=[("database_url", "holds a password")])
    return settings


def traffic_user_config(cfg: ServeConfig, registry: Registry) -> dict[str, Any]:
    """Stable = `champion`, canary = `candidate` when it differs, plus the configured shares.

    Raises:
        NotFoundError: the model has no champion to serve.
    """
    stable = registry.resolve(cfg.model_name, "champion")
    try:
        candidate = registry.resolve(cfg.model_name, "candidate")
    except NotFoundError:
        candidate = None
    canary = candidate if candidate not in (None, stable) else None
    return {
        "stable_version": stable, "canary_version": canary,
        "canary_weight": cfg.traffic.canary_weight if canary is not None else 0.0,
        "shadow_version": cfg.traffic.shadow_version,
        "shadow_share": cfg.traffic.shadow_share if cfg.traffic.shadow_version else 0.0,
        "sticky_field": cfg.traffic.sticky_field,
    }


def batching_of(cfg: ServeConfig):
    """The batching settings the replicas get: unset ``enabled`` means on for GPU replicas, whose
    throughput comes from batching, and off on CPUs, where a batch only adds its wait."""
    enabled = cfg.batching.enabled if cfg.batching.enabled is not None else cfg.replicas.num_gpus > 0
    return cfg.batching.model_copy(update={"enabled": enabled})


def app_args(cfg: ServeConfig, registry: dict[str, Any], live_versions: set[int]) -> dict[str, Any]:
    """The ``args`` of :func:`raymlops.serve.app.build_app`: settings, the admin token's digest and
    the digests of the API and feedback keys (from config, ``$RAYMLOPS_API_KEYS`` and
    ``$RAYMLOPS_FEEDBACK_KEYS``) — never a secret itself."""
    api_keys = sorted({*cfg.access.api_key_sha256, *api_key_digests_from_env()})
    feedback_keys = sorted({*cfg.access.feedback_key_sha256, *api_key_digests_from_env(FEEDBACK_KEYS_ENV)})
    return AppArgs(
        model_name=cfg.model_name, layout=cfg.layout,
        versions=sorted(live_versions) if cfg.layout == "separate" else [],
        registry=registry, limits=cfg.limits, batching=batching_of(cfg), records=cfg.records,
        access=cfg.access.model_copy(update={"api_key_sha256": api_keys, "feedback_key_sha256": feedback_keys}),
        admin_token_sha256=digest(auth.ensure_admin_token()),
        shadow_max_in_flight=cfg.traffic.shadow_max_in_flight, environment=cfg.environment,
    ).model_dump(mode="json")


def _autoscaling(min_replicas: int, max_replicas: int, replicas) -> dict[str, Any]:
    return {"min_replicas": min_replicas, "max_replicas": max_replicas,
            "target_ongoing_requests": replicas.target_ongoing_requests,
            "upscale_delay_s": replicas.upscale_delay_s, "downscale_delay_s": replicas.downscale_delay_s}


def application_config(cfg: ServeConfig, registry: dict[str, Any], user_config: dict[str, Any],
                       runtime_env: dict[str, Any] | None = None,
                       environments: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One Serve application entry for the model, in the configured layout (with ``runtime_env``,
    e.g. the user's code as uploaded ``py_modules``, for every replica). With
    ``environment.runtime_env: recorded`` each version deployment gets the runtime_env that
    recreates its recorded environment (``environments``: version → its lineage ``environment``)."""
    from raymlops.models.environment import recorded_runtime_env

    replicas = cfg.replicas
    live = TrafficPolicy.from_user_config(user_config).live_versions if cfg.layout == "separate" else set()
    model_options = {
        "max_ongoing_requests": replicas.max_ongoing_requests,
        "health_check_period_s": replicas.health_check_period_s,
        "graceful_shutdown_timeout_s": replicas.graceful_shutdown_timeout_s,
        "autoscaling_config": _autoscaling(replicas.min_replicas, replicas.max_replicas, replicas),
    }
    if replicas.max_replicas_per_node is not None:
        model_options["max_replicas_per_node"] = replicas.max_replicas_per_node
    if cfg.layout == "colocated":
        deployments = [{"name": DEPLOYMENT, "user_config": user_config,
                        "ray_actor_options": {"num_cpus": replicas.num_cpus}, **model_options}]
    else:
        router = cfg.router
        deployments = [{"name": DEPLOYMENT, "user_config": user_config,
                        "max_ongoing_requests": replicas.max_ongoing_requests,
                        "graceful_shutdown_timeout_s": replicas.graceful_shutdown_timeout_s,
                        "ray_actor_options": {"num_cpus": router.num_cpus},
                        "autoscaling_config": _autoscaling(router.min_replicas, router.max_replicas, replicas)}]
        for version in sorted(live):
            options: dict[str, Any] = {"num_cpus": replicas.num_cpus, "num_gpus": replicas.num_gpus}
            recorded = (environments or {}).get(version)
            if cfg.environment.runtime_env == "recorded" and recorded:
                options["runtime_env"] = {**(runtime_env or {}), **recorded_runtime_env(recorded)}
            deployments.append({"name": version_deployment(version), **model_options, "ray_actor_options": options})
    app = {
        "name": cfg.application,
        "route_prefix": cfg.prefix,
        "import_path": "raymlops.serve.app:build_app",
        "args": app_args(cfg, registry, live),
        "deployments": deployments,
    }
    if runtime_env:
        app["runtime_env"] = runtime_env
    return app


def serve_state(addresses: ClusterAddresses) -> dict[str, Any]:
    """Serve's instance details, as the dashboard's REST API gives them."""
    return dashboard_get(addresses, APPLICATIONS_PATH)


def _http_options(addresses: ClusterAddresses, state: dict[str, Any]) -> dict[str, Any]:
    """Serve's running HTTP options; when Serve is not started yet, the cluster's own address
    (never Serve's default of every interface)."""
    current = state.get("http_options") or {}
    if current.get("host"):
        return current
    from urllib.parse import urlparse

    serve_url = urlparse(addresses.serve_http or f"http://{addresses.host}:8000")
    return {"host": serve_url.hostname, "port": serve_url.port or 8000}


def _put(addresses: ClusterAddresses, applications: list[dict[str, Any]], http_options: dict[str, Any]) -> None:
    body = {"applications": applications, "http_options": http_options}
    response = httpx.put(addresses.dashboard + APPLICATIONS_PATH, json=body, headers=auth.auth_headers(), timeout=30)
    if response.status_code >= 400:
        raise ClusterError(problem=f"Serve refused the application config ({response.status_code}): {response.text[:300]}",
                           fix="check configs/serve.yaml with `raymlops config validate`")


def _others(state: dict[str, Any], app_name: str) -> list[dict[str, Any]]:
    """The other applications' configs, kept as they are."""
    return [app["deployed_app_config"] for name, app in (state.get("applications") or {}).items()
            if name != app_name and app.get("deployed_app_config")]


def _wait_running(addresses: ClusterAddresses, app_name: str, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    status, message = "UNKNOWN", ""
    while time.time() < deadline:
        app = (serve_state(addresses).get("applications") or {}).get(app_name, {})
        status = app.get("status", "UNKNOWN")
        # the app says which deployments failed; each deployment says why (its replicas' error)
        message = "\n".join([app.get("message", ""), *(d.get("message", "") for d in
                                                       (app.get("deployments") or {}).values())])
        if status == "RUNNING":
            return
        if status in ("DEPLOY_FAILED", "UNHEALTHY"):
            break
        time.sleep(0.5)
    raise RaymlopsError(message=f"Serve application {app_name} is {status}: {failure_summary(message)}")


def check_route_prefix(cfg: ServeConfig, state: dict[str, Any]) -> None:
    """Refuse a route prefix another application already has (Serve would fail the whole update).

    Raises:
        ConfigError: naming ``route_prefix``, the application holding it, and the fix.
    """
    from raymlops.errors import ConfigError

    for name, app in (state.get("applications") or {}).items():
        taken = app.get("route_prefix") or (app.get("deployed_app_config") or {}).get("route_prefix")
        if name != cfg.application and taken == cfg.prefix:
            raise ConfigError(file="serve config", problems=[(
                "route_prefix", f"{cfg.prefix} is already the route of application {name!r} on this cluster; set "
                f"route_prefix (or app_name) to a free one, e.g. --set route_prefix=/{cfg.model_name}")])


def deploy(cfg: ServeConfig, addresses: ClusterAddresses | None = None, timeout_s: float = 180) -> Deployed:
    """Deploy (or update) the model's application and wait until it is RUNNING.

    Everything that can be checked first is (the route prefix, the champion in the registry, the
    code upload). With ``records.sink: monitor`` the model's drift monitor is then started (a Ray
    job that creates the detached actor when it is not running yet). A deploy that fails leaves
    nothing behind: a new application is removed, an updated one gets its previous config back,
    and a monitor this deploy started is stopped.
    """
    addresses = addresses or resolve_addresses()
    state = serve_state(addresses)
    check_route_prefix(cfg, state)
    registry_cfg = registry_settings(cfg)
    registry = Registry.from_config(RegistryConfig.model_validate(registry_cfg))
    try:
        user_config = traffic_user_config(cfg, registry)
        environments = {v: registry.get(f"{cfg.model_name}:{v}").lineage.get("environment") or {}
                        for v in TrafficPolicy.from_user_config(user_config).live_versions} \
            if cfg.environment.runtime_env == "recorded" else None  # read only when deployments need them
    finally:
        registry.close()
    runtime_env = None
    if cfg.code:
        from raymlops.submission.client import job_client, upload_code

        runtime_env = upload_code(cfg.code, job_client(addresses))
    app = application_config(cfg, registry_cfg, user_config, runtime_env, environments)
    started_monitor = False
    if cfg.records.sink == "monitor":
        started_monitor = _start_monitor(cfg, addresses)
    try:
        state = serve_state(addresses)
        user_config[VERSION_KEY] = traffic_version(declared_traffic(state, app["name"])) + 1  # a redeploy is a write
        _put(addresses, [*_others(state, app["name"]), app], _http_options(addresses, state))
        _wait_running(addresses, app["name"], timeout_s)
        target = grpc_target(state, addresses.host)
        if target is not None:
            wait_grpc_ready(target, app["name"], timeout_s)
    except BaseException:
        _roll_back(addresses, app["name"], state, cfg.model_name if started_monitor else None)
        raise
    url = f"{addresses.serve_http}{cfg.prefix.rstrip('/')}"
    return Deployed(app["name"], url, user_config, cfg.model_name, _endpoints(url, cfg.model_name))


def _start_monitor(cfg: ServeConfig, addresses: ClusterAddresses) -> bool:
    """Start the model's monitor; returns whether this call started it (it was not running)."""
    from raymlops.actors import monitor_name
    from raymlops.cluster import actor_alive
    from raymlops.monitor.client import start_monitor

    running = actor_alive(addresses, monitor_name(cfg.model_name))
    start_monitor(cfg.model_name, cfg.monitor)
    return not running


def _roll_back(addresses: ClusterAddresses, app_name: str, before: dict[str, Any], started_monitor_of: str | None) -> None:
    """After a failed deploy: the application as it was before (absent if it was new), and the
    monitor stopped when the deploy had started it."""
    previous = ((before.get("applications") or {}).get(app_name) or {}).get("deployed_app_config")
    try:
        now = serve_state(addresses)
        _put(addresses, [*_others(now, app_name), *([previous] if previous else [])], _http_options(addresses, now))
        deadline = time.time() + 60
        while not previous and app_name in (serve_state(addresses).get("applications") or {}) and time.time() < deadline:
            time.sleep(0.5)  # Serve deletes it asynchronously: return once it is gone
    except RaymlopsError:
        pass  # the original error says what went wrong; Serve may be unreachable
    if started_monitor_of is not None:
        stop_actors_of(started_monitor_of, addresses)


def stop_actors_of(model: str, addresses: ClusterAddresses) -> None:
    """Stop the model's monitor and rollout controller: directly from a connected driver (on the
    cluster), else through a command job (``raymlops undeploy``), so any client can."""
    import ray

    from raymlops.actors import stop_model_actors

    if ray.is_initialized():
        stop_model_actors(model)
        return
    from raymlops.submission import submit_and_follow

    submit_and_follow(["python", "-m", "raymlops.jobs.command", "undeploy", model], working_dir=None)


def _endpoints(url: str, model: str) -> tuple[str, ...]:
    """The app's HTTP endpoints as its replicas report them (just ``url`` if they cannot say)."""
    try:
        response = httpx.get(f"{url}/v1/models/{model}", timeout=10,  # admin: also when API keys are required
                             headers={"authorization": f"Bearer {auth.ensure_admin_token()}"})
        found = response.json().get("endpoints") if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        found = None
    return tuple(found or [url])


@dataclass(frozen=True)
class Undeployed:
    """What ``undeploy`` removed."""

    app_name: str
    model: str
    removed_app: bool
    stopped_actors: tuple[str, ...]


def served_model(state: dict[str, Any], app_name: str) -> str | None:
    """The model an application serves (its raymlops args), or None for another kind of app."""
    config = ((state.get("applications") or {}).get(app_name) or {}).get("deployed_app_config") or {}
    args = config.get("args") or {}
    return args.get("model_name") if isinstance(args, dict) else None


def undeploy(name: str, addresses: ClusterAddresses | None = None, model: str | None = None) -> Undeployed:
    """Remove a model's Serve application (the others are kept), and its drift monitor and rollout
    controller unless another application still serves the model. ``name`` is the application's
    name or the model's. Connects a Ray driver to stop the actors (on the cluster, as
    ``raymlops undeploy`` runs it)."""
    from raymlops.actors import connect_driver, stop_model_actors

    addresses = addresses or resolve_addresses()
    state = serve_state(addresses)
    apps = state.get("applications") or {}
    app_name = name if name in apps else next((app for app in apps if served_model(state, app) == name), name)
    model = model or served_model(state, app_name) or name
    removed = app_name in apps
    if removed:
        _put(addresses, _others(state, app_name), _http_options(addresses, state))
    if any(served_model(state, other) == model for other in apps if other != app_name):
        return Undeployed(app_name, model, removed, ())
    connect_driver(addresses.gcs)
    return Undeployed(app_name, model, removed, tuple(stop_model_actors(model)))


def model_base_url(model: str, addresses: ClusterAddresses | None = None, route_prefix: str | None = None) -> str:
    """The base URL a client calls the model at: its Serve URL plus the route prefix of the
    application that serves ``model`` (asked from the dashboard; ``route_prefix`` when given; the
    default ``/<model>`` when no application serves it)."""
    addresses = addresses or resolve_addresses()
    if route_prefix is None:
        try:
            state = serve_state(addresses)
        except ClusterError:
            state = {}
        apps = state.get("applications") or {}
        serving = [name for name in apps if served_model(state, name) == model]
        name = model if model in serving else (serving[0] if serving else None)
        route_prefix = (apps[name].get("route_prefix") or "/") if name else f"/{model}"
    return f"{addresses.serve_http}{route_prefix.rstrip('/')}"
