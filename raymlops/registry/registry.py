"""The model registry: SQL metadata plus artifacts on a pyarrow filesystem.

    registry = Registry.from_config(load_config("configs/registry.yaml", RegistryConfig))
    v = registry.register("penguins", "out/model", metrics={"accuracy": 0.97}, lineage=lineage)
    registry.set_alias("penguins", "champion", v.version, expected=None)
    local_dir = registry.download("penguins@champion", "/tmp/model")   # checksums verified
"""

from __future__ import annotations

import getpass
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from raymlops.auth import home_dir
from raymlops.config import RegistryConfig
from raymlops.errors import RegistryError
from raymlops.filesystem import S3Options
from raymlops.registry.artifacts import ArtifactStore, build_manifest
from raymlops.registry.lineage import Lineage
from raymlops.registry.sql import ANY, SqlMetadata
from raymlops.types import AliasMove, Event, ModelRef, ModelVersion, check_name

REGISTRY_URL_ENV = "RAYMLOPS_REGISTRY_URL"
ARTIFACT_ROOT_ENV = "RAYMLOPS_ARTIFACT_ROOT"


def default_actor() -> str:
    """Who is acting: ``$RAYMLOPS_ACTOR``, else the OS user."""
    try:
        return os.environ.get("RAYMLOPS_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def absolute_settings(path: str | None) -> dict[str, Any]:
    """The registry config read from ``path`` (defaults when unset or missing) with its database
    URL and artifact root made absolute, as processes elsewhere in the cluster must see them."""
    from pathlib import Path

    from raymlops.config import load_config

    path = path if path and Path(path).exists() else None
    registry_cfg = load_config(path, RegistryConfig)
    url, root = resolve_locations(registry_cfg)
    return registry_cfg.model_copy(update={"database_url": url, "artifact_root": root}).model_dump(mode="json")


def expand_reference(value: str | None, field: str) -> str | None:
    """``${VAR}`` in a setting replaced by the variable of this process's environment — how a
    secret (a database password) reaches replicas and jobs without being written into configs.

    Raises:
        ConfigError: naming the field and the variable when it is not set here.
    """
    import re

    from raymlops.errors import ConfigError

    if not value or "${" not in value:
        return value
    missing = [name for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", value) if name not in os.environ]
    if missing:
        raise ConfigError(file="registry config", problems=[(field, f"${{{missing[0]}}} is not set in this process's "
                                                             "environment (set it in the cluster's environment)")])
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ[m.group(1)], value)


def resolve_locations(cfg: RegistryConfig) -> tuple[str, str]:
    """Database URL and artifact root: environment, then config (``${VAR}`` expanded), then under
    ``$RAYMLOPS_HOME``."""
    base = home_dir() / "registry"
    url = os.environ.get(REGISTRY_URL_ENV) or expand_reference(cfg.database_url, "database_url")
    if not url:
        base.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{base / 'registry.db'}"
    root = os.environ.get(ARTIFACT_ROOT_ENV) or expand_reference(cfg.artifact_root, "artifact_root") \
        or str(base / "artifacts")
    return url, root


#: Events that lineage and drift states refer to: never pruned by retention.
LINEAGE_EVENTS = ("registered", "offline_gate", "drift_detected", "drift_cleared", "retrain_submitted",
                  "retrain_finished")
#: The events a rollout controller records for its decisions (each with the rollout's state).
ROLLOUT_DECISIONS = ("rollout_advance", "rollout_wait", "rollout_promote", "rollout_rollback", "rollout_hold",
                     "rollout_abort")


class Registry:
    """Register immutable versions, move aliases, read lineage and events."""

    def __init__(self, metadata: SqlMetadata, artifacts: ArtifactStore, required_files: Iterable[str] = ()) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.required_files = list(required_files)

    @classmethod
    def from_config(cls, cfg: RegistryConfig | None = None) -> Registry:
        """Open the registry a config describes (creating an empty one when needed)."""
        cfg = cfg or RegistryConfig()
        url, root = resolve_locations(cfg)
        env_s3 = S3Options.from_env()
        s3 = S3Options(
            endpoint_override=cfg.s3.endpoint or env_s3.endpoint_override, region=cfg.s3.region or env_s3.region,
            access_key=env_s3.access_key, secret_key=env_s3.secret_key,
        )
        return cls(SqlMetadata(url, cfg.sqlite_timeout_s), ArtifactStore(root, s3), cfg.required_files)

    # ------------------------------------------------------------------ versions

    def register(
        self,
        name: str,
        artifact_dir: str | Path,
        metrics: dict[str, float] | None = None,
        lineage: Lineage | dict[str, Any] | None = None,
        description: str = "",
        actor: str | None = None,
    ) -> ModelVersion:
        """Upload, verify and record a new immutable version; returns it with its number.

        Raises:
            InvalidNameError: a bad model name.
            RegistryError: a required file is missing from ``artifact_dir``.
            ArtifactIntegrityError / StorageError: the upload could not be verified.
        """
        check_name(name, "model name")
        local_dir = Path(artifact_dir)
        manifest = build_manifest(local_dir)
        missing = [f for f in self.required_files if f not in manifest]
        if missing:
            raise RegistryError(message=f"{local_dir}: missing required artifact file(s) {', '.join(missing)}")
        lineage_data = lineage.model_dump(mode="json") if isinstance(lineage, Lineage) else dict(lineage or {})
        uri = self.artifacts.upload(name, local_dir, manifest)
        return self.metadata.add_version(name, uri, manifest, {k: float(v) for k, v in (metrics or {}).items()},
                                         lineage_data, description, actor or default_actor())

    def get(self, ref: ModelRef | str) -> ModelVersion:
        """The version a reference names (``name`` alone means its latest version).

        Raises:
            NotFoundError: no such model, version or alias.
        """
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        if ref.alias is not None:
            return self.metadata.get_version(ref.name, self.metadata.resolve_alias(ref.name, ref.alias))
        version = ref.version if ref.version is not None else self.metadata.latest_version(ref.name)
        return self.metadata.get_version(ref.name, version)

    def download(self, ref: ModelRef | str, destination: str | Path | None = None) -> Path:
        """Copy a version's files to a local directory, verifying every checksum.

        Raises:
            ArtifactIntegrityError: naming the missing or corrupted file.
        """
        version = self.get(ref)
        target = Path(destination) if destination else Path(tempfile.mkdtemp(prefix=f"raymlops-{version.name}-v{version.version}-"))
        return self.artifacts.download(version.artifact_uri, version.manifest, target)

    def verify(self, ref: ModelRef | str) -> ModelVersion:
        """Check a version's stored files against its manifest without copying them."""
        version = self.get(ref)
        self.artifacts.verify(version.artifact_uri, version.manifest)
        return version

    def list_models(self) -> list[dict[str, Any]]:
        """Every model with its latest version, count and aliases."""
        return self.metadata.list_models()

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first."""
        return self.metadata.list_versions(check_name(name, "model name"))

    def lineage_chain(self, ref: ModelRef | str) -> list[ModelVersion]:
        """The version and its ancestors through ``lineage.parent_version``, newest first."""
        chain = [self.get(ref)]
        seen = {chain[0].version}
        while (parent := chain[-1].lineage.get("parent_version")) is not None and parent not in seen:
            seen.add(parent)
            chain.append(self.metadata.get_version(chain[0].name, int(parent)))
        return chain

    # ------------------------------------------------------------------ aliases

    def resolve(self, name: str, alias: str) -> int:
        """The version number an alias points to."""
        return self.metadata.resolve_alias(name, alias)

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of a model."""
        return self.metadata.aliases(name)

    def set_alias(self, name: str, alias: str, version: int, expected: Any = ANY, actor: str | None = None) -> AliasMove:
        """Point an alias at a version; ``expected`` makes it a compare-and-set (None = must be unset)."""
        return self.metadata.set_alias(name, alias, version, actor or default_actor(), expected)

    def delete_alias(self, name: str, alias: str, expected: Any = ANY, actor: str | None = None) -> AliasMove:
        """Remove an alias; ``expected`` makes it a compare-and-set."""
        return self.metadata.delete_alias(name, alias, actor or default_actor(), expected)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of the model's aliases, oldest first."""
        return self.metadata.alias_history(name, alias)

    # ------------------------------------------------------------------ events

    def add_event(self, model: str, kind: str, version: int | None = None, payload: dict[str, Any] | None = None,
                  actor: str | None = None) -> Event:
        """Append an event to the model's history."""
        return self.metadata.add_event(model, kind, actor or default_actor(), version, payload)

    def events(self, model: str | None = None, kinds: Iterable[str] | None = None, since: float | None = None,
               until: float | None = None, limit: int | None = 1000, ids: Iterable[int] | None = None) -> list[Event]:
        """Events by model, kind, time window (and ``ids``), oldest first."""
        return self.metadata.events(model, kinds, since, until, limit, ids)

    def active_rollout(self, name: str) -> int | None:
        """The canary version of the model's rollout in progress (running, paused or held), read
        from the rollout controller's last decision event; None when no rollout is in progress."""
        latest = self.events(name, kinds=ROLLOUT_DECISIONS, limit=1)
        state = ((latest[-1].payload or {}).get("state") or {}) if latest else {}
        version = state.get("canary_version")
        return int(version) if version is not None and state.get("phase") in ("running", "paused", "held") else None

    def prune_events(self, name: str, older_than_s: float, keep_kinds: Iterable[str] = LINEAGE_EVENTS) -> int:
        """Delete the model's events older than ``older_than_s`` seconds, keeping ``keep_kinds`` (by
        default the events lineage refers to); returns how many were deleted."""
        return self.metadata.delete_events(name, time.time() - older_than_s, keep_kinds)

    def signing_key(self, purpose: str) -> bytes:
        """The cluster's secret for ``purpose`` (``artifacts``: sealed monitor files; ``requests``:
        request ids the model servers issue). Kept in the database, never on the artifact store."""
        return bytes.fromhex(self.metadata.cluster_secret(purpose))

    def close(self) -> None:
        """Release database connections."""
        self.metadata.close()
