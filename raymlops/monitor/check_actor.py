"""Window checks in a Ray actor of their own beside a monitor shard (``checks: actor``).

With ``checks: thread`` (the default) a shard tests its windows in one thread of its own
interpreter at the lowest CPU priority (:func:`checks_thread`): the tests take the CPU that
serving leaves, but while one runs, ingest waits for the interpreter lock. With ``checks:
actor`` each shard starts one :class:`CheckRunner` (unnamed, owned by the shard: it dies with
it) at the lowest CPU priority: ingest never waits for a test, the tests take the CPU ingest
leaves, and when they fall behind the shard's queue drops the oldest windows and counts them. A
version's :class:`~raymlops.monitor.checker.VersionChecker` is built (and calibrated) once by
the shard and shipped to the runner with its first window; the runner's verdicts come back as
:class:`~raymlops.types.DriftReport` objects, with the accuracy estimate the shard shows in
``drift status``. A runner that dies is started again for the next window (the window it held is
counted as a failed check).
"""

from __future__ import annotations

import copy
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

#: The niceness a runner sets on every thread of its process, and a shard on its checks thread; at
#: this niceness they also enter Linux's idle scheduling class (the lowest priority there is).
LOWEST_PRIORITY = 19


def lower_priority(niceness: int = LOWEST_PRIORITY) -> int:
    """Set every thread of this process to ``niceness`` (Linux: nice is per thread); returns how
    many threads were changed. Elsewhere only the calling thread's niceness rises."""
    tasks = f"/proc/{os.getpid()}/task"
    if not os.path.isdir(tasks):
        os.nice(max(niceness - os.nice(0), 0))
        return 1
    return sum(_lower_thread(int(tid), niceness) for tid in os.listdir(tasks))  # a thread may end meanwhile


def lower_thread_priority(niceness: int = LOWEST_PRIORITY) -> bool:
    """Set the calling thread to ``niceness`` (Linux, where nice is per thread); returns whether it
    could (elsewhere the call would lower the whole process: nothing is changed)."""
    if not os.path.isdir(f"/proc/{os.getpid()}/task"):
        return False
    return _lower_thread(threading.get_native_id(), niceness)


def _lower_thread(tid: int, niceness: int) -> bool:
    try:
        os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
    except OSError:
        return False
    if niceness >= LOWEST_PRIORITY:
        idle_class(tid)
    return True


def idle_class(tid: int) -> bool:
    """Put thread ``tid`` in Linux's idle scheduling class (``SCHED_IDLE``): it runs on what the
    other threads leave of a core, and when they all want it, with a fifth of a niceness-19
    thread's weight (3 against 15; a niceness-15 Ray worker weighs 36); returns whether it could
    (not on other systems)."""
    policy = getattr(os, "SCHED_IDLE", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(tid, policy, os.sched_param(0))
    except OSError:
        return False
    return True


def checks_thread() -> ThreadPoolExecutor:
    """The one thread a shard with ``checks: thread`` tests its windows in (and builds and
    calibrates its checkers), at the lowest CPU priority: on cores shared with replicas the tests
    take what serving leaves, as a runner actor's do, without one more process."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="raymlops-checks", initializer=lower_thread_priority)


def import_tests() -> None:
    """Import what window checks need (alibi-detect pulls in torch and transformers: seconds of
    CPU), so that a monitor pays for it when it starts, not on its first window under traffic."""
    import raymlops.monitor.checker  # noqa: F401

    try:
        import alibi_detect.cd  # noqa: F401 - the default backend's tests
    except ImportError:  # the scipy backend needs none
        pass


class CheckRunner:
    """The process that runs one shard's window checks (a Ray actor; see the module doc)."""

    def __init__(self, niceness: int = LOWEST_PRIORITY) -> None:
        self.checkers: dict[int, Any] = {}
        lower_priority(niceness)
        import_tests()

    def check(self, version: int, checker: Any, table: Any, live: list[int] | None = None) -> tuple[list, dict | None, int]:
        """Test one window of ``version`` (a pyarrow table of its rows); ``checker``: the version's
        checker when it is new here (else None); ``live``: the versions to keep checkers of.
        Returns the reports, the checker's last accuracy estimate and its count of windows."""
        from raymlops.monitor.window import Window

        if checker is not None:
            self.checkers[version] = checker
        if live is not None:
            self.checkers = {v: c for v, c in self.checkers.items() if v in live or v == version}
        runner_checker = self.checkers[version]
        window = Window(version, 0.0)
        window.append(table)
        reports = runner_checker.check(window)
        return reports, runner_checker.last_estimate, runner_checker.windows_checked


class RemoteChecks:
    """A shard's side of its :class:`CheckRunner`: starts it when first needed (and again after it
    died) and ships each version's checker once."""

    def __init__(self, counters: Any) -> None:
        self.counters = counters  # the shard's: ``check_actor_starts`` counts the runners started
        self.runner: Any = None
        self.shipped: dict[int, Any] = {}  # version -> the checker the runner holds a copy of

    def start(self) -> None:
        """Start the runner now (it imports the tests while the first window fills)."""
        self._runner()

    def _runner(self) -> Any:
        if self.runner is None:
            import ray

            remote = ray.remote(CheckRunner).options(num_cpus=0, max_concurrency=1,
                                                     name=None, lifetime=None, max_restarts=0)
            self.runner = remote.remote()
            self.shipped = {}
            self.counters["check_actor_starts"] += 1
        return self.runner

    async def check(self, checker: Any, window: Any, live: list[int]) -> list:
        """Run ``checker``'s tests on ``window`` in the runner; the checker's accuracy estimate and
        count follow the runner's.

        Raises:
            ray.exceptions.RayActorError: the runner died (the next call starts a new one).
        """
        from ray.exceptions import RayActorError

        runner = self._runner()
        version = window.version
        ship = None
        if self.shipped.get(version) is not checker:
            ship = copy.copy(checker)
            ship.online = None  # the online detector stays with the shard (it feeds it row by row)
        try:
            reports, estimate, count = await runner.check.remote(version, ship, window.table,
                                                                 live if ship is not None else None)
        except RayActorError:
            self.runner = None
            raise
        if ship is not None:
            self.shipped = {v: c for v, c in self.shipped.items() if v in live}
            self.shipped[version] = checker
        checker.last_estimate = estimate if estimate is not None else checker.last_estimate
        checker.windows_checked = count
        return reports
