"""The typed Serve application builder, usable from a Serve config file:

    applications:
      - name: penguins
        import_path: raymlops.serve.app:build_app
        args: {model_name: penguins}
        deployments:
          - name: ModelServer
            user_config: {stable_version: 1, canary_version: 2, canary_weight: 0.1}

``serve deploy that.yaml`` and ``raymlops deploy`` produce the same application.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from raymlops.config import RegistryConfig, RequestLimits


class AppArgs(BaseModel):
    """Arguments of :func:`build_app` (validated by Serve from the config file's ``args``)."""

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(description="Registry name of the model to serve.")
    registry: dict[str, Any] = Field(default_factory=dict, description="RegistryConfig fields (defaults when empty).")
    limits: dict[str, Any] = Field(default_factory=dict, description="RequestLimits fields.")


def build_app(args: AppArgs):
    """The colocated model server application for one model."""
    from raymlops.serve.server import ModelServer

    if isinstance(args, dict):
        args = AppArgs.model_validate(args)
    registry = RegistryConfig.model_validate(args.registry).model_dump(mode="json")
    limits = RequestLimits.model_validate(args.limits).model_dump(mode="json")
    return ModelServer.bind(args.model_name, registry, limits)
