"""The arguments of a model server application (the ``args`` of a Serve config entry)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from raymlops.config import AccessSettings, BatchSettings, EnvironmentSettings, RecordSettings, RequestLimits


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
    environment: EnvironmentSettings = Field(default_factory=EnvironmentSettings, description="Environment parity.")
    admin_token_sha256: str | None = Field(None, description="Digest of the admin token; unset = the token of "
                                           "this machine's RAYMLOPS_ADMIN_TOKEN or admin token file, if any.")
    shadow_max_in_flight: int = Field(64, ge=1, description="Shadow predictions a replica runs at once.")
