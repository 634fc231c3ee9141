"""The typed Serve application builder, usable from a Serve config file:

    applications:
      - name: penguins
        import_path: raymlops.serve.app:build_app
        args: {model_name: penguins}
        deployments:
          - name: ModelServer
            user_config: {stable_version: 1, canary_version: 2, canary_weight: 0.1}

``serve deploy that.yaml`` and ``raymlops deploy`` produce the same application. With
``layout: separate`` (and ``versions: [1, 2]``) each version gets its own deployment
``Version<n>`` behind the ``ModelServer`` router.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from raymlops.config import AccessSettings, BatchSettings, RecordSettings, RequestLimits


class AppArgs(BaseModel):
    """Arguments of :func:`build_app` (validated by Serve from the config file's ``args``)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(description="Registry name of the model to serve.")
    layout: Literal["colocated", "separate"] = Field("colocated", description="See ServeConfig.layout.")
    versions: list[int] = Field(default_factory=list, description="`separate` layout: the versions that get a "
                                "deployment (the live ones must be among them).")
    registry: dict[str, Any] = Field(default_factory=dict, description="RegistryConfig fields (defaults when empty).")
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Request limits.")
    batching: BatchSettings = Field(default_factory=BatchSettings, description="Dynamic batching.")
    records: RecordSettings = Field(default_factory=RecordSettings, description="Prediction stream.")
    access: AccessSettings = Field(default_factory=AccessSettings, description="API keys.")
    admin_token_sha256: str | None = Field(None, description="Digest of the admin token; unset = the token of "
                                           "this machine's RAYMLOPS_ADMIN_TOKEN or admin token file, if any.")
    shadow_max_in_flight: int = Field(64, ge=1, description="Shadow predictions a replica runs at once.")


def build_app(args: AppArgs | dict):
    """The model server application for one model, in the configured layout."""
    from raymlops.config import RegistryConfig
    from raymlops.serve.control import version_deployment
    from raymlops.serve.model import VersionModel
    from raymlops.serve.server import ModelServer

    if isinstance(args, dict):
        args = AppArgs.model_validate(args)
    updates: dict[str, Any] = {"registry": RegistryConfig.model_validate(args.registry).model_dump(mode="json")}
    if args.admin_token_sha256 is None:
        from raymlops import auth
        from raymlops.serve.access import digest

        token = auth.read_admin_token()
        updates["admin_token_sha256"] = digest(token) if token else None
    args = args.model_copy(update=updates)
    settings = args.model_dump(mode="json")
    if args.layout == "colocated":
        return ModelServer.bind(settings)
    if not args.versions:
        raise ValueError("layout `separate` needs `versions`: the versions that get a deployment")
    handles = {version: VersionModel.options(name=version_deployment(version)).bind(
        args.model_name, version, settings["registry"], settings["batching"]) for version in args.versions}
    return ModelServer.bind(settings, handles)
