"""The DriftMonitor actor: one per served model, named ``raymlops-monitor-{model}`` in namespace
``raymlops``, detached and restarted by Ray when it dies. It is the single consumer of the
prediction stream.

``ingest`` only appends (health stats, prediction log buffer, windows) and queues full windows;
detection runs in its own task, off the ingest path, and in a thread so a slow test never
stalls ingestion. State is snapshotted every few seconds and restored on restart; drift events
are written when a decision flips, and the last event per detector is read back on restart so
none is written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from raymlops.monitor.checker import DriftStates, VersionChecker, VersionReference
from raymlops.monitor.feedback import FeedbackJoin
from raymlops.monitor.health import HealthStats
from raymlops.monitor.retrain import Retrainer
from raymlops.monitor.window import Window, WindowSet
from raymlops.types import DriftReport

log = logging.getLogger(__name__)

NAMESPACE = "raymlops"
DRIFT_EVENTS = ("drift_detected", "drift_cleared")


def monitor_name(model: str) -> str:
    """The actor name of a model's monitor."""
    return f"raymlops-monitor-{model}"


class DriftMonitor:
    """Drift detection and health stats over one model's prediction stream (wrap with ``ray.remote``)."""

    def __init__(self, config: dict[str, Any], registry: dict[str, Any], jobs_address: str | None = None) -> None:
        from raymlops import filesystem
        from raymlops.config import MonitorConfig, RegistryConfig
        from raymlops.monitor.metrics import MonitorMetrics
        from raymlops.monitor.storage import MonitorStore, PredictionLog
        from raymlops.registry import Registry

        self.cfg = MonitorConfig.model_validate(config)
        self.model = self.cfg.model_name
        registry_cfg = RegistryConfig.model_validate(registry)
        self.registry = Registry.from_config(registry_cfg)
        root = registry_cfg.artifact_root
        self.store = MonitorStore(self.cfg.state_root or filesystem.join(root, "_monitor"), self.model)
        self.log_root = self.cfg.prediction_log.root or filesystem.join(root, "_predictions")
        self.prediction_log = PredictionLog(self.log_root, self.model)
        w = self.cfg.window
        self.windows = WindowSet(w.size, w.min_samples, w.max_wait_s, w.sample_rate)
        self.health_stats = HealthStats()
        self.states = DriftStates()
        self.checkers: dict[int, VersionChecker] = {}
        self.calibrating: dict[int, str] = {}
        self.queue: deque[Window] = deque()
        self.counters: Counter = Counter()
        self.last_reports: dict[str, dict] = {}
        self.rng = np.random.default_rng(0)
        self.metrics = MonitorMetrics(self.model)
        self.started_at = time.time()
        self.restored_snapshot_age_s: float | None = None
        self._online_states: dict[int, Any] = {}
        self.last_error: str | None = None
        self.feedback_join = FeedbackJoin()
        self.retrainer = Retrainer(self.model, self.cfg.retrain, self.registry, registry, jobs_address, self.counters,
                                   self._write_labels, self.labels_root(), self._snapshot)
        self._tasks: list[asyncio.Task] = []
        self._checking: asyncio.Lock | None = None
        self._restore()

    # ------------------------------------------------------------------ restart

    def _restore(self) -> None:
        snapshot = self.store.read_snapshot()
        if snapshot:
            self.windows.restore(snapshot["windows"])
            self.health_stats.restore(snapshot["health"])
            self.counters.update(snapshot["counters"])
            self.last_reports = snapshot["last_reports"]
            self._online_states = snapshot.get("online", {})
            self.retrainer.trigger.restore(snapshot.get("trigger", {}))
            self.restored_snapshot_age_s = time.time() - snapshot["time"]
            self.counters["restarts"] += 1
        # The registry's events are the truth about drift states: never write one twice.
        for event in self.registry.events(self.model, kinds=DRIFT_EVENTS, limit=None):
            detector = (event.payload or {}).get("detector")
            if detector and event.version is not None:
                self.states.states[DriftStates.key(event.version, detector)] = event.kind == "drift_detected"

    def _snapshot_state(self) -> dict[str, Any]:
        online = {v: c.online for v, c in self.checkers.items() if c.online is not None}
        return {"time": time.time(), "windows": self.windows.state(), "health": self.health_stats.state(),
                "counters": dict(self.counters), "last_reports": dict(self.last_reports), "online": online,
                "trigger": self.retrainer.trigger.state()}

    # ------------------------------------------------------------------ ingestion

    def _ensure_tasks(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._detect_loop()), loop.create_task(self._snapshot_loop()),
                           loop.create_task(self._log_loop()), loop.create_task(self._gauge_loop())]
            self.retrainer.resume()

    async def ingest(self, batch: dict[str, list]) -> None:
        """Take one columnar record batch from a replica (never waits for a test)."""
        self._ensure_tasks()
        rows = len(next(iter(batch.values()), []))
        self.counters["rows_ingested"] += rows
        self.health_stats.add(batch)
        self.feedback_join.add(batch)
        if self.cfg.prediction_log.enabled:
            self.prediction_log.add(batch)
        dropped = 0
        for window in self.windows.add(batch):
            dropped += self._enqueue(window)
        self.metrics.rows(rows, dropped)

    def _enqueue(self, window: Window) -> int:
        self.queue.append(window)
        if len(self.queue) > self.cfg.queue_windows:
            oldest = self.queue.popleft()
            self.counters["windows_dropped"] += 1
            self.counters["rows_dropped"] += oldest.rows
            return oldest.rows
        return 0

    # ------------------------------------------------------------------ detection

    async def _detect_loop(self) -> None:
        while True:
            for window in self.windows.due():
                self._enqueue(window)
            if not self.queue:
                await asyncio.sleep(0.05)
                continue
            await self._check(self.queue.popleft())

    async def _check(self, window: Window) -> list[DriftReport]:
        if self._checking is None:
            self._checking = asyncio.Lock()
        async with self._checking:  # one check at a time; flush() waits for the one in flight
            return await self._check_now(window)

    async def _check_now(self, window: Window) -> list[DriftReport]:
        try:
            checker = await self._checker(window.version)
            reports = await asyncio.to_thread(self._run_checks, checker, window)
        except Exception as exc:  # noqa: BLE001 - a failing check is counted and logged; the monitor lives on
            self.counters["checks_failed"] += 1
            self.last_error = f"check of v{window.version}: {type(exc).__name__}: {exc}"
            log.exception("drift check of %s v%s failed: %s", self.model, window.version, exc)
            return []
        self.counters["windows_checked"] += 1
        for report in reports:
            await self._publish(report)
        return reports

    def _run_checks(self, checker: VersionChecker, window: Window) -> list[DriftReport]:
        reports = checker.check(window)
        online = self.cfg.detectors.online
        if online.enabled:
            report = checker.feed_online(window, online.sample_rate, online.kind, self.rng)
            if report is not None:
                reports.append(report)
        return reports

    async def _checker(self, version: int) -> VersionChecker:
        checker = self.checkers.get(version)
        if checker is None:
            reference = await asyncio.to_thread(VersionReference.from_registry, self.registry, self.model, version)
            cadence = self.cfg.detectors.model_dump()
            checker = self.checkers[version] = VersionChecker(self.model, version, reference, cadence)
            if self.cfg.detectors.online.enabled:
                restored = self._online_states.pop(version, None)
                if restored is not None:
                    checker.online = restored
                else:
                    asyncio.get_running_loop().create_task(self._calibrate(version, checker))
        return checker

    async def _calibrate(self, version: int, checker: VersionChecker) -> None:
        """Load the version's calibrated online detector, or calibrate it once and keep it with the version."""
        from raymlops.monitor.detectors import build_online

        settings = self.cfg.detectors.online.model_dump()
        self.calibrating[version] = "loading"
        try:
            detector = await asyncio.to_thread(self.store.load_online, version, settings)
            if detector is None:
                self.calibrating[version] = "calibrating"
                started = time.perf_counter()
                detector = await asyncio.to_thread(
                    build_online, settings["kind"], checker.reference, settings["reference_rows"], settings["ert"],
                    settings["window_size"], settings["n_bootstraps"])
                self.counters["calibration_s"] = round(time.perf_counter() - started, 2)
                await asyncio.to_thread(self.store.save_online, version, settings, detector)
            checker.online = detector
            self.calibrating[version] = "ready"
        except Exception as exc:  # noqa: BLE001 - without an online detector the other tests still run
            self.calibrating[version] = f"failed: {exc}"
            log.exception("online detector of %s v%s could not be calibrated", self.model, version)

    async def _publish(self, report: DriftReport) -> None:
        self.metrics.report(report)
        self.last_reports[DriftStates.key(report.version, report.detector)] = report.to_dict()
        event = None
        if self.states.update(report):
            kind = "drift_detected" if report.drift else "drift_cleared"
            event = await asyncio.to_thread(self.registry.add_event, self.model, kind, report.version,
                                            {"detector": report.detector, "report": report.to_dict()})
            self.counters[kind] += 1
            await self._snapshot()  # the new state is saved at once, next to its event
        if self.cfg.retrain.enabled:
            await self.retrainer.on_report(report, event)

    # ------------------------------------------------------------------ feedback

    def labels_root(self) -> str:
        from raymlops import filesystem

        return filesystem.join(self.log_root, "_labels", f"model={self.model}")

    def _write_labels(self) -> int:
        from raymlops.monitor.storage import write_labelled_rows

        written = write_labelled_rows(self.labels_root(), self.feedback_join.drain_labelled())
        self.counters["labelled_rows_written"] += written
        return written

    async def feedback(self, items: list[dict[str, Any]], label_column: str) -> dict[str, Any]:
        """Join labels to logged answers. ``items``: ``{"request_id", "labels": [...]}`` each.

        Nothing is recorded unless every request id is known and every request gets one label
        per row; the answer says which ids were unknown or why the labels did not fit.
        """
        unknown = self.feedback_join.unknown([item["request_id"] for item in items])
        if unknown:
            return {"accepted": 0, "unknown": unknown}
        try:
            rows = self.feedback_join.label([(i["request_id"], i["labels"]) for i in items], time.time(), label_column)
        except ValueError as exc:
            return {"accepted": 0, "unknown": [], "problem": str(exc)}
        self.counters["labels"] += rows
        return {"accepted": rows, "unknown": []}

    async def accuracy(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """Per version: labelled rows and accuracy since a UNIX time."""
        return self.feedback_join.accuracy(since)

    # ------------------------------------------------------------------ background persistence

    async def _snapshot(self) -> None:
        try:
            await asyncio.to_thread(self.store.write_snapshot, self._snapshot_state())
            self.counters["snapshots"] += 1
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            log.warning("snapshot of %s failed: %s", self.model, exc)

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.snapshot_every_s)
            await self._snapshot()

    async def _gauge_loop(self) -> None:
        """Re-publish the latest reports and accuracies (Ray's exporter drops gauge series not
        recorded lately), and check the champion's accuracy for performance drift."""
        while True:
            await asyncio.sleep(5)
            for report in list(self.last_reports.values()):
                self.metrics.report(DriftReport(**report), observe_duration=False)
            accuracy = self.feedback_join.accuracy()
            self.metrics.accuracy_of(accuracy)
            if self.cfg.retrain.enabled:
                await self.retrainer.on_accuracy(accuracy)

    async def _flush_log(self) -> int:
        try:
            return await asyncio.to_thread(self.prediction_log.flush)
        except Exception as exc:  # noqa: BLE001 - the rows are lost, counted
            self.counters["log_rows_lost"] += self.prediction_log.rows
            log.warning("prediction log of %s could not be written: %s", self.model, exc)
            return 0

    async def _log_loop(self) -> None:
        settings = self.cfg.prediction_log
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            if self.prediction_log.rows and (self.prediction_log.rows >= settings.max_buffered_rows
                                             or time.monotonic() - last >= settings.flush_every_s):
                await self._flush_log()
                last = time.monotonic()
            if self.feedback_join.labelled_rows and time.monotonic() - last >= settings.flush_every_s:
                await asyncio.to_thread(self._write_labels)

    # ------------------------------------------------------------------ queries

    async def flush(self, min_rows: int = 1) -> dict[str, Any]:
        """Check every queued window and every open window of at least ``min_rows`` now, write the
        prediction log and a snapshot; returns :meth:`status`."""
        self._ensure_tasks()
        for version in list(self.windows.open):
            if self.windows.open[version].rows >= min_rows:
                self._enqueue(self.windows.open.pop(version))
        while self.queue:
            await self._check(self.queue.popleft())
        if self._checking is not None:
            async with self._checking:  # a window the detection loop took before us
                pass
        await self._flush_log()
        await asyncio.to_thread(self._write_labels)
        await self._snapshot()
        return await self.status()

    async def status(self) -> dict[str, Any]:
        """Drift state and latest reports per version, counters, calibration and restart information."""
        versions = sorted({*self.checkers, *self.windows.open, *self.health_stats.rows})
        return {
            "model": self.model,
            "versions": {str(v): {
                "drifting": self.states.drifting(v),
                "reports": {k.split("/", 1)[1]: r for k, r in self.last_reports.items() if k.split("/", 1)[0] == str(v)},
                "open_window_rows": self.windows.open[v].rows if v in self.windows.open else 0,
                "online_detector": self.calibrating.get(v, "not started"),
            } for v in versions},
            "queued_windows": len(self.queue),
            "counters": dict(self.counters),
            "uptime_s": time.time() - self.started_at,
            "restored_snapshot_age_s": self.restored_snapshot_age_s,
            "prediction_log": self.log_root,
            "last_error": self.last_error or self.retrainer.last_error,
            "retrain": {"enabled": self.cfg.retrain.enabled, **self.retrainer.trigger.state()},
        }

    async def health(self, since: float | None = None) -> dict[str, dict]:
        """Per-version health stats (count, error rate, latency percentiles, predictions) since a UNIX time."""
        return {str(v): stats.to_dict() for v, stats in self.health_stats.all(since).items()}

    def ping(self) -> bool:
        """Liveness."""
        return True

    def pid(self) -> int:
        """The actor's process id (fault-injection tests kill it)."""
        import os

        return os.getpid()


def get_or_create(config: dict[str, Any], registry: dict[str, Any], jobs_address: str | None = None):
    """The model's monitor actor, created (detached, restartable) when it does not exist yet.

    Needs a connected Ray driver.
    """
    import ray

    from raymlops.config import MonitorConfig

    cfg = MonitorConfig.model_validate(config)
    remote = ray.remote(DriftMonitor)
    return remote.options(name=monitor_name(cfg.model_name), namespace=NAMESPACE, lifetime="detached",
                          get_if_exists=True, max_restarts=-1, max_task_retries=0, num_cpus=cfg.num_cpus,
                          max_concurrency=64).remote(config, registry, jobs_address)
