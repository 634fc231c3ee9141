"""Retraining started by the monitor: the trigger's verdict on drift reports and on the
champion's labelled accuracy becomes a Ray job running ``jobs/train.py`` (never work inside the
actor), with the labelled rows in its data and lineage to the drift event and the parent; when
the job ends, the new candidate is rolled out if ``auto_rollout`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Awaitable, Callable

from raymlops.monitor.triggers import RetrainTrigger
from raymlops.types import DriftReport

log = logging.getLogger(__name__)


class Retrainer:
    """One model's retraining, owned by its DriftMonitor.

    Args:
        model: the model's name.
        settings: the monitor's ``RetrainSettings``.
        registry: the registry; ``registry_settings`` its config for the actors it starts.
        jobs_address: the Jobs API (dashboard) address; unset = resolved like the CLI does.
        counters: the monitor's counters, shared.
        write_labels: writes the labelled rows not yet written; returns how many.
        labels_root: where they are written.
        snapshot: saves the monitor's state (the trigger's state is part of it).
    """

    def __init__(self, model: str, settings, registry, registry_settings: dict[str, Any], jobs_address: str | None,
                 counters: Counter, write_labels: Callable[[], int], labels_root: str,
                 snapshot: Callable[[], Awaitable[None]]) -> None:
        self.model, self.settings, self.registry = model, settings, registry
        self.registry_settings, self.jobs_address = registry_settings, jobs_address
        self.counters, self.write_labels, self.labels_root, self.snapshot = counters, write_labels, labels_root, snapshot
        self.trigger = RetrainTrigger(tuple(settings.detectors), settings.k, settings.n, settings.cooldown_s,
                                      settings.max_per_day)
        self.last_error: str | None = None
        self._champion: tuple[float, int | None] = (0.0, None)

    async def champion(self) -> int | None:
        """The champion version (looked up at most every 10 s)."""
        checked, version = self._champion
        if time.time() - checked > 10:
            try:
                version = await asyncio.to_thread(self.registry.resolve, self.model, "champion")
            except Exception:  # noqa: BLE001 - no champion: nothing to retrain from
                version = None
            self._champion = (time.time(), version)
        return version

    async def on_report(self, report: DriftReport, event) -> None:
        """Count a drift report (``event``: the drift event it just caused, if any)."""
        champion = await self.champion()
        why = self.trigger.observe(report, champion, time.time()) if champion is not None else None
        if why is not None:
            await self._submit_and_follow(champion, why, event.id if event is not None and report.drift else None,
                                          "drift")

    async def on_accuracy(self, accuracy: dict[str, dict]) -> None:
        """Performance drift: the champion's labelled accuracy below ``min_accuracy``."""
        settings = self.settings
        if settings.min_accuracy is None:
            return
        champion = await self.champion()
        result = accuracy.get(str(champion)) if champion is not None else None
        if not result or result["labelled"] < settings.min_labels or result["accuracy"] >= settings.min_accuracy:
            return
        # a performance report flows through the same protections (persistence, cooldown, budget)
        report = DriftReport(self.model, champion, "performance", "labels", {}, {"accuracy": result["accuracy"]},
                             settings.min_accuracy, True, result["labelled"], time.time())
        if self.trigger.observe(report, champion, time.time(), counted=True) is not None:
            await self._submit_and_follow(champion, f"accuracy {result['accuracy']:.3f} < {settings.min_accuracy} "
                                          f"on {result['labelled']} labels", None, "performance")

    async def _submit_and_follow(self, champion: int, why: str, drift_event: int | None, kind: str) -> None:
        try:
            job_id, event = await asyncio.to_thread(self._submit, champion, why, drift_event, kind)
        except Exception as exc:  # noqa: BLE001 - counted and visible in status; the trigger tries again later
            self.counters["retrain_failed"] += 1
            self.last_error = f"retraining not submitted: {type(exc).__name__}: {exc}"
            log.exception("retraining of %s not submitted", self.model)
            return
        self.trigger.fired(job_id, time.time())
        self.counters["retrain_submitted"] += 1
        asyncio.get_running_loop().create_task(self._follow(job_id, event.id))
        await self.snapshot()

    def _client(self):
        from raymlops.cluster import ClusterAddresses
        from raymlops.jobs.client import job_client

        return job_client(ClusterAddresses(dashboard=self.jobs_address) if self.jobs_address else None)

    def _submit(self, champion: int, why: str, drift_event: int | None, kind: str):
        """Write the labelled rows, submit jobs/train.py with its lineage; blocking."""
        from raymlops.jobs import entrypoint_for
        from raymlops.jobs.client import submit

        if drift_event is None and kind == "drift":  # the state flipped on an earlier check: the latest detection
            drift = [e for e in self.registry.events(self.model, kinds=["drift_detected"], limit=None)
                     if e.version == champion and (e.payload or {}).get("detector") in self.trigger.detectors]
            drift_event = drift[-1].id if drift else None
        overrides = [f"model_name={self.model}", f"lineage.trigger={kind}", f"lineage.parent_version={champion}",
                     *self.settings.train_overrides]
        if drift_event is not None:
            overrides.append(f"lineage.drift_event_id={drift_event}")
        self.write_labels()
        if self.settings.include_labelled_log and self.counters.get("labelled_rows_written", 0):
            overrides.append(f"data.extra_train=[{self.labels_root}]")
        job_id = submit(entrypoint_for("jobs/train.py", self.settings.train_config, overrides), ".", self._client())
        event = self.registry.add_event(self.model, "retrain_submitted", champion,
                                        {"job_id": job_id, "reason": why, "trigger": kind, "drift_event_id": drift_event,
                                         "overrides": overrides}, actor="drift-monitor")
        return job_id, event

    def resume(self) -> None:
        """After a restart: follow the job a restored snapshot says is in flight (its follower died
        with the old actor). A job the cluster no longer knows ends as LOST, so retraining can
        fire again. Call inside the actor's event loop."""
        job_id = self.trigger.in_flight
        if job_id is None:
            return
        submitted = [e for e in self.registry.events(self.model, kinds=["retrain_submitted"], limit=None)
                     if (e.payload or {}).get("job_id") == job_id]
        asyncio.get_running_loop().create_task(self._follow(job_id, submitted[-1].id if submitted else None))

    async def _follow(self, job_id: str, event_id: int | None) -> None:
        """Wait for the job; with auto_rollout, start a rollout of the new candidate."""
        client = await asyncio.to_thread(self._client)
        status = "PENDING"
        while status not in ("SUCCEEDED", "FAILED", "STOPPED", "LOST"):
            await asyncio.sleep(2)
            try:
                status = str(await asyncio.to_thread(client.get_job_status, job_id)).split(".")[-1]
            except RuntimeError as exc:  # the Jobs API does not know it: submitted to an earlier cluster
                if "does not exist" not in str(exc) and "not found" not in str(exc).lower():
                    raise
                status = "LOST"
        self.trigger.finished()
        self.counters[f"retrain_{status.lower()}"] += 1
        payload = {"job_id": job_id, "status": status, "submitted_event_id": event_id}
        if status == "SUCCEEDED" and self.settings.auto_rollout:
            payload["rollout"] = await asyncio.to_thread(self._start_rollout)
        await asyncio.to_thread(self.registry.add_event, self.model, "retrain_finished", None, payload,
                                "drift-monitor")
        await self.snapshot()

    def _start_rollout(self) -> str:
        """Start a rollout of the new candidate, when the job made one; blocking."""
        import ray

        from raymlops.config import RolloutConfig, load_config
        from raymlops.errors import NotFoundError
        from raymlops.serve.controller import get_or_create_controller

        champion = self.registry.resolve(self.model, "champion")
        try:
            candidate = self.registry.resolve(self.model, "candidate")
        except NotFoundError:
            return "no candidate: the new version did not pass the offline gate"
        if candidate == champion:
            return "the candidate is already the champion"
        path = self.settings.rollout_config
        cfg = load_config(path if Path(path).exists() else None, RolloutConfig,
                          [*self.settings.rollout_overrides, f"model_name={self.model}"])
        controller = get_or_create_controller(self.model, self.registry_settings)
        state = ray.get(controller.start.remote(cfg.model_dump(mode="json")))
        return f"rollout of v{candidate} started ({state['state']['phase']})"
