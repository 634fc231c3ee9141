"""Per-version windows cut from the prediction stream. Pure.

Only answered rows (status < 400 with a prediction) enter a window; each version has its own
window, whatever arm answered (stable, canary, pinned or shadow), so every version is
checked against its own reference.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from raymlops.serve.records import FEATURE_PREFIX


@dataclass
class Window:
    """Rows of one version waiting to be tested: feature columns plus predictions."""

    version: int
    started: float
    columns: dict[str, list] = field(default_factory=dict)
    rows: int = 0

    def add_row(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            self.columns.setdefault(name, [None] * self.rows).append(value)
        self.rows += 1
        for column in self.columns.values():
            if len(column) < self.rows:
                column.append(None)


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
        self._rng = random.Random(self.seed)

    def add(self, batch: dict[str, list], now: float | None = None) -> list[Window]:
        """Add a columnar record batch; returns the windows it filled."""
        now = time.time() if now is None else now
        features = [name for name in batch if name.startswith(FEATURE_PREFIX)]
        versions, statuses, predictions = batch.get("version", []), batch.get("status", []), batch.get("prediction", [])
        full = []
        for i, version in enumerate(versions):
            if version is None or predictions[i] is None or (statuses[i] or 0) >= 400:
                continue
            if self.sample_rate < 1.0 and self._rng.random() >= self.sample_rate:
                self.sampled_out += 1
                continue
            window = self.open.get(version)
            if window is None:
                window = self.open[version] = Window(int(version), now)
            row = {name[len(FEATURE_PREFIX):]: batch[name][i] for name in features}
            row["__prediction__"] = predictions[i]
            window.add_row(row)
            if window.rows >= self.size:
                full.append(self.open.pop(version))
        return full

    def due(self, now: float | None = None) -> list[Window]:
        """Partial windows old enough and large enough to test now (taken out of the set)."""
        now = time.time() if now is None else now
        ready = [v for v, w in self.open.items() if w.rows >= self.min_samples and now - w.started >= self.max_wait_s]
        return [self.open.pop(v) for v in ready]

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps."""
        return {"open": {v: {"started": w.started, "columns": w.columns, "rows": w.rows} for v, w in self.open.items()},
                "sampled_out": self.sampled_out}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot's windows."""
        self.open = {int(v): Window(int(v), w["started"], w["columns"], w["rows"]) for v, w in state["open"].items()}
        self.sampled_out = state.get("sampled_out", 0)
