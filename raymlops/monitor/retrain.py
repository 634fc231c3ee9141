"""Retraining started by the monitor: the trigger's verdict on drift reports and on the
champion's labelled accuracy becomes a Ray job running the training entrypoint (never work
inside the actor), with the labelled rows in its data and lineage to the drift event and the
parent. When the job ends, one ``retrain_finished`` event records it with the version it
registered; what happens next (a rollout) is the rollout side's business, read from the
registry's events — the monitor starts nothing else.

The Jobs API is reached through the small :class:`~raymlops.submission.client.JobClient` protocol,
so tests hand in a fake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any, Awaitable, Callable

from raymlops.monitor.triggers import RetrainTrigger, performance_report, retrain_overrides
from raymlops.submission.client import FINAL_STATES, JobClient, entrypoint_for, job_runtime_env, project_working_dir
from raymlops.types import DriftReport

log = logging.getLogger(__name__)
TRAIN_JOB = "raymlops.jobs.train"
POLL_S = 2.0
MAX_POLL_BACKOFF_S = 60.0


class Retrainer:
    """One model's retraining, owned by its DriftMonitor.

    Args:
        model: the model's name.
        settings: the monitor's ``RetrainSettings``.
        registry: the registry (events, aliases, versions).
        jobs: the Jobs API.
        counters: the monitor's counters, shared.
        write_labels: writes the labelled rows not yet written; returns how many.
        labels_root: where they are written.
        snapshot: saves the monitor's state (the trigger's state is part of it).
    """

    def __init__(self, model: str, settings, registry, jobs: JobClient, counters: Counter,
                 write_labels: Callable[[], int], labels_root: str, snapshot: Callable[[], Awaitable[None]]) -> None:
        self.model, self.settings, self.registry, self.jobs = model, settings, registry, jobs
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
        if why is not None and champion is not None:
            await self._submit_and_follow(champion, why, event.id if event is not None and report.drift else None,
                                          "drift")

    async def on_accuracy(self, accuracy: dict[str, dict]) -> None:
        """Performance drift: the champion's labelled accuracy below ``min_accuracy``, or its
        estimated accuracy below ``min_estimated_accuracy``."""
        champion = await self.champion()
        report = performance_report(self.model, champion, accuracy, self.settings, time.time())
        if report is None or champion is None:
            return
        # a performance report flows through the same protections (persistence, cooldown, budget)
        if self.trigger.observe(report, champion, time.time(), counted=True) is not None:
            rows, value = report.window_rows, report.distances["accuracy"]
            why = (f"accuracy {value:.3f} < {self.settings.min_accuracy} on {rows} labels" if report.backend == "labels"
                   else f"estimated accuracy {value:.3f} < {self.settings.min_estimated_accuracy} over {rows} rows "
                   "(no labels)")
            await self._submit_and_follow(champion, why, None, "performance")

    async def _candidate_waiting(self) -> bool:
        """Whether a retrained version is on its way to the champion's place (read now): a rollout of
        the model in progress, or a ``candidate`` a retraining made (waiting for its rollout).
        Another job would retrain on the same evidence and train on the cores the canary is measured
        on, so the trigger waits (counted as ``retrain_deferred``) and asks for fresh evidence —
        ``k`` of ``n`` new checks — once that rollout promoted or rolled back. A candidate that no
        retraining made (a tuned version canaried by hand) does not hold retraining back."""
        try:
            waiting = await asyncio.to_thread(self._retrained_version_in_rollout)
        except Exception:  # noqa: BLE001 - the registry briefly unreachable: the trigger fires as before
            return False
        if not waiting:
            return False
        self.counters["retrain_deferred"] += 1
        self.trigger.history.clear()
        return True

    def _retrained_version_in_rollout(self) -> bool:
        if self.registry.active_rollout(self.model) is not None:
            return True
        candidate = self.registry.aliases(self.model).get("candidate")
        if candidate is None:
            return False
        trigger = (self.registry.get(f"{self.model}:{candidate}").lineage or {}).get("trigger")
        return (trigger.get("kind") if isinstance(trigger, dict) else trigger) in ("drift", "performance")

    async def _submit_and_follow(self, champion: int, why: str, drift_event: int | None, kind: str) -> None:
        if await self._candidate_waiting():  # drift and performance retraining alike
            return
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

    def _latest_drift_event(self, champion: int) -> int | None:
        drift = [e for e in self.registry.events(self.model, kinds=["drift_detected"], limit=None)
                 if e.version == champion and (e.payload or {}).get("detector") in self.trigger.detectors]
        return drift[-1].id if drift else None

    def _submit(self, champion: int, why: str, drift_event: int | None, kind: str):
        """Write the labelled rows, submit the training job with its lineage; blocking."""
        if drift_event is None and kind == "drift":  # the state flipped on an earlier check: the latest detection
            drift_event = self._latest_drift_event(champion)
        self.write_labels()
        labels = self.labels_root if self.settings.include_labelled_log and \
            self.counters.get("labelled_rows_written", 0) else None
        overrides = retrain_overrides(self.model, kind, champion, drift_event, self.settings.train_overrides, labels)
        working_dir = project_working_dir(self.settings.train_config)
        job_id = self.jobs.submit(entrypoint_for(TRAIN_JOB, self.settings.train_config if working_dir else None,
                                                 overrides), job_runtime_env(working_dir))
        event = self.registry.add_event(self.model, "retrain_submitted", champion,
                                        {"job_id": job_id, "reason": why, "trigger": kind, "drift_event_id": drift_event,
                                         "overrides": overrides}, actor="drift-monitor")
        return job_id, event

    def resume(self) -> None:
        """After a restart: follow the job a restored snapshot says is in flight (its follower died
        with the old actor). Call inside the actor's event loop."""
        job_id = self.trigger.in_flight
        if job_id is None:
            return
        submitted = [e for e in self.registry.events(self.model, kinds=["retrain_submitted"], limit=None)
                     if (e.payload or {}).get("job_id") == job_id]
        asyncio.get_running_loop().create_task(self._follow(job_id, submitted[-1].id if submitted else None))

    async def _follow(self, job_id: str, event_id: int | None) -> None:
        """Wait for the job (a failed status poll is retried with backoff; a job the Jobs API no
        longer knows ends as LOST; one whose first epoch is not reported within
        ``start_timeout_s`` of its submission is stopped and ends as STALLED), then record
        ``retrain_finished`` with the version it made."""
        status, delay, reason = "PENDING", POLL_S, None
        submitted = await asyncio.to_thread(self._submitted_at, event_id)
        started = False
        while status not in FINAL_STATES and status != "STALLED":
            await asyncio.sleep(delay)
            try:
                status = await asyncio.to_thread(self.jobs.status, job_id)
                delay = POLL_S
                if not started and status in ("PENDING", "RUNNING"):
                    started = await asyncio.to_thread(self._training_started, job_id, submitted)
                    if not started and time.time() - submitted > self.settings.start_timeout_s:
                        reason = (f"no training epoch reported {self.settings.start_timeout_s:.0f} s after submission "
                                  f"(the job was {status}: waiting for CPUs, workers or data reads the cluster "
                                  "cannot give it); stopped")
                        await asyncio.to_thread(self.jobs.stop, job_id)
                        status = "STALLED"
            except Exception as exc:  # noqa: BLE001 - the Jobs API may be briefly unreachable
                self.counters["retrain_status_errors"] += 1
                self.last_error = f"status of retraining job {job_id}: {type(exc).__name__}: {exc}"
                delay = min(delay * 2, MAX_POLL_BACKOFF_S)
        self.trigger.finished()
        self.counters[f"retrain_{status.lower()}"] += 1
        payload: dict[str, Any] = {"job_id": job_id, "status": status, "submitted_event_id": event_id}
        if reason is not None:
            payload["reason"] = reason
            self.last_error = f"retraining job {job_id}: {reason}"
        version = None
        if status == "SUCCEEDED":
            version, candidate, queued = await asyncio.to_thread(self._registered_by, job_id)
            payload.update({"new_version": version, "candidate": candidate, "queued": queued})
        await asyncio.to_thread(self.registry.add_event, self.model, "retrain_finished", version, payload,
                                "drift-monitor")
        await self.snapshot()

    def _submitted_at(self, event_id: int | None) -> float:
        """When the job was submitted (its ``retrain_submitted`` event), or now."""
        found = self.registry.events(self.model, ids=[event_id]) if event_id is not None else []
        return found[0].time if found else time.time()

    def _training_started(self, job_id: str, since: float) -> bool:
        """Whether the job's training run reported its first epoch (a ``training_started`` event)."""
        from raymlops.train.progress import TRAINING_STARTED

        events = self.registry.events(self.model, kinds=[TRAINING_STARTED], since=since - 60, limit=None)
        return any((e.payload or {}).get("job_id") == job_id for e in events)

    def _registered_by(self, job_id: str) -> tuple[int | None, bool, bool]:
        """The version the job registered (by its lineage), whether it is the `candidate`, and
        whether it passed its gate while a rollout ran (queued: the rollout side makes it the
        candidate when that rollout ends)."""
        made = [v.version for v in self.registry.list_versions(self.model)
                if (v.lineage or {}).get("ray_job_id") == job_id]
        if not made:
            return None, False, False
        gate = [e for e in self.registry.events(self.model, kinds=["offline_gate"], limit=None) if e.version == made[-1]]
        queued = bool(gate) and bool(gate[-1].payload.get("passed")) and gate[-1].payload.get("queued_behind") is not None
        return made[-1], self.registry.aliases(self.model).get("candidate") == made[-1], queued
