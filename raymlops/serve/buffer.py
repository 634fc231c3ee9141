"""A replica's record buffer: every answered request becomes rows, appended column by column
and drained as one :mod:`raymlops.records` batch (a pyarrow ``RecordBatch``). No Ray here.

The buffer is bounded: when the sink is slow and it is full, new rows are dropped and
counted — a request never waits for monitoring.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from raymlops.records import FEATURE_PREFIX, RECORD_FIELDS, RecordBatch, to_record_batch


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
    types: dict = field(default_factory=dict)  # column → Arrow type seen so far (see to_record_batch)

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
            confidences: the model's confidence per row, when it has one (a classifier's probability
                of its class).
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
        for column in self.columns.values():
            if len(column) < self.size:  # a feature this request did not have
                column.extend([None] * (self.size - len(column)))
        return rows - taken

    def due(self, clock: float | None = None) -> bool:
        """Whether a flush is due (enough rows, or the oldest row waited long enough)."""
        if self.size == 0:
            return False
        now = clock if clock is not None else time.monotonic()
        return self.size >= self.flush_rows or (now - (self.oldest or now)) * 1000 >= self.flush_ms

    def drain(self) -> RecordBatch:
        """Take every buffered row as one record batch and empty the buffer."""
        columns, self.columns, self.size, self.oldest = self.columns, {}, 0, None
        return to_record_batch(columns, self.types)
