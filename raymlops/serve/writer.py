"""The cluster's one traffic writer: every traffic change goes through it, one at a time.

Three kinds of caller change a model's traffic — ``raymlops traffic set`` (through the
model's ``PUT /admin/models/{name}/traffic``), that endpoint itself, and the rollout
controller — and each used to rewrite Serve's whole config from what it had read, so two
racing changes overwrote each other. Now they all call :class:`TrafficWriter`, a detached
actor (one per cluster, found by name) that runs one change at a time: it reads Serve's
config, checks the caller's expected ``traffic_version`` (compare-and-set: the losing
writer gets :class:`~raymlops.errors.ConflictError`, a 409 at the HTTP edge), writes the
change with the next version, and waits until every replica routes by it. A whole-config
write from elsewhere (``raymlops deploy`` of another app) that carried an older version over
it is noticed and the change written again; a redeploy of the same app wins (409).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from raymlops.actors import NAMESPACE
from raymlops.cluster import ClusterAddresses, client_admin_token, resolve_addresses
from raymlops.errors import ClusterError, ConflictError, InvalidRequestError, NotFoundError, RaymlopsError

#: The writer's actor name (namespace :data:`raymlops.actors.NAMESPACE`).
WRITER_NAME = "raymlops-traffic-writer"
#: How often one change is written again after another app's deploy carried an older version over it.
MAX_REWRITES = 3
#: How long a caller waits for its turn and the write (seconds), beyond the change's own timeout.
QUEUE_WAIT_S = 60


class TrafficWriter:
    """Writes traffic changes to Serve one at a time (a synchronous actor runs one call at a time)."""

    def change(self, app_name: str, changes: dict[str, Any], expected_version: int | None = None,
               timeout_s: float = 30) -> dict[str, Any]:
        """Apply ``changes`` to the app's traffic; returns the new settings (with their version)
        once every replica routes by them.

        Raises:
            ConflictError: ``expected_version`` is not the current version, or a redeploy of the
                app replaced the change while it was applied.
            NotFoundError / InvalidRequestError: see :func:`raymlops.serve.control.with_traffic`.
            ClusterError: the replicas did not take the change within ``timeout_s``.
        """
        from ray.serve.context import _get_global_client

        from raymlops.serve.control import check_expected_version, declared_traffic, traffic_version

        client: Any = _get_global_client()
        state = client.get_serve_details()
        check_expected_version(app_name, traffic_version(declared_traffic(state, app_name)), expected_version)
        for _ in range(1 + MAX_REWRITES):
            user_config = self._write(client, state, app_name, changes)
            outcome, state = self._await(client, app_name, user_config, timeout_s)
            if outcome == "applied":
                return user_config
            if outcome == "superseded":
                raise ConflictError(what="traffic_version", problem=f"the application {app_name} was redeployed "
                                    "while this traffic change was applied; read its traffic again and retry")
        raise ClusterError(problem=f"the traffic change to {app_name} was overwritten {MAX_REWRITES} times by "
                           "deploys of other applications", fix="retry once those deploys have finished")

    @staticmethod
    def _write(client: Any, state: dict[str, Any], app_name: str, changes: dict[str, Any]) -> dict[str, Any]:
        from ray.serve.schema import ServeDeploySchema

        from raymlops.serve.control import declared_traffic, traffic_version, with_traffic

        version = traffic_version(declared_traffic(state, app_name)) + 1
        applications, http_options, user_config = with_traffic(state, app_name, changes, version)
        body: dict[str, Any] = {"applications": applications}
        if http_options:
            body["http_options"] = http_options
        client.deploy_apps(ServeDeploySchema.model_validate(body))
        return user_config

    @staticmethod
    def _await(client: Any, app_name: str, user_config: dict[str, Any],
               timeout_s: float) -> tuple[str, dict[str, Any]]:
        from raymlops.serve.control import wait_until_applied, write_outcome

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = client.get_serve_details()
            outcome = write_outcome(state, app_name, user_config)
            if outcome != "pending":
                return outcome, state
            time.sleep(0.1)
        wait_until_applied(client.get_serve_details, app_name, user_config, timeout_s=0)  # raises, naming why
        return "applied", client.get_serve_details()


def traffic_writer() -> Any:
    """The cluster's traffic writer, started on first use (detached, no CPU, restarted if it dies).
    Needs a connected Ray driver (a replica, an actor, a job)."""
    import ray

    actor = ray.remote(TrafficWriter).options(name=WRITER_NAME, namespace=NAMESPACE, lifetime="detached",
                                              get_if_exists=True, num_cpus=0, max_restarts=-1)
    return actor.remote()


def change_traffic_in_cluster(app_name: str, changes: dict[str, Any], expected_version: int | None = None,
                              timeout_s: float = 30) -> dict[str, Any]:
    """Apply a traffic change through the cluster's writer (blocking: call it off the event loop).

    Raises:
        ConflictError / NotFoundError / InvalidRequestError / ClusterError: as the writer raises them.
    """
    import ray

    call = traffic_writer().change.remote(app_name, changes, expected_version, timeout_s)
    try:
        return ray.get(call, timeout=timeout_s + QUEUE_WAIT_S)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RaymlopsError):
            raise exc.cause from None
        raise
    except ray.exceptions.GetTimeoutError:
        raise ClusterError(problem=f"the traffic writer did not answer within {timeout_s + QUEUE_WAIT_S:.0f} s",
                           fix="check the raymlops-traffic-writer actor in the Ray dashboard") from None


def set_traffic(app_name: str, changes: dict[str, Any], addresses: ClusterAddresses | None = None,
                timeout_s: float = 60, expected_version: int | None = None):
    """Change the live traffic of a deployed application from anywhere that reaches the cluster's
    addresses: the change goes to the model's ``PUT /admin/models/{name}/traffic`` (with the admin
    token), which hands it to the cluster's traffic writer.

    Returns:
        :class:`raymlops.serve.deploy.Deployed` with the new settings (``traffic_version`` included).

    Raises:
        NotFoundError: no such application, or not a raymlops one.
        ConflictError: ``expected_version`` is not the current traffic version.
        InvalidRequestError: an impossible split, naming the setting.
        ClusterError: the model's endpoint did not answer, or the replicas did not take the change.
    """
    from raymlops.serve.deploy import Deployed, model_base_url, serve_state, served_model

    addresses = addresses or resolve_addresses()
    state = serve_state(addresses)
    model = served_model(state, app_name)
    if app_name not in (state.get("applications") or {}) or model is None:
        raise NotFoundError(what="raymlops application on the cluster", name=app_name)
    route_prefix = state["applications"][app_name].get("route_prefix") or "/"
    url = f"{model_base_url(model, addresses, route_prefix)}/admin/models/{model}/traffic"
    headers = {"authorization": f"Bearer {client_admin_token(addresses)}"}
    if expected_version is not None:
        headers["if-match"] = str(expected_version)
    try:
        response = httpx.put(url, json=changes, headers=headers, timeout=timeout_s + QUEUE_WAIT_S)
    except httpx.HTTPError as exc:
        raise ClusterError(problem=f"the model's endpoint {url} did not answer ({type(exc).__name__})",
                           fix="check the application with `raymlops status`") from None
    if response.status_code >= 400:
        raise _error_of(response, app_name)
    return Deployed(app_name, addresses.serve_http or "", response.json()["traffic"], model)


def _error_of(response: httpx.Response, app_name: str) -> RaymlopsError:
    """The raymlops error an admin endpoint's error body describes."""
    try:
        error = response.json().get("error") or {}
        field, problem = error.get("field", "request"), error.get("problem", response.text[:300])
    except (ValueError, AttributeError):
        field, problem = "request", response.text[:300]
    if response.status_code == 409:
        return ConflictError(what=field, problem=problem)
    if response.status_code == 404:
        return NotFoundError(what="raymlops application on the cluster", name=app_name)
    if response.status_code in (401, 403):
        return ClusterError(problem=f"the model endpoint refused the admin token: {problem}",
                            fix="run the CLI on the head node, or set RAYMLOPS_ADMIN_TOKEN to the cluster's")
    if response.status_code < 500:
        return InvalidRequestError(field=field, problem=problem)
    return ClusterError(problem=f"{field}: {problem}", fix="check the replicas in the Ray dashboard")
