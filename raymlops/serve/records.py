"""The prediction stream: every answered request becomes a row, buffered in the replica and
flushed in columnar batches to a pluggable sink, fire-and-forget. Pure.

The buffer is bounded: when the sink is slow and it is full, new rows are dropped and
counted — a request never waits for monitoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

RECORD_FIELDS = ("request_id", "time", "model", "version", "arm", "latency_ms", "status", "prediction")


class RecordSink(Protocol):
    """Where flushed batches go (the drift monitor actor, a file, a test list)."""

    def send(self, batch: dict[str, list]) -> None:
        """Accept one columnar batch; must not block (fire-and-forget)."""


@dataclass
class RecordBuffer:
    """Rows of one replica, flushed every ``flush_rows`` rows or ``flush_ms`` milliseconds."""

    capacity: int = 10_000
    flush_rows: int = 64
    flush_ms: float = 100.0
    columns: dict[str, list] = field(default_factory=dict)
    size: int = 0
    dropped: int = 0
    oldest: float | None = None

    def add(self, meta: dict[str, Any], features: dict[str, Sequence], predictions: Sequence[Any],
            clock: float | None = None) -> int:
        """Append the rows of one answered request; returns how many were dropped for lack of room."""
        rows = len(predictions)
        room = max(self.capacity - self.size, 0)
        taken = min(rows, room)
        self.dropped += rows - taken
        if taken == 0:
            return rows
        if self.size == 0:
            self.oldest = clock if clock is not None else time.monotonic()
        for name in RECORD_FIELDS:
            if name != "prediction":
                self.columns.setdefault(name, []).extend([meta[name]] * taken)
        self.columns.setdefault("prediction", []).extend(list(predictions)[:taken])
        for name, values in features.items():
            self.columns.setdefault(f"f.{name}", []).extend(list(values)[:taken])
        self.size += taken
        return rows - taken

    def due(self, clock: float | None = None) -> bool:
        """Whether a flush is due (enough rows, or the oldest row waited long enough)."""
        if self.size == 0:
            return False
        now = clock if clock is not None else time.monotonic()
        return self.size >= self.flush_rows or (now - (self.oldest or now)) * 1000 >= self.flush_ms

    def drain(self) -> dict[str, list]:
        """Take every buffered row as one columnar batch and empty the buffer."""
        batch, self.columns, self.size, self.oldest = self.columns, {}, 0, None
        return batch
