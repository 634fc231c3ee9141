"""The base of every config model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are rejected, and a loaded config is frozen (changes
    go through ``model_copy(update=...)`` or overrides, never assignment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
