"""What a monitor's snapshot holds, and taking it back after a restart (see
:class:`~raymlops.monitor.storage.MonitorStore` for how it is stored and checked)."""

from __future__ import annotations

import logging
import time
from typing import Any

from raymlops.errors import ArtifactIntegrityError

log = logging.getLogger(__name__)


def snapshot_state(monitor: Any) -> dict[str, Any]:
    """A ``DriftMonitor``'s state: windows, health rows, counters, reports, the online detectors'
    running state, the retraining trigger and the false-alarm ledger."""
    online = {v: c.online for v, c in monitor.checkers.items() if c.online is not None}
    return {"time": time.time(), "windows": monitor.windows.state(), "health": monitor.health_stats.state(),
            "counters": dict(monitor.counters), "last_reports": dict(monitor.last_reports), "online": online,
            "history": list(monitor.history),
            "trigger": monitor.retrainer.trigger.state(), "budget": monitor.ledger.state(),
            "deliveries": monitor.deliveries.state()}


def restore_state(monitor: Any) -> None:
    """Take back a ``DriftMonitor``'s last snapshot, if any; a refused one (changed after it was
    written) is counted and named in ``last_error``, and the monitor starts afresh."""
    try:
        snapshot = monitor.store.read_snapshot()
    except ArtifactIntegrityError as exc:
        log.error("snapshot of %s refused: %s", monitor.model, exc)
        monitor.last_error, snapshot = f"snapshot refused: {exc}", None
        monitor.counters["snapshots_refused"] += 1
    if not snapshot:
        return
    monitor.windows.restore(snapshot["windows"])
    monitor.health_stats.restore(snapshot["health"])
    monitor.counters.update(snapshot["counters"])
    monitor.last_reports = snapshot["last_reports"]
    monitor.history.extend(snapshot.get("history", []))
    monitor.online.restore(snapshot.get("online", {}))
    monitor.retrainer.trigger.restore(snapshot.get("trigger", {}))
    monitor.ledger.restore(snapshot.get("budget", {}))
    monitor.deliveries.restore(snapshot.get("deliveries", {}))
    monitor.restored_snapshot_age_s = time.time() - snapshot["time"]
    monitor.counters["restarts"] += 1
