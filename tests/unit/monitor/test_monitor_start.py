"""A monitor's start as its actor runs it (inside a running event loop, no Ray cluster): the
background loops come up and, with ``checks: thread``, the tests are imported in the checks thread
before the first window — a start that raised left the import undone and an error in the actor's log."""

import asyncio
import threading

import pytest

from raymlops.monitor import actor as monitor_actor
from raymlops.monitor.actor import DriftMonitor


@pytest.mark.parametrize("checks", ["thread", "actor"])
def test_a_monitor_starts_its_loops_and_imports_the_tests_off_the_event_loop(tmp_path, monkeypatch, checks):
    imported_in: list[str] = []
    monkeypatch.setattr(monitor_actor, "import_tests", lambda: imported_in.append(threading.current_thread().name))
    registry = {"database_url": f"sqlite:///{tmp_path / 'registry.db'}", "artifact_root": str(tmp_path / "artifacts")}
    monitor = DriftMonitor({"model_name": "m", "checks": checks}, registry)
    if monitor.remote_checks is not None:  # its runner actor needs a cluster: not started here
        monkeypatch.setattr(monitor.remote_checks, "start", lambda: None)

    async def start_then_stop() -> list[str]:
        await monitor.start()
        await monitor.start()  # a second start (an ingest before it) starts nothing more
        if monitor.tests_imported is not None:
            await monitor.tests_imported
        for task in monitor._tasks:
            task.cancel()
        return [task.get_name() for task in monitor._tasks]

    try:
        loops = asyncio.run(start_then_stop())
    finally:
        monitor.checks_thread.shutdown()
    assert len(loops) == 6  # detect, snapshot, log, retention, gauges, events
    assert imported_in == (["raymlops-checks_0"] if checks == "thread" else [])
