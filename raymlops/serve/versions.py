"""Where a model server gets its predictions: the versions loaded in this replica
(``colocated`` layout, and each version deployment of the ``separate`` layout), or handles
to one deployment per version (``separate`` layout's router).

Both offer the same calls — ``sync`` the live set, the ``schema`` (signature) and ``outputs``
of a version, and ``predict`` — so the HTTP code is the same for both layouts. Every version
is a :class:`raymlops.Model` of its flavor; answers are :class:`~raymlops.models.Prediction` s.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from typing import Any

from ray import serve

from raymlops.data.schema import DatasetSchema
from raymlops.errors import InvalidRequestError
from raymlops.models.contract import OutputSpec, Prediction

log = logging.getLogger("ray.serve")
#: Probe predictions a freshly loaded version answers before it takes traffic.
WARMUP_CALLS = 3


def concat_columns(parts: list[dict[str, list]]) -> dict[str, list]:
    """Columns of several requests as one batch (same features in every part)."""
    return {name: [value for part in parts for value in part[name]] for name in parts[0]}


class LocalVersions:
    """Models of the live versions loaded in this replica, with optional ``@serve.batch``.

    Args:
        registry: the registry to download versions from (checksums are verified).
        model_name: the registered model.
        batching: ``BatchSettings`` fields; with ``enabled``, concurrent calls are grouped
            by version into one model call.
        on_mismatch: a version whose recorded environment differs from this replica's
            (``raymlops.models.environment``): ``refuse`` to load it, or ``warn`` and serve it.
    """

    def __init__(self, registry, model_name: str, batching: dict[str, Any] | None = None,
                 on_mismatch: str = "refuse") -> None:
        self.registry = registry
        self.model_name = model_name
        self.on_mismatch = on_mismatch
        self.models: dict[int, Any] = {}
        self.environments: dict[int, dict[str, Any]] = {}
        batching = batching or {}
        self.batched = bool(batching.get("enabled"))
        if self.batched:
            batch: Any = self._batch  # serve.batch adds its setters to the method
            batch.set_max_batch_size(int(batching.get("max_batch_size", 16)))
            batch.set_batch_wait_timeout_s(float(batching.get("batch_wait_timeout_s", 0.002)))

    @property
    def versions(self) -> set[int]:
        """The versions loaded now."""
        return set(self.models)

    def admit(self, found) -> dict[str, Any]:
        """The environment check of a registered version here (``parity``'s answer).

        Raises:
            EnvironmentMismatchError: it differs and ``on_mismatch`` is ``refuse``.
        """
        from raymlops.errors import EnvironmentMismatchError
        from raymlops.models.environment import describe_mismatches, parity

        checked = parity((found.lineage or {}).get("environment"))
        if checked["mismatches"]:
            differences = describe_mismatches(checked["mismatches"])
            if self.on_mismatch == "refuse":
                raise EnvironmentMismatchError(model=found.name, version=found.version, differences=differences)
            log.warning("serving %s:%s although it was trained with %s", found.name, found.version, differences)
        return checked

    def sync(self, versions: set[int]) -> None:
        """Load the versions not loaded yet (environment checked, through their flavor, after the
        checksums), then drop the ones no longer live.

        Raises:
            EnvironmentMismatchError: a version trained with other package releases (``on_mismatch: refuse``).
        """
        from raymlops.models import load_model

        for version in sorted(versions - set(self.models)):
            found = self.registry.get(f"{self.model_name}:{version}")
            self.environments[version] = self.admit(found)
            with tempfile.TemporaryDirectory() as directory:
                local = self.registry.download(f"{self.model_name}:{version}", directory)
                model = load_model(local, found.manifest)
            for _ in range(WARMUP_CALLS):  # first calls pay lazy set-up (allocators, kernels): not the callers
                model.predict(model.probe())
            self.models[version] = model
        for version in set(self.models) - versions:
            del self.models[version]
            self.environments.pop(version, None)

    async def environment(self) -> dict[str, dict[str, Any]]:
        """The environment check of every loaded version, by version."""
        return {str(v): checked for v, checked in sorted(self.environments.items())}

    async def schema(self, version: int) -> DatasetSchema:
        """The signature of a loaded version."""
        return self.models[version].signature

    async def outputs(self, version: int) -> tuple[OutputSpec, ...]:
        """What a loaded version answers."""
        return self.models[version].outputs

    async def predict(self, version: int, columns: dict[str, list], background: bool = False) -> Prediction:
        """The version's answer; ``background`` runs off the event loop (shadow calls)."""
        if background:
            return await asyncio.to_thread(self.models[version].predict, columns)
        if self.batched:
            return await self._batch((version, columns))
        return self.models[version].predict(columns)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _batch(self, calls: list[tuple[int, dict[str, list]]]) -> list[Prediction]:
        answers: list[Any] = [None] * len(calls)
        for version in {version for version, _ in calls}:
            indices = [i for i, (v, _) in enumerate(calls) if v == version]
            parts = [calls[i][1] for i in indices]
            result = self.models[version].predict(concat_columns(parts))
            for i, answer in zip(indices, result.split([len(next(iter(p.values()))) for p in parts])):
                answers[i] = answer
        return answers

    def check_health(self) -> None:
        """Raise when any loaded version cannot predict a probe row."""
        for model in self.models.values():
            model.predict(model.probe())


class DeploymentVersions:
    """Handles to the per-version deployments of the ``separate`` layout (one hop per request)."""

    def __init__(self, handles: dict[int, Any]) -> None:
        self.handles = {int(version): handle for version, handle in handles.items()}
        self._schemas: dict[int, DatasetSchema] = {}
        self._outputs: dict[int, tuple[OutputSpec, ...]] = {}

    @property
    def versions(self) -> set[int]:
        """The versions that have a deployment."""
        return set(self.handles)

    def sync(self, versions: set[int]) -> None:
        """Check that every live version has a deployment.

        Raises:
            InvalidRequestError: a live version without one (redeploy to add it).
        """
        missing = versions - set(self.handles)
        if missing:
            raise InvalidRequestError(field="version", problem=f"versions {sorted(missing)} have no deployment; "
                                      "run `raymlops deploy` to add them")

    async def schema(self, version: int) -> DatasetSchema:
        """The signature of a version, asked once from its deployment."""
        if version not in self._schemas:
            self._schemas[version] = DatasetSchema.from_json(await _bounded(self.handles[version].signature.remote()))
        return self._schemas[version]

    async def outputs(self, version: int) -> tuple[OutputSpec, ...]:
        """What a version answers, asked once from its deployment."""
        if version not in self._outputs:
            self._outputs[version] = tuple(OutputSpec(**o) for o in await _bounded(self.handles[version].outputs.remote()))
        return self._outputs[version]

    async def environment(self) -> dict[str, dict[str, Any]]:
        """The environment check of every version, asked from its deployment."""
        return {str(v): await _bounded(handle.environment.remote()) for v, handle in sorted(self.handles.items())}

    async def predict(self, version: int, columns: dict[str, list], background: bool = False) -> Prediction:
        """Predict on the version's own deployment."""
        return await _bounded(self.handles[version].predict.remote(columns), PREDICT_TIMEOUT_S)

    def check_health(self) -> None:
        """Each version deployment runs its own health check."""


#: Longest wait for a version deployment's answer: metadata, and a prediction (a request that
#: waits longer fails with a 500 instead of holding the router forever).
CALL_TIMEOUT_S, PREDICT_TIMEOUT_S = 30.0, 120.0


async def _bounded(call: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
    import asyncio

    return await asyncio.wait_for(call, timeout=timeout_s)
