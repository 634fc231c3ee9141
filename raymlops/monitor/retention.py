"""Retention: what the monitor stores does not grow without bound. One pass deletes the model's
old registry events (not those lineage refers to), old days of the prediction log, and forgets the
state of versions that are neither champion nor candidate and have had no traffic for a while.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from raymlops import filesystem

log = logging.getLogger(__name__)


def last_seen(health: Any) -> dict[int, float]:
    """Per version, the time of its newest row in the health stats."""
    seen = {}
    for version, rows in health.rows.items():
        times = [float(chunk["time"].max()) for chunk in rows.chunks if len(chunk["time"])]
        if times:
            seen[version] = max(times)
    return seen


def idle_versions(known: set[int], seen: dict[int, float], live: set[int], now: float, idle_s: float) -> list[int]:
    """The versions to forget: not live, and no row for ``idle_s`` (or none ever, once known)."""
    return sorted(v for v in known - live if now - seen.get(v, 0.0) >= idle_s)


def forget_version(monitor: Any, version: int) -> None:
    """Drop everything a ``DriftMonitor`` keeps about one version."""
    monitor.checkers.pop(version, None)
    monitor.windows.open.pop(version, None)
    monitor.health_stats.rows.pop(version, None)
    monitor.health_stats.totals.pop(version, None)
    for key in [k for k in monitor.health_stats.side if k.split("/", 1)[0] == str(version)]:
        monitor.health_stats.side.pop(key)
    monitor.recent.pop(version, None)
    monitor.online.states.pop(version, None)
    for key in [k for k in monitor.last_reports if k.split("/", 1)[0] == str(version)]:
        monitor.last_reports.pop(key)
    ledger = monitor.ledger
    for table in (ledger.looks, ledger.alarms, ledger.expected):
        for key in [k for k in table if k.split("/", 1)[0] == str(version)]:
            table.pop(key)
    ledger.rows.pop(str(version), None)
    ledger.verdict_alarms.pop(str(version), None)


def prune_prediction_log(root: str, model: str, older_than_s: float, now: float | None = None) -> int:
    """Delete the model's prediction-log days older than ``older_than_s``; returns the days deleted."""
    from datetime import datetime, timezone

    from pyarrow import fs as pafs

    cutoff = datetime.fromtimestamp((now or time.time()) - older_than_s, timezone.utc).strftime("%Y-%m-%d")
    fs, path = filesystem.resolve(filesystem.join(root, f"model={model}"))
    deleted = 0
    for version_dir in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
        if version_dir.type != pafs.FileType.Directory:
            continue
        for day in fs.get_file_info(pafs.FileSelector(version_dir.path, allow_not_found=True)):
            name = day.path.rstrip("/").rsplit("/", 1)[-1]
            if day.type == pafs.FileType.Directory and name.startswith("date=") and name[5:] < cutoff:
                fs.delete_dir(day.path)
                deleted += 1
    return deleted


async def run_retention(monitor: Any, now: float | None = None) -> dict[str, int]:
    """One retention pass over a ``DriftMonitor`` (the database and storage work in a thread;
    forgetting versions on the actor's loop); returns what it removed."""
    import asyncio

    settings, now = monitor.cfg.retention, now or time.time()
    removed = {"events": 0, "log_days": 0, "versions": 0}
    if settings.events_days is not None:
        removed["events"] = await asyncio.to_thread(monitor.registry.prune_events, monitor.model,
                                                    settings.events_days * 86400)
    if settings.prediction_log_days is not None and monitor.cfg.prediction_log.enabled:
        removed["log_days"] = await asyncio.to_thread(prune_prediction_log, monitor.log_root, monitor.model,
                                                      settings.prediction_log_days * 86400, now)
    if settings.version_idle_s is not None:
        aliases = await asyncio.to_thread(monitor.registry.aliases, monitor.model)
        live = {v for name, v in aliases.items() if name in ("champion", "candidate")}
        known = {*monitor.checkers, *monitor.windows.open, *monitor.health_stats.rows}
        for version in idle_versions(known, last_seen(monitor.health_stats), live, now, settings.version_idle_s):
            forget_version(monitor, version)
            removed["versions"] += 1
    return removed
