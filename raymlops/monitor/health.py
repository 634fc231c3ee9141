"""Per-version health stats from the prediction stream (count, error rate, latency
percentiles, prediction distribution) over any recent period. Pure.

Each version keeps its last ``max_rows`` rows (time, status, latency, prediction); the rollout
controller asks for the stats since its step began.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from raymlops.types import ArmStats


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of already sorted values by the nearest-rank method; None when empty."""
    if not sorted_values:
        return None
    index = min(max(math.ceil(q * len(sorted_values)) - 1, 0), len(sorted_values) - 1)
    return sorted_values[index]


@dataclass
class HealthStats:
    """Recent rows of every version."""

    max_rows: int = 20_000
    rows: dict[int, deque] = field(default_factory=dict)
    totals: Counter = field(default_factory=Counter)

    def add(self, batch: dict[str, list]) -> None:
        """Take a columnar record batch (every status counts, rejected rows included)."""
        versions = batch.get("version", [])
        times, statuses = batch.get("time", []), batch.get("status", [])
        latencies, predictions = batch.get("latency_ms", []), batch.get("prediction", [])
        for i, version in enumerate(versions):
            if version is None:
                continue
            version = int(version)
            rows = self.rows.get(version)
            if rows is None:
                rows = self.rows[version] = deque(maxlen=self.max_rows)
            rows.append((times[i], statuses[i], latencies[i], predictions[i]))
            self.totals[version] += 1

    def stats(self, version: int, since: float | None = None) -> ArmStats:
        """Stats of ``version`` since a UNIX time (default: every kept row)."""
        since = since if since is not None else 0.0
        selected = [row for row in self.rows.get(version, ()) if row[0] >= since]
        errors = sum(1 for _, status, _, _ in selected if (status or 0) >= 500)
        answered = sorted(latency for _, status, latency, _ in selected if (status or 0) < 400 and latency is not None)
        predictions = Counter(str(p) for _, status, _, p in selected if p is not None and (status or 0) < 400)
        return ArmStats(version=version, requests=len(selected), errors=errors,
                        error_rate=errors / len(selected) if selected else 0.0,
                        latency_p50_ms=percentile(answered, 0.5), latency_p99_ms=percentile(answered, 0.99),
                        predictions=dict(predictions), since=since)

    def all(self, since: float | None = None) -> dict[int, ArmStats]:
        """Stats of every version seen."""
        return {version: self.stats(version, since) for version in sorted(self.rows)}

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps."""
        return {"rows": {v: list(rows) for v, rows in self.rows.items()}, "totals": dict(self.totals)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot."""
        self.rows = {int(v): deque((tuple(r) for r in rows), maxlen=self.max_rows) for v, rows in state["rows"].items()}
        self.totals = Counter({int(v): n for v, n in state["totals"].items()})

