"""A replica's prediction stream: the bounded :class:`RecordBuffer`, an asyncio task that
flushes it, and the pluggable sinks the batches go to.

Sinks are chosen by the ``records.sink`` key of ``configs/serve.yaml`` through :data:`SINKS`,
or ``package.module:Class`` for your own. ``send`` must return at once: a sink that cannot
keep up drops and counts, it never makes a request wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from raymlops.errors import ConfigError
from raymlops.plugins import load_plugin
from raymlops.records import RecordBatch, batch_rows, encode
from raymlops.serve.buffer import RecordBuffer

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    """Where flushed batches go (the drift monitor actor, a file, a test collector)."""

    def send(self, batch: RecordBatch) -> None:
        """Accept one columnar batch without blocking (fire-and-forget)."""

    def failed_rows(self) -> int:
        """Rows this sink accepted but could not deliver, so far."""

    # Optional: ``async def settle(self, timeout_s: float) -> None`` waits until what was sent
    # has been delivered (or failed); a sink without it is taken as settled at once.
    # Optional: ``def ready(self) -> bool`` says whether it takes another batch now; while it
    # says no, rows wait in the replica's bounded buffer (a sink without it is always ready).


class NullSink:
    """Discards every batch (the stream still counts rows and drops)."""

    def send(self, batch: RecordBatch) -> None:
        """Discard the batch."""

    def failed_rows(self) -> int:
        """Never fails."""
        return 0


class ActorSink:
    """Calls ``actor.<method>.remote(payload)`` on a named Ray actor, fire-and-forget; the
    payload is the batch as one Arrow IPC buffer (:func:`raymlops.records.encode`).

    The calls are not awaited on the request path, but they are not forgotten either: the
    sink keeps at most ``max_pending`` calls in flight (the stream holds its rows in its
    bounded buffer meanwhile, see :meth:`ready`) and counts the rows of calls that failed or
    that it had to skip because the actor was missing.

    One call in flight (the default) delivers batches in the order the replica answered them:
    an async actor runs concurrent calls in no set order, and windows cut from a reordered
    stream differ from the traffic that was served. Rows that arrive meanwhile travel together
    in the next call, so throughput is bounded by the buffer, not by calls.

    Args:
        actor_name: the actor's name, e.g. ``raymlops-monitor-penguins``.
        namespace: its Ray namespace.
        method: the method that takes one record batch.
        max_pending: calls in flight at most.
        lookup_interval_s: how often a missing actor is looked up again.
    """

    def __init__(self, actor_name: str, namespace: str = "raymlops", method: str = "ingest",
                 max_pending: int = 1, lookup_interval_s: float = 5.0) -> None:
        self.actor_name, self.namespace, self.method = actor_name, namespace, method
        self.max_pending, self.lookup_interval_s = max_pending, lookup_interval_s
        self._actor: Any = None
        self._looked_up = float("-inf")
        self._pending: dict[Any, int] = {}
        self._failed = 0

    def _target(self, look_now: bool = False):
        import ray

        due = look_now or time.monotonic() - self._looked_up >= self.lookup_interval_s
        if self._actor is None and due:
            self._looked_up = time.monotonic()
            try:
                self._actor = ray.get_actor(self.actor_name, namespace=self.namespace)
            except ValueError:
                log.warning("record sink: no actor %s in namespace %s yet", self.actor_name, self.namespace)
        return self._actor

    def _reap(self) -> None:
        import ray

        if not self._pending:
            return
        done, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
        for ref in done:
            rows = self._pending.pop(ref)
            try:
                ray.get(ref, timeout=0)
            except Exception as exc:  # noqa: BLE001 - any failure of the consumer is counted, never raised
                self._failed += rows
                self._actor = None  # look it up again: it may have been restarted under a new handle
                log.warning("record sink: %s rows not delivered to %s: %s", rows, self.actor_name, exc)

    def send(self, batch: RecordBatch) -> None:
        """Send the batch, or count it as failed when the actor is missing or backed up."""
        self._reap()
        rows = batch_rows(batch)
        actor = self._target()
        if actor is None or len(self._pending) >= self.max_pending:
            self._failed += rows
            why = "no actor" if actor is None else f"{len(self._pending)} calls already in flight"
            log.warning("record sink: %s rows not sent to %s (%s)", rows, self.actor_name, why)
            return
        self._pending[getattr(actor, self.method).remote(encode(batch))] = rows

    def ready(self) -> bool:
        """Whether another call may go out now: the actor is there (a restarting monitor is
        looked up again every ``lookup_interval_s``) and fewer than ``max_pending`` calls are in
        flight. Until then the stream keeps its rows in its bounded buffer and sends them
        together later."""
        self._reap()
        return self._target() is not None and len(self._pending) < self.max_pending

    def failed_rows(self) -> int:
        """Rows not delivered so far (failed calls, missing actor, too many calls in flight)."""
        self._reap()
        return self._failed

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until every call in flight has been processed by the actor (or failed), and look
        a missing actor up at once, so what the stream sends next finds it."""
        if self._pending:
            await asyncio.wait([asyncio.ensure_future(ref) for ref in list(self._pending)], timeout=timeout_s)
        self._reap()
        self._target(look_now=True)


#: Sink backends by the name used in ``records.sink``.
SINKS: dict[str, type] = {"none": NullSink, "actor": ActorSink}


def build_sink(name: str, options: dict[str, Any] | None = None) -> RecordSink:
    """The sink called ``name`` (a key of :data:`SINKS` or ``package.module:Class``).

    Raises:
        ConfigError: unknown name, unimportable class or bad options.
    """
    options = options or {}
    cls = load_plugin(name, SINKS, "records.sink", "<serve config>")
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(file="<serve config>", problems=[("records.options", str(exc))]) from None


class RecordStream:
    """The buffer of one replica plus the task that flushes it to the sink.

    ``add`` never waits: it appends to the buffer (or drops and counts) and starts the
    flush task the first time it runs inside an event loop.
    """

    def __init__(self, sink: RecordSink, buffer: RecordBuffer) -> None:
        self.sink = sink
        self.buffer = buffer
        self.sent_rows = 0
        self.send_errors = 0
        self._task: asyncio.Task | None = None

    def add(self, meta: dict[str, Any], features: dict[str, Any], predictions: list,
            confidences: list | None = None) -> int:
        """Buffer the rows of one request; returns how many rows were dropped."""
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:
                pass  # no loop (a plain call): flush() must be called by the owner
        return self.buffer.add(meta, features, predictions, confidences)

    async def _run(self) -> None:
        period = max(self.buffer.flush_ms / 2000, 0.005)
        while True:
            await asyncio.sleep(period)
            if self.buffer.due():
                self.flush()

    def flush(self, force: bool = False) -> int:
        """Send whatever is buffered now, unless the sink is not ready for more (``force``: send
        anyway); returns the number of rows handed to the sink."""
        if self.buffer.size == 0:
            return 0
        ready = getattr(self.sink, "ready", None)
        if not force and ready is not None and not ready():
            return 0  # the rows wait in the bounded buffer; a full buffer drops and counts
        rows = self.buffer.size
        try:
            batch = self.buffer.drain()
            self.sink.send(batch)
        except Exception as exc:  # noqa: BLE001 - monitoring failures are counted, never raised to callers
            self.send_errors += rows
            log.warning("record sink %s failed on %s rows: %s", type(self.sink).__name__, rows, exc)
            return 0
        self.sent_rows += rows
        return rows

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Flush, then wait until the sink has delivered everything sent so far: what a caller
        needs before asking the consumer about these rows (calls to an async actor from one
        replica are not processed in the order they were sent, when several are in flight)."""
        settle = getattr(self.sink, "settle", None)
        if settle is not None:
            await settle(timeout_s)  # what is in flight first, so the rest goes out at once
        self.flush(force=True)
        if settle is not None:
            await settle(timeout_s)

    @property
    def lost_rows(self) -> int:
        """Rows dropped by the full buffer, refused by the sink, or not delivered by it."""
        return self.buffer.dropped + self.send_errors + self.sink.failed_rows()

    async def close(self) -> None:
        """Stop the flush task and send what is left (on graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self.flush(force=True)
