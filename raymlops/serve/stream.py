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
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol

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


@dataclass(eq=False)
class Batch:
    """One encoded batch on its way to the actor: its rows, number and sends so far."""

    rows: int
    payload: Any
    seq: int
    attempts: int = 0


class ActorSink:
    """Calls ``actor.<method>.remote(payload)`` on a named Ray actor, fire-and-forget; the
    payload is the batch as one Arrow IPC buffer (:func:`raymlops.records.encode`).

    The calls are not awaited on the request path, but they are not forgotten either: the
    sink keeps at most ``max_pending`` calls in flight (the stream holds its rows in its
    bounded buffer meanwhile, see :meth:`ready`). A call that fails because the actor died or
    is restarting is sent again once the actor is back (looked up every ``lookup_interval_s``),
    ahead of newer batches, up to ``max_attempts`` times; while it is gone at most
    ``max_waiting_rows`` rows wait here (beyond, the oldest are dropped). Rows are counted as
    failed only when they are given up: dropped, out of attempts, or refused by the actor itself
    (an error raised by ``method`` is not retried).

    One call in flight (the default) delivers batches in the order the replica answered them:
    an async actor runs concurrent calls in no set order, and windows cut from a reordered
    stream differ from the traffic that was served. Rows that arrive meanwhile travel together
    in the next call, so throughput is bounded by the buffer, not by calls.

    ``sequenced`` (the drift monitor): batches are numbered under this sink's sender id and kept
    after they were delivered, until the actor's answer says they are durable (in its snapshot);
    when the actor comes back from an older snapshot and asks for batches again, they are resent
    (see :mod:`raymlops.monitor.deliveries`). At most ``max_kept_rows`` rows are kept so.

    Args:
        actor_name: the actor's name, e.g. ``raymlops-monitor-penguins``.
        namespace: its Ray namespace.
        method: the method that takes one record batch.
        max_pending: calls in flight at most.
        lookup_interval_s: how often a missing actor is looked up again.
        max_waiting_rows: rows kept for a resend while the actor is away.
        max_attempts: sends of one batch at most.
        sequenced: number the batches and keep them until they are durable.
        max_kept_rows: delivered rows kept until durable at most.
    """

    def __init__(self, actor_name: str, namespace: str = "raymlops", method: str = "ingest",
                 max_pending: int = 1, lookup_interval_s: float = 1.0, max_waiting_rows: int = 20_000,
                 max_attempts: int = 5, sequenced: bool = False, max_kept_rows: int = 50_000) -> None:
        import uuid

        self.actor_name, self.namespace, self.method = actor_name, namespace, method
        self.max_pending, self.lookup_interval_s = max_pending, lookup_interval_s
        self.max_waiting_rows, self.max_attempts = max_waiting_rows, max_attempts
        self.sequenced, self.max_kept_rows = sequenced, max_kept_rows
        self.sender, self._seq = uuid.uuid4().hex, 0
        self._actor: Any = None
        self._looked_up = float("-inf")
        self._pending: dict[Any, Batch] = {}
        self._waiting: deque[Batch] = deque()  # batches to (re)send, oldest first
        self._kept: dict[int, Batch] = {}  # sequenced: sent, not yet durable, by number
        self._failed = 0
        self.resent_rows = 0

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
        retry: list[Batch] = []
        for ref in done:
            batch = self._pending.pop(ref)
            try:
                answer = ray.get(ref, timeout=0)
            except ray.exceptions.RayTaskError as exc:  # the actor refused the batch: sending it again would too
                self._give_up(batch, f"refused by {self.actor_name}: {exc}")
            except Exception as exc:  # noqa: BLE001 - the actor died or is restarting: send again when it is back
                self._actor = None
                if batch.attempts >= self.max_attempts:
                    self._give_up(batch, f"not delivered after {batch.attempts} attempts: {exc}")
                else:
                    retry.append(batch)
            else:
                if self.sequenced and isinstance(answer, dict):
                    retry.extend(self._answered(answer))
        waiting = {b.seq for b in self._waiting} | {b.seq for b in self._pending.values()}
        retry = sorted({b.seq: b for b in retry if b.seq not in waiting}.values(), key=lambda b: b.seq)
        self._waiting.extendleft(reversed(retry))  # ahead of newer batches, in their order
        self._bound()

    def _answered(self, answer: dict) -> list[Batch]:
        """Drop the batches the actor made durable; the ones it asks for again."""
        for seq in [s for s in self._kept if s <= int(answer.get("durable") or 0)]:
            del self._kept[seq]
        start = answer.get("resend_from")
        if start is None:
            return []
        return [self._kept[s] for s in sorted(self._kept) if s >= int(start)]

    def _give_up(self, batch: Batch, why: str) -> None:
        """Count a batch as lost; the kept ones before it are not resent any more either (the
        numbers a sequenced sink still holds stay contiguous, so its ``floor`` tells the actor
        not to wait for anything below)."""
        self._failed += batch.rows
        for seq in [s for s in self._kept if s <= batch.seq]:
            del self._kept[seq]
        log.warning("record sink: %s rows %s", batch.rows, why)

    def _bound(self) -> None:
        while sum(b.rows for b in self._waiting) > self.max_waiting_rows and len(self._waiting) > 1:
            self._give_up(self._waiting.popleft(), f"dropped while {self.actor_name} is away")
        while sum(b.rows for b in self._kept.values()) > self.max_kept_rows and len(self._kept) > 1:
            del self._kept[min(self._kept)]  # delivered, only no longer resendable

    def _dispatch(self) -> None:
        actor = self._target()
        while actor is not None and self._waiting and len(self._pending) < self.max_pending:
            batch = self._waiting.popleft()
            if batch.attempts:
                self.resent_rows += batch.rows
            if self.sequenced:
                held = [b.seq for b in (*self._waiting, *self._pending.values(), *self._kept.values())]
                call = getattr(actor, self.method).remote(batch.payload, self.sender, batch.seq, min([batch.seq, *held]))
                self._kept[batch.seq] = batch
            else:
                call = getattr(actor, self.method).remote(batch.payload)
            batch.attempts += 1
            self._pending[call] = batch

    def send(self, batch: RecordBatch) -> None:
        """Queue the batch and send what the actor can take now (never blocks)."""
        self._reap()
        self._seq += 1
        self._waiting.append(Batch(batch_rows(batch), encode(batch), self._seq))
        self._bound()
        self._dispatch()

    def ready(self) -> bool:
        """Whether another batch may go out now: the actor is there (a restarting monitor is
        looked up again every ``lookup_interval_s``), batches waiting for a resend went out, and
        fewer than ``max_pending`` calls are in flight. Until then the stream keeps its rows in
        its bounded buffer and sends them together later."""
        self._reap()
        self._dispatch()
        return self._target() is not None and not self._waiting and len(self._pending) < self.max_pending

    def failed_rows(self) -> int:
        """Rows given up so far (dropped while the actor was away, out of attempts, or refused)."""
        self._reap()
        return self._failed

    def waiting_rows(self) -> int:
        """Rows sent or waiting to be sent again, not yet delivered."""
        return sum(b.rows for b in self._waiting) + sum(b.rows for b in self._pending.values())

    async def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until every batch handed over has been processed by the actor (or given up),
        looking a missing actor up at once and resending what it missed."""
        deadline = time.monotonic() + timeout_s
        self._target(look_now=True)
        while time.monotonic() < deadline:
            self._reap()
            self._dispatch()
            if not self._pending and not self._waiting:
                return
            if self._pending:
                await asyncio.wait([asyncio.ensure_future(ref) for ref in list(self._pending)],
                                   timeout=max(deadline - time.monotonic(), 0))
            else:
                await asyncio.sleep(0.05)
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


def poll_period_s(flush_ms: float) -> float:
    """How often a stream looks whether its buffer is due: half ``flush_ms``, at most 50 ms (so a
    buffer that reached ``flush_rows`` goes within 50 ms), at least 5 ms."""
    return min(max(flush_ms / 2000, 0.005), 0.05)


def rows_per_flush(rows_per_s: float, flush_rows: int, flush_ms: float) -> int:
    """The rows a stream sends per flush at a steady ``rows_per_s``: what accumulated at the
    first look after ``flush_rows`` rows or ``flush_ms`` (whichever comes first)."""
    import math

    period = poll_period_s(flush_ms)
    per_look = max(rows_per_s * period, 1e-9)
    looks = min(math.ceil(flush_rows / per_look), math.ceil(flush_ms / 1000 / period))
    return max(round(looks * per_look), 1)


class RecordStream:
    """The buffer of one replica plus the task that flushes it to the sink.

    ``add`` never waits: it appends to the buffer (or drops and counts) and starts the
    flush task the first time it runs inside an event loop.
    """

    def __init__(self, sink: RecordSink, buffer: RecordBuffer,
                 observer: Callable[[int, int], None] | None = None) -> None:
        self.sink = sink
        self.buffer = buffer
        self.sent_rows = 0
        self.send_errors = 0
        self.observer = observer  # told (rows sent since, rows lost in all) at each look that changed them
        self._observed = (0, 0)
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
        period = poll_period_s(self.buffer.flush_ms)
        while True:
            await asyncio.sleep(period)
            if self.buffer.due():
                self.flush()
            self.report()

    def report(self) -> None:
        """Tell the observer (the replica's metrics) the rows sent since it last heard and the rows
        lost in all, when they changed. The flush task does at each look, not each request: the
        lost count asks the sink about its calls in flight (one ``ray.wait``)."""
        if self.observer is None:
            return
        sent, lost = self.sent_rows, self.lost_rows
        if (sent, lost) != self._observed:
            self.observer(sent - self._observed[0], lost)
            self._observed = (sent, lost)

    def flush(self, force: bool = False) -> int:
        """Send what is buffered now, at most ``flush_rows`` rows (a backlog goes at the next looks),
        unless the sink is not ready for more (``force``: send everything, ready or not); returns the
        number of rows handed to the sink."""
        if self.buffer.size == 0:
            return 0
        ready = getattr(self.sink, "ready", None)
        if not force and ready is not None and not ready():
            return 0  # the rows wait in the bounded buffer; a full buffer drops and counts
        rows = self.buffer.size
        try:
            batch = self.buffer.drain(None if force else self.buffer.flush_rows)
            rows = batch.num_rows
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

    def counts(self) -> dict[str, int]:
        """This stream's rows: handed to the sink, lost (dropped or given up), waiting for delivery."""
        waiting = getattr(self.sink, "waiting_rows", None)
        return {"sent_rows": self.sent_rows, "lost_rows": self.lost_rows, "buffered_rows": self.buffer.size,
                "waiting_rows": waiting() if waiting is not None else 0}

    @property
    def lost_rows(self) -> int:
        """Rows dropped by the full buffer, refused by the sink, or not delivered by it."""
        return self.buffer.dropped + self.send_errors + self.sink.failed_rows()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the flush task, send what is left and wait (up to ``timeout_s``) until the sink
        delivered it (on graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.settle(timeout_s)
