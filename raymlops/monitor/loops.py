"""The drift monitor's periodic background loops (each run supervised by the actor: a loop that
raises is counted and started again with backoff)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from raymlops.types import DriftReport


async def gauge_loop(monitor: Any) -> None:
    """Re-publish the latest reports and accuracies (Ray's exporter drops gauge series not
    recorded lately), and check the champion's accuracy for performance drift."""
    while True:
        await asyncio.sleep(5)
        for report in list(monitor.last_reports.values()):
            monitor.metrics.report(DriftReport(**report), observe_duration=False)
        accuracy = await monitor.accuracy()  # of every shard
        monitor.metrics.accuracy_of(accuracy)
        if monitor.cfg.retrain.enabled:
            await monitor.retrainer.on_accuracy(accuracy)


async def log_loop(monitor: Any) -> None:
    """Write the prediction log every ``flush_every_s`` (or sooner when ``max_buffered_rows`` are
    buffered), and the labelled rows."""
    settings = monitor.cfg.prediction_log
    last = time.monotonic()
    while True:
        await asyncio.sleep(0.5)
        if monitor.prediction_log.rows and (monitor.prediction_log.rows >= settings.max_buffered_rows
                                            or time.monotonic() - last >= settings.flush_every_s):
            await monitor._flush_log()
            last = time.monotonic()
        if monitor.feedback_join.labelled_rows and time.monotonic() - last >= settings.flush_every_s:
            await asyncio.to_thread(monitor._write_labels)


async def retention_loop(monitor: Any) -> None:
    """One retention pass every ``retention.every_s`` (see :mod:`raymlops.monitor.retention`)."""
    from raymlops.monitor.retention import run_retention

    while True:
        for what, count in (await run_retention(monitor)).items():
            monitor.counters[f"retention_{what}"] += count
        await asyncio.sleep(monitor.cfg.retention.every_s)


async def events_loop(monitor: Any) -> None:
    """Write the events kept while the registry's database was away, every 2 s."""
    while True:
        await asyncio.sleep(2)
        await monitor.outbox.drain()
