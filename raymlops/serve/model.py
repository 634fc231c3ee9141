"""One model version as its own Serve deployment (the ``separate`` layout): for large or GPU
models that should autoscale on their own. The router reaches it through a handle."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ray import serve


@serve.deployment(name="Version")
class VersionModel:
    """Serves one registered version: ``predict(columns)`` (batched when configured) and its signature."""

    def __init__(self, model_name: str, version: int, registry: dict[str, Any], batching: dict[str, Any],
                 on_mismatch: str = "refuse", trusted_modules: list[str] | None = None) -> None:
        from raymlops.config import RegistryConfig
        from raymlops.plugins import trust_only
        from raymlops.registry import Registry
        from raymlops.serve.versions import LocalVersions

        trust_only(trusted_modules)  # before the version's code is imported
        self.version = version
        self.local = LocalVersions(Registry.from_config(RegistryConfig.model_validate(registry)), model_name, batching,
                                   on_mismatch)
        self.local.sync({version})

    async def predict(self, columns: dict[str, list]):
        """The version's answer (a ``Prediction``) for the rows of ``columns``."""
        return await self.local.predict(self.version, columns)

    def signature(self) -> str:
        """The version's input signature as JSON."""
        return self.local.models[self.version].signature.to_json()

    def outputs(self) -> list[dict[str, Any]]:
        """What the version answers (``OutputSpec`` fields)."""
        return [asdict(spec) for spec in self.local.models[self.version].outputs]

    def environment(self) -> dict[str, Any]:
        """The version's environment check in this replica (``raymlops.models.environment.parity``)."""
        return self.local.environments[self.version]

    def check_health(self) -> None:
        """Fail when the model cannot predict a probe row."""
        self.local.check_health()
