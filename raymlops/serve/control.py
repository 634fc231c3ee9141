"""Changing a deployed model's traffic: one pure merge, one versioned write.

Every traffic change (``raymlops traffic set``, ``PUT /admin/models/{name}/traffic``, the
rollout controller) is written by the cluster's one traffic writer
(:mod:`raymlops.serve.writer`) through the Serve controller. Only the ``user_config`` of the
``ModelServer`` deployment changes, which Serve turns into ``reconfigure()`` on every running
replica — no replica restarts. Each write carries the next ``traffic_version``, so a writer
that read an older version is refused (compare-and-set) and a whole-config write that carried
an older one is noticed.
"""

from __future__ import annotations

import copy
import time
from typing import Any, Callable

from raymlops.errors import ClusterError, ConflictError, InvalidRequestError, NotFoundError
from raymlops.serve.split import TrafficPolicy

#: The deployment that holds the traffic settings (the ingress, in both layouts).
DEPLOYMENT = "ModelServer"
#: Prefix of the per-version deployments of the ``separate`` layout.
VERSION_DEPLOYMENT_PREFIX = "Version"
#: The keys of ``user_config`` a traffic change may set.
TRAFFIC_KEYS = ("stable_version", "canary_version", "canary_weight", "shadow_version", "shadow_share", "sticky_field",
                "retiring_version")
#: The ``user_config`` key numbering an app's traffic settings (set by writers, never by a change).
VERSION_KEY = "traffic_version"


def version_deployment(version: int) -> str:
    """The deployment name of one version in the ``separate`` layout."""
    return f"{VERSION_DEPLOYMENT_PREFIX}{version}"


def deployed_versions(app: dict[str, Any]) -> set[int] | None:
    """The versions with their own deployment (``separate`` layout), or ``None`` (colocated)."""
    names = [d["name"] for d in app.get("deployments", [])]
    versions = {int(n[len(VERSION_DEPLOYMENT_PREFIX):]) for n in names
                if n.startswith(VERSION_DEPLOYMENT_PREFIX) and n[len(VERSION_DEPLOYMENT_PREFIX):].isdigit()}
    return versions or None


def checked_traffic(current: dict[str, Any], changes: dict[str, Any], deployed: set[int] | None) -> dict[str, Any]:
    """The new ``user_config``: ``current`` with ``changes`` applied, refused when impossible.

    Raises:
        InvalidRequestError: an unknown key, an impossible split, or (``separate`` layout) a
            version that has no deployment — naming the field.
    """
    for key in changes:
        if key not in TRAFFIC_KEYS:
            raise InvalidRequestError(field=key, problem=f"not a traffic setting; use one of {list(TRAFFIC_KEYS)}")
    merged = {**current, **changes}
    # Clearing a version clears its share, unless the same change sets that share explicitly.
    if merged.get("canary_version") is None and "canary_weight" not in changes:
        merged["canary_weight"] = 0.0
    if merged.get("shadow_version") is None and "shadow_share" not in changes:
        merged["shadow_share"] = 0.0
    retiring = merged.get("retiring_version")
    if retiring is not None and retiring == merged.get("canary_version") and "canary_version" not in changes \
            and float(changes.get("canary_weight") or 0) > 0:
        raise InvalidRequestError(field="canary_version", problem=f"the canary is v{retiring}, the previous champion "
                                  "kept loaded for a rollback; name the version this weight is for (canary_version)")
    if "canary_version" in changes and "retiring_version" not in changes:
        merged["retiring_version"] = None  # a canary named on purpose is no longer the one kept for rollback
    try:
        policy = TrafficPolicy.from_user_config(merged)
    except KeyError as exc:
        raise InvalidRequestError(field=str(exc.args[0]), problem="is required") from None
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError(field="traffic", problem=str(exc)) from None
    if deployed is not None and not policy.live_versions <= deployed:
        missing = sorted(policy.live_versions - deployed)
        raise InvalidRequestError(field="version", problem=f"versions {missing} have no deployment in the separate "
                                  "layout; run `raymlops deploy` after moving the aliases")
    return merged


def declared_traffic(state: dict[str, Any], app_name: str) -> dict[str, Any] | None:
    """The traffic settings Serve's declared config holds for the app (None: no such app)."""
    app = ((state.get("applications") or {}).get(app_name) or {}).get("deployed_app_config")
    if app is None:
        return None
    deployment = next((d for d in app.get("deployments", []) if d["name"] == DEPLOYMENT), None)
    return (deployment or {}).get("user_config") or {}


def traffic_version(user_config: dict[str, Any] | None) -> int:
    """The version number of traffic settings (0 before any versioned write)."""
    return int((user_config or {}).get(VERSION_KEY) or 0)


def check_expected_version(app_name: str, current: int, expected: int | None) -> None:
    """Compare-and-set: a writer that names the version it read loses to a write made since.

    Raises:
        ConflictError: the traffic is at another version than ``expected``.
    """
    if expected is not None and expected != current:
        raise ConflictError(what="traffic_version", problem=f"the traffic of {app_name} is at version {current}, "
                            f"not {expected}: another change was written since; read it again and retry")


def write_outcome(state: dict[str, Any], app_name: str, intended: dict[str, Any]) -> str:
    """Where a traffic write stands: ``applied`` (every replica routes by it), ``pending``,
    ``reverted`` (a whole-config write carrying an older version replaced it: write it again), or
    ``superseded`` (a newer write, or a redeploy of the app, replaced it)."""
    declared = declared_traffic(state, app_name)
    if declared is None:
        return "superseded"
    if declared != intended:
        return "reverted" if traffic_version(declared) < traffic_version(intended) else "superseded"
    return "applied" if traffic_applied(state, app_name, intended) else "pending"


def with_traffic(state: dict[str, Any], app_name: str, changes: dict[str, Any],
                 version: int | None = None) -> tuple[list[dict], dict, dict]:
    """Serve's whole declarative config with one app's traffic changed.

    Args:
        state: Serve's instance details (the dashboard's ``GET /api/serve/applications/``).
        version: the ``traffic_version`` the new settings carry (kept as it was when None).

    Returns:
        (applications, http_options, the new user_config); the other apps are kept as they are.

    Raises:
        NotFoundError: no such application.
        InvalidRequestError: see :func:`checked_traffic`.
    """
    apps = state.get("applications") or {}
    app = copy.deepcopy((apps.get(app_name) or {}).get("deployed_app_config"))
    if app is None:
        raise NotFoundError(what="Serve application", name=app_name)
    deployment = next((d for d in app.get("deployments", []) if d["name"] == DEPLOYMENT), None)
    if deployment is None:
        raise NotFoundError(what="raymlops deployment in Serve application", name=app_name)
    user_config = checked_traffic(deployment.get("user_config") or {}, changes, deployed_versions(app))
    if version is not None:
        user_config[VERSION_KEY] = version
    deployment["user_config"] = user_config
    others = [a["deployed_app_config"] for name, a in apps.items() if name != app_name and a.get("deployed_app_config")]
    return [*others, app], state.get("http_options") or {}, user_config


def _ingress_details(state: dict[str, Any], app_name: str) -> dict[str, Any]:
    """The ``ModelServer`` deployment's entry in Serve's instance details (empty when missing)."""
    app = (state.get("applications") or {}).get(app_name) or {}
    return (app.get("deployments") or {}).get(DEPLOYMENT) or {}


def traffic_applied(state: dict[str, Any], app_name: str, user_config: dict[str, Any]) -> bool:
    """Whether every replica of the app's ingress now routes by ``user_config``.

    Serve takes a new ``user_config`` as the deployment's target in its next control loop and
    reports the deployment ``UPDATING`` until every replica has run ``reconfigure()``; so the
    change is live once the target carries it and the deployment is ``HEALTHY`` again.
    """
    deployment = _ingress_details(state, app_name)
    target = (deployment.get("deployment_config") or {}).get("user_config")
    return target == user_config and deployment.get("status") == "HEALTHY"


def wait_until_applied(read_state: Callable[[], dict[str, Any]], app_name: str, user_config: dict[str, Any],
                       timeout_s: float = 30, every_s: float = 0.1) -> None:
    """Block until :func:`traffic_applied` holds for the state ``read_state`` returns.

    Raises:
        ClusterError: the replicas did not take the change within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        state = read_state()
        if traffic_applied(state, app_name, user_config):
            return
        if time.monotonic() >= deadline:
            deployment = _ingress_details(state, app_name)
            raise ClusterError(problem=f"the traffic change to {app_name} was accepted but its replicas did not take "
                               f"it within {timeout_s:.0f} s (deployment {deployment.get('status', 'missing')}: "
                               f"{(deployment.get('message') or 'no message')[:300]})",
                               fix="check the Serve replicas in the Ray dashboard; the change is applied as soon as "
                               "they are healthy")
        time.sleep(every_s)


def failure_summary(message: str, limit: int = 600) -> str:
    """What a failed application's message says, short: its raymlops error when there is one
    (Serve puts the replica's traceback first and the error last), else its end."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if not lines:
        return "no message"
    errors = [line for line in lines if "raymlops.errors." in line]
    return (errors[-1][errors[-1].index("raymlops.errors."):] if errors else " ".join(lines))[-limit:]
