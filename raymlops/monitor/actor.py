"""The DriftMonitor actor: one per served model, named ``raymlops-monitor-{model}`` in namespace
``raymlops``, detached and restarted by Ray when it dies. It is the single consumer of the
prediction stream (with ``shards`` > 1, of the rows whose request ids hash to it; shard 0
merges the others' verdicts: :mod:`raymlops.monitor.shards`).

``ingest`` only appends (health stats, prediction log buffer, windows) and queues full windows;
detection runs in its own task, off the ingest path, and in a thread (or, with ``checks:
actor``, in a low-priority actor of its own: :mod:`raymlops.monitor.check_actor`) so a slow
test never stalls ingestion. State is snapshotted every few seconds and restored on restart;
drift events are written when a decision flips, and the last event per detector is read back
on restart so none is written twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from typing import Any

import numpy as np

from raymlops.actors import schedule_own
from raymlops.monitor import shard_link
from raymlops.monitor.budget import BudgetLedger, plan_budget
from raymlops.monitor.check_actor import RemoteChecks, checks_thread, import_tests
from raymlops.monitor.checker import DriftStates, VersionChecker, VersionReference
from raymlops.monitor.deliveries import Deliveries
from raymlops.monitor.feedback import FeedbackJoin
from raymlops.monitor.health import HealthStats
from raymlops.monitor.online import OnlineDetectors
from raymlops.monitor.outbox import EventOutbox
from raymlops.monitor.queries import MonitorQueries
from raymlops.monitor.report import history_point
from raymlops.monitor.retrain import Retrainer
from raymlops.monitor.shards import MergedVerdicts
from raymlops.monitor.window import Window, WindowQueue, WindowSet
from raymlops.records import RecordView
from raymlops.supervise import LoopFailures
from raymlops.types import DriftReport

log = logging.getLogger(__name__)

#: Detector runs kept for the drift report's p-values over time (all versions together).
HISTORY_POINTS = 2000

DRIFT_EVENTS = ("drift_detected", "drift_cleared")


class DriftMonitor(MonitorQueries):
    """Drift detection and health stats over one model's prediction stream (wrap with ``ray.remote``)."""

    def __init__(self, config: dict[str, Any], registry: dict[str, Any], jobs_address: str | None = None,
                 shard: int = 0) -> None:
        from raymlops import filesystem
        from raymlops.cluster import ClusterAddresses
        from raymlops.config import MonitorConfig, RegistryConfig
        from raymlops.monitor.metrics import MonitorMetrics
        from raymlops.monitor.storage import MonitorStore, PredictionLog
        from raymlops.registry import Registry
        from raymlops.submission.client import RayJobClient

        self.cfg = MonitorConfig.model_validate(config)
        self.model, self.shard = self.cfg.model_name, shard
        if shard:  # shard 0 alone starts retraining
            self.cfg = self.cfg.model_copy(update={"retrain": self.cfg.retrain.model_copy(update={"enabled": False})})
        registry_cfg = RegistryConfig.model_validate(registry)
        self.registry = Registry.from_config(registry_cfg)
        root = str(registry_cfg.artifact_root)
        self.store = MonitorStore(self.cfg.state_root or filesystem.join(root, "_monitor"),
                                  self.model + (f"/shard{shard}" if shard else ""), self.registry.signing_key("artifacts"))
        self.log_root = self.cfg.prediction_log.root or filesystem.join(root, "_predictions")
        self.prediction_log = PredictionLog(self.log_root, self.model,
                                            max_rows=4 * self.cfg.prediction_log.max_buffered_rows)
        w = self.cfg.window
        self.windows = WindowSet(w.size, w.min_samples, w.max_wait_s, w.sample_rate)
        self.health_stats = HealthStats()
        self.states = DriftStates()
        self.verdicts = MergedVerdicts()
        self.checkers: dict[int, VersionChecker] = {}
        self.queue = WindowQueue(self.cfg.queue_windows)
        self.counters: Counter[str] = Counter()
        self.last_reports: dict[str, dict] = {}
        self.history: deque[dict] = deque(maxlen=HISTORY_POINTS)  # every detector run, for the report
        self.recent: dict[int, Any] = {}  # per version, the last window checked
        self.rng = np.random.default_rng(0)
        self.metrics = MonitorMetrics(self.model)
        self.started_at = time.time()
        self.restored_snapshot_age_s: float | None = None
        self.plan = plan_budget(self.cfg.detectors.model_dump(), w.size)
        self.ledger = BudgetLedger()
        online = self.cfg.detectors.online.model_dump()
        if "online" in self.plan.allocations:  # the ERT its share of the budget implies
            online["ert"] = round(float(self.plan.allocations["online"].ert or 0.0), 1)
        self.online = OnlineDetectors(
            lambda version: self.store.load_online(version, online),
            lambda checker: checker.build_online(online),
            lambda version, detector: self.store.save_online(version, online, detector))
        self.last_error: str | None = None
        self.loop_failures = LoopFailures(self._loop_failed)
        self.feedback_join = FeedbackJoin()
        self.deliveries = Deliveries()
        self.outbox = EventOutbox(self.registry, self.model, self.counters)
        jobs = RayJobClient(ClusterAddresses(dashboard=jobs_address) if jobs_address else None)
        self.retrainer = Retrainer(self.model, self.cfg.retrain, self.registry, jobs, self.counters,
                                   self._write_labels, self.labels_root(), self._snapshot)
        self._tasks: list[asyncio.Task] = []
        self.tests_imported: asyncio.Future | None = None  # checks: thread — the tests' import in its thread
        self._checking: asyncio.Lock | None = None
        self.remote_checks = RemoteChecks(self.counters) if self.cfg.checks == "actor" else None
        self.checks_thread = checks_thread()  # checks: thread; with a runner it only builds checkers
        self._restore()
        schedule_own("start")

    # ------------------------------------------------------------------ restart

    def _loop_failed(self, loop: str) -> None:
        self.counters["loop_restarts"] += 1
        self.last_error = f"{loop} loop restarted: {self.loop_failures.last_error[loop]}"
        self.metrics.loop_restarted(loop)

    def _restore(self) -> None:
        from raymlops.monitor.snapshot import restore_state

        restore_state(self)
        self.states.restore(self.registry.events(self.model, kinds=DRIFT_EVENTS, limit=None))
        self.verdicts.seed([key for key, drifting in self.states.states.items() if drifting], self.cfg.shards)

    def _snapshot_state(self) -> dict[str, Any]:
        from raymlops.monitor.snapshot import snapshot_state

        return snapshot_state(self)

    # ------------------------------------------------------------------ ingestion

    def _ensure_tasks(self) -> None:
        if not self._tasks:
            from raymlops.supervise import supervised

            loop = asyncio.get_running_loop()
            from raymlops.monitor import loops

            runs = [("detect", self._detect_loop), ("snapshot", self._snapshot_loop),
                    ("log", lambda: loops.log_loop(self)), ("retention", lambda: loops.retention_loop(self))]
            if not self.shard:  # what speaks for the model: its gauges, events and retraining
                runs += [("gauges", lambda: loops.gauge_loop(self)), ("events", lambda: loops.events_loop(self))]
                self.retrainer.resume()
            self._tasks = [loop.create_task(supervised(name, run, self.loop_failures)) for name, run in runs]
            if self.remote_checks is not None:  # its process starts and imports the tests before the first window
                self.remote_checks.start()
            else:  # the tests' imports now, in the background, not on the first window under traffic
                self.tests_imported = self._in_checks_thread(import_tests)

    async def start(self) -> None:
        """Start the background loops (detection, snapshots, the prediction log, gauges) and follow a
        retraining job in flight. The actor calls it on itself when it starts, a restarted actor too."""
        self._ensure_tasks()

    async def ingest(self, batch, sender: str | None = None, seq: int | None = None,
                     floor: int | None = None) -> dict[str, Any] | None:
        """Take one record batch from a replica (never waits for a test). Numbered batches
        (``sender``, ``seq``, ``floor``: see :mod:`raymlops.monitor.deliveries`) are taken once and in
        order; the answer says which are durable and what to resend."""
        self._ensure_tasks()
        if sender is not None and seq is not None:
            take, resend_from = self.deliveries.admit(sender, seq, floor)
            if not take:
                return self.deliveries.reply(sender, resend_from)
        self._ingest(batch)
        return self.deliveries.reply(sender) if sender is not None else None

    def _ingest(self, batch) -> None:
        records = RecordView(batch)
        rows = records.num_rows
        self.counters["rows_ingested"] += rows
        self.health_stats.add(records)
        self.feedback_join.add(records)
        if self.cfg.prediction_log.enabled:
            self.prediction_log.add(records)
        dropped = 0
        for window in self.windows.add(records):
            dropped += self._enqueue(window)
        self.metrics.rows(rows, dropped)

    def _enqueue(self, window: Window) -> int:
        dropped = self.queue.put(window)
        if dropped:
            self.counters["windows_dropped"] += 1
            self.counters["rows_dropped"] += dropped
        return dropped

    # ------------------------------------------------------------------ detection

    async def _detect_loop(self) -> None:
        while True:
            for due in self.windows.due():
                self._enqueue(due)
            window = self.queue.take()
            if window is None:
                await asyncio.sleep(0.05)
                continue
            await self._check(window)

    async def _check(self, window: Window) -> list[DriftReport]:
        if self._checking is None:
            self._checking = asyncio.Lock()
        async with self._checking:  # one check at a time; flush() waits for the one in flight
            return await self._check_now(window)

    async def _check_now(self, window: Window) -> list[DriftReport]:
        try:
            checker = await self._checker(window.version)
            reports = await self._run_checks(checker, window)
        except Exception as exc:  # noqa: BLE001 - a failing check is counted and logged; the monitor lives on
            self.counters["checks_failed"] += 1
            self.last_error = f"check of v{window.version}: {type(exc).__name__}: {exc}"
            log.exception("drift check of %s v%s failed: %s", self.model, window.version, exc)
            return []
        self.counters["windows_checked"] += 1
        self.recent[window.version] = window.table
        self.ledger.window(window.version, window.rows, [(r.detector, r.drift, r.alpha or 0.0) for r in reports])
        self.metrics.budget(window.version, self.ledger.of(window.version, self.plan))
        if self.shard:  # shard 0 merges and publishes
            for report in reports:
                self.last_reports[DriftStates.key(report.version, report.detector)] = report.to_dict()
            await shard_link.forward_reports(self, window.version, window.rows, reports)
        else:
            for report in reports:
                await self._publish(self.verdicts.merge(report, 0), report)
        return reports

    async def merge_reports(self, version: int, rows: int, reports: list[dict[str, Any]], shard: int) -> None:
        """Shard 0: take the reports of a window another shard checked into the merged verdict."""
        parsed = [DriftReport(**report) for report in reports]
        self.ledger.window(version, rows, [(r.detector, r.drift, r.alpha or 0.0) for r in parsed])
        self.metrics.budget(version, self.ledger.of(version, self.plan))
        for report in parsed:
            await self._publish(self.verdicts.merge(report, shard), report)

    async def _run_checks(self, checker: VersionChecker, window: Window) -> list[DriftReport]:
        if self.remote_checks is not None:  # checks: actor
            reports = await self.remote_checks.check(checker, window, list(self.checkers))
        else:
            reports = await self._in_checks_thread(checker.check, window)
        online = self.cfg.detectors.online
        if online.enabled:
            report = await self._in_checks_thread(checker.feed_online, window, online.sample_rate, online.kind, self.rng)
            if report is not None:
                reports.append(report)
        return reports

    def _in_checks_thread(self, fn, *args):
        """Run ``fn(*args)`` in the shard's checks thread (lowest CPU priority); awaitable."""
        return asyncio.get_running_loop().run_in_executor(self.checks_thread, fn, *args)

    async def _checker(self, version: int) -> VersionChecker:
        checker = self.checkers.get(version)
        if checker is None:
            reference = await asyncio.to_thread(VersionReference.from_registry, self.registry, self.model, version)
            cadence = self.cfg.detectors.model_dump()
            built = await self._in_checks_thread(VersionChecker, self.model, version, reference, cadence,
                                                 self.cfg.window.size)  # calibrates its thresholds: seconds
            checker = self.checkers.setdefault(version, built)
            if checker is built and self.cfg.detectors.online.enabled:
                checker.online = self.online.take_restored(version)
                if checker.online is None:
                    asyncio.get_running_loop().create_task(self._calibrate(version, checker))
        return checker

    async def _calibrate(self, version: int, checker: VersionChecker) -> None:
        """Load the version's calibrated online detector, or calibrate it once and keep it with the version."""
        checker.online = await asyncio.to_thread(self.online.obtain, version, checker)
        if checker.online is None:  # without it the other tests of this version still run
            log.warning("online detector of %s v%s: %s", self.model, version, self.online.state_of(version))

    async def _publish(self, report: DriftReport, checked: DriftReport) -> None:
        """Publish the merged verdict ``report``; ``checked`` is the window's own report (the same
        with one shard): retraining counts windows, so a shard's alarm counts once."""
        self.metrics.report(report)
        self.last_reports[DriftStates.key(report.version, report.detector)] = report.to_dict()
        self.history.append(history_point(report.to_dict()))
        event = None
        if self.states.update(report):
            kind = "drift_detected" if report.drift else "drift_cleared"
            event = await self.outbox.add(kind, report.version, {"detector": report.detector,
                                                                  "report": report.to_dict()})
            self.counters[kind] += 1
            await self._snapshot()  # the new state is saved at once, next to its event
        if self.cfg.retrain.enabled:
            await self.retrainer.on_report(checked, event)

    # ------------------------------------------------------------------ feedback

    def labels_root(self) -> str:
        from raymlops import filesystem

        return filesystem.join(self.log_root, "_labels", f"model={self.model}")

    def _write_labels(self) -> int:
        from raymlops.monitor.storage import write_labels

        embedding_versions = {v for v, checker in self.checkers.items() if checker.records_embedding}
        written = write_labels(self.feedback_join, embedding_versions, self.labels_root())
        self.counters["labelled_rows_written"] += written
        return written

    async def feedback(self, items: list[dict[str, Any]], label_column: str, dry_run: bool = False) -> dict[str, Any]:
        """Join labels to logged answers. ``items``: ``{"request_id", "labels": [...]}`` each.

        All or nothing (``dry_run``: only check); returns ``{"accepted": rows}``. Shard 0 of a
        sharded monitor labels each request on the shard that holds it.

        Raises:
            NotFoundError: request ids this monitor does not remember (nothing recorded).
            InvalidRequestError: a request got a different number of labels than it had rows.
        """
        if self.cfg.shards > 1 and not self.shard:
            return {"accepted": await shard_link.route_feedback(self, items, label_column, time.time())}
        rows = self.feedback_join.label([(i["request_id"], i["labels"]) for i in items], time.time(), label_column,
                                        dry_run)
        self.counters["labels"] += 0 if dry_run else rows
        return {"accepted": rows}

    # ------------------------------------------------------------------ background persistence

    async def _snapshot(self) -> None:
        try:
            state = self._snapshot_state()
            await asyncio.to_thread(self.store.write_snapshot, state)
            self.deliveries.committed(state["deliveries"])
            self.counters["snapshots"] += 1
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            self.counters["snapshot_failures"] += 1
            log.warning("snapshot of %s failed: %s", self.model, exc)

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.snapshot_every_s)
            await self._snapshot()

    async def _flush_log(self) -> int:
        batches = self.prediction_log.take()  # on the loop's thread: rows ingested meanwhile stay buffered
        try:
            return await asyncio.to_thread(self.prediction_log.write, batches)
        except Exception as exc:  # noqa: BLE001 - kept for the next flush (bounded; dropped rows counted)
            self.prediction_log.give_back(batches)
            self.counters["log_write_failures"] += 1
            self.counters["log_rows_dropped"] = self.prediction_log.dropped
            log.warning("prediction log of %s could not be written (kept for a retry): %s", self.model, exc)
            return 0

    # ------------------------------------------------------------------ queries

    async def flush(self, min_rows: int = 1) -> dict[str, Any]:
        """Check every queued window and every open window of at least ``min_rows`` now, write the
        prediction log and a snapshot (shard 0: every shard's); returns :meth:`status`."""
        self._ensure_tasks()
        if self.cfg.shards > 1 and not self.shard:
            await shard_link.from_others(self, "flush", min_rows, timeout_s=300)
        for partial in self.windows.take_open(min_rows):
            self._enqueue(partial)
        while (window := self.queue.take()) is not None:
            await self._check(window)
        if self._checking is not None:
            async with self._checking:  # a window the detection loop took before us
                pass
        await self._flush_log()
        await asyncio.to_thread(self._write_labels)
        await self._snapshot()
        return await self.status()
