"""The store protocol: what training, serving, monitoring and rollouts need of a registry.

:class:`raymlops.registry.Registry` implements it on SQL + pyarrow filesystems (SQLite
in a temp directory is fast enough for tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Protocol, runtime_checkable

from raymlops.types import AliasMove, Event, ModelRef, ModelVersion


@runtime_checkable
class ModelStore(Protocol):
    """Register, get, resolve aliases, move aliases, list, and record/read events."""

    def register(self, name: str, artifact_dir: str | Path, metrics: dict[str, float] | None = None,
                 lineage: Any = None, description: str = "", actor: str | None = None) -> ModelVersion: ...

    def get(self, ref: ModelRef | str) -> ModelVersion: ...

    def download(self, ref: ModelRef | str, destination: str | Path | None = None) -> Path: ...

    def resolve(self, name: str, alias: str) -> int: ...

    def set_alias(self, name: str, alias: str, version: int, expected: Any = ..., actor: str | None = None) -> AliasMove: ...

    def delete_alias(self, name: str, alias: str, expected: Any = ..., actor: str | None = None) -> AliasMove: ...

    def list_models(self) -> list[dict[str, Any]]: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def add_event(self, model: str, kind: str, version: int | None = None, payload: dict[str, Any] | None = None,
                  actor: str | None = None) -> Event: ...

    def events(self, model: str | None = None, kinds: Iterable[str] | None = None, since: float | None = None,
               until: float | None = None, limit: int | None = 1000) -> list[Event]: ...
