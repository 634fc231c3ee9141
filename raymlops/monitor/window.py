"""Per-version windows cut from the prediction stream, column by column. Pure.

Only answered rows (status < 400 with a prediction) enter a window; each version has its own
window, whatever arm answered (stable, canary, pinned or shadow), so every version is
checked against its own reference. A window keeps the record batches' slices it was given
(features under their own names, the prediction as ``__prediction__``) and concatenates them
once, when it is checked.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.records import FEATURE_PREFIX, as_view

PREDICTION = "__prediction__"
#: The model's confidence per row (the label-free accuracy estimate reads it).
CONFIDENCE = "__confidence__"


@dataclass
class Window:
    """Rows of one version waiting to be tested: feature columns plus predictions (and confidences)."""

    version: int
    started: float
    chunks: list[pa.Table] = field(default_factory=list)
    rows: int = 0

    def append(self, chunk: pa.Table) -> None:
        """Add rows (a table of feature columns and ``__prediction__``)."""
        self.chunks.append(chunk)
        self.rows += chunk.num_rows

    @property
    def table(self) -> pa.Table:
        """Every row of the window as one table (columns a chunk lacks are null there)."""
        if not self.chunks:
            return pa.table({})
        if len(self.chunks) > 1:
            self.chunks = [pa.concat_tables(self.chunks, promote_options="permissive").combine_chunks()]
        return self.chunks[0]

    @property
    def columns(self) -> dict[str, list]:
        """The window's columns as lists (name → values)."""
        return self.table.to_pydict()


class WindowQueue:
    """Full windows waiting for a check, at most ``capacity``: when the checks fall behind, the
    oldest window is dropped (its rows counted), so memory stays bounded and the newest data is
    always what gets checked."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.windows: deque[Window] = deque()
        self.dropped_windows = 0
        self.dropped_rows = 0

    def put(self, window: Window) -> int:
        """Queue a window; returns the rows dropped to make room (0 when there was room)."""
        self.windows.append(window)
        if len(self.windows) > self.capacity:
            oldest = self.windows.popleft()
            self.dropped_windows += 1
            self.dropped_rows += oldest.rows
            return oldest.rows
        return 0

    def take(self) -> Window | None:
        """The oldest queued window, or None."""
        return self.windows.popleft() if self.windows else None

    def __len__(self) -> int:
        return len(self.windows)


@dataclass
class WindowSet:
    """The open window of every version.

    Args:
        size: rows of a full window.
        min_samples: the least rows of a partial window worth testing.
        max_wait_s: age at which a partial window is tested.
        sample_rate: share of answered rows that enter windows.
    """

    size: int = 500
    min_samples: int = 100
    max_wait_s: float = 60.0
    sample_rate: float = 1.0
    seed: int = 0
    open: dict[int, Window] = field(default_factory=dict)
    sampled_out: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def add(self, records: Any, now: float | None = None) -> list[Window]:
        """Add a record batch or view; returns the windows it filled."""
        now = time.time() if now is None else now
        view = as_view(records)
        keep = view.answered.copy()
        if self.sample_rate < 1.0:
            sampled = self._rng.random(view.num_rows) < self.sample_rate
            self.sampled_out += int(np.count_nonzero(keep & ~sampled))
            keep &= sampled
        if not keep.any():
            return []
        batch, versions = view.batch, view.versions
        features = [name for name in batch.schema.names if name.startswith(FEATURE_PREFIX)]
        extra = [("prediction", PREDICTION)] + ([("confidence", CONFIDENCE)] if "confidence" in batch.schema.names
                                                else [])
        rows = batch.select([*features, *(name for name, _ in extra)]).rename_columns(
            [*(name[len(FEATURE_PREFIX):] for name in features), *(renamed for _, renamed in extra)])
        full = []
        for version in np.unique(versions[keep]):
            selected = keep & (versions == version)
            chunk = rows if selected.all() else rows.filter(pa.array(selected))
            full += self._fill(int(version), pa.Table.from_batches([chunk]), now)
        return full

    def _fill(self, version: int, chunk: pa.Table, now: float) -> list[Window]:
        full = []
        while chunk.num_rows:
            window = self.open.get(version)
            if window is None:
                window = self.open[version] = Window(version, now)
            room = self.size - window.rows
            window.append(chunk.slice(0, room))
            chunk = chunk.slice(room)
            if window.rows >= self.size:
                full.append(self.open.pop(version))
        return full

    def due(self, now: float | None = None) -> list[Window]:
        """Partial windows old enough and large enough to test now (taken out of the set)."""
        now = time.time() if now is None else now
        ready = [v for v, w in self.open.items() if w.rows >= self.min_samples and now - w.started >= self.max_wait_s]
        return [self.open.pop(v) for v in ready]

    def take_open(self, min_rows: int) -> list[Window]:
        """Every open window of at least ``min_rows`` rows (taken out of the set)."""
        ready = [v for v, w in self.open.items() if w.rows >= min_rows]
        return [self.open.pop(v) for v in ready]

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps."""
        return {"open": {v: {"started": w.started, "columns": w.columns, "rows": w.rows} for v, w in self.open.items()},
                "sampled_out": self.sampled_out}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot's windows."""
        self.open = {}
        for v, saved in state["open"].items():
            window = self.open[int(v)] = Window(int(v), saved["started"])
            if saved["rows"]:
                window.append(pa.table(saved["columns"]))
        self.sampled_out = state.get("sampled_out", 0)
