"""The prediction stream: every answered request becomes rows of PredictionRecords, buffered
in the replica and flushed in columnar batches to a pluggable sink, fire-and-forget. Pure.

A batch is a dict of equally long lists: the request columns of :data:`RECORD_FIELDS`,
``prediction`` and ``confidence`` per row, and one ``f.<feature>`` column per input
feature (``None`` where a row has no value, e.g. a rejected request). The buffer is
bounded: when the sink is slow and it is full, new rows are dropped and counted — a
request never waits for monitoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

from raymlops.types import PredictionRecord

#: Per-request columns, repeated on every row of the request.
RECORD_FIELDS = ("request_id", "time", "model", "version", "arm", "latency_ms", "status")
#: Per-row columns.
ROW_FIELDS = ("prediction", "confidence")
FEATURE_PREFIX = "f."


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

    def _column(self, name: str) -> list:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = [None] * self.size
        return column

    def add(self, meta: dict[str, Any], features: dict[str, Sequence], predictions: Sequence[Any],
            confidences: Sequence[float] | None = None, clock: float | None = None) -> int:
        """Append the rows of one request; returns how many were dropped for lack of room.

        Args:
            meta: the :data:`RECORD_FIELDS` of the request.
            features: feature name → one value per row (may be empty for a rejected request).
            predictions: one prediction per row (``[None]`` for a rejected request).
            confidences: the predicted class's probability per row, when there is one.
        """
        rows = len(predictions)
        taken = min(rows, max(self.capacity - self.size, 0))
        self.dropped += rows - taken
        if taken == 0:
            return rows
        if self.size == 0:
            self.oldest = clock if clock is not None else time.monotonic()
        given = {name: [meta.get(name)] * taken for name in RECORD_FIELDS}
        given["prediction"] = list(predictions[:taken])
        given["confidence"] = list(confidences[:taken]) if confidences is not None else [None] * taken
        for name, values in features.items():
            given[FEATURE_PREFIX + name] = list(values[:taken])
        for name, values in given.items():
            self._column(name).extend(values)
        self.size += taken
        for name, column in self.columns.items():
            if len(column) < self.size:  # a feature this request did not have
                column.extend([None] * (self.size - len(column)))
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


def batch_rows(batch: dict[str, list]) -> int:
    """The number of rows of a columnar batch."""
    return len(next(iter(batch.values()), []))


def concat_batches(batches: list[dict[str, list]]) -> dict[str, list]:
    """Several columnar batches as one, ``None`` where a batch lacks a column."""
    columns: dict[str, list] = {}
    size = 0
    for batch in batches:
        for name, values in batch.items():
            columns.setdefault(name, [None] * size).extend(values)
        size += batch_rows(batch)
        for column in columns.values():
            column.extend([None] * (size - len(column)))
    return columns


def records_of(batch: dict[str, list]) -> Iterator[PredictionRecord]:
    """The rows of a columnar batch as :class:`PredictionRecord` objects (for tools and tests;
    consumers on the hot path should stay columnar)."""
    features = [name for name in batch if name.startswith(FEATURE_PREFIX)]
    for i in range(batch_rows(batch)):
        yield PredictionRecord(
            **{name: batch[name][i] for name in RECORD_FIELDS + ROW_FIELDS},
            features={name[len(FEATURE_PREFIX):]: batch[name][i] for name in features},
        )
