"""One model's monitor over several actors (``shards`` in configs/monitor.yaml). Pure.

Replicas send each row to shard ``crc32(request_id) % shards`` (:func:`split_batch`), so every
row of a request, and its feedback label, lands on one shard. Each shard keeps its own
windows, checks, health rows and feedback join. Shard 0 — the actor named after the model —
speaks for all of them: the other shards send it their drift reports, and its verdict per
(version, detector) is drift while the latest report of any shard says drift
(:class:`MergedVerdicts`); it alone writes drift events and starts retraining. The health and
accuracy a rollout judges are merged from every shard's rows (:func:`merged_health`,
:func:`merged_outcomes`).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pyarrow as pa

from raymlops.types import DriftReport


def shard_of(request_ids: Sequence[Any], shards: int) -> np.ndarray:
    """The shard of each request id (a stable hash: every process agrees)."""
    return np.fromiter((zlib.crc32(str(rid).encode()) % shards for rid in request_ids), dtype=np.int64,
                       count=len(request_ids))


def split_batch(batch: pa.RecordBatch, shards: int) -> list[tuple[int, pa.RecordBatch]]:
    """The batch's rows by shard (in their order); one shard, or no request ids: all to shard 0."""
    if shards <= 1 or "request_id" not in batch.schema.names:
        return [(0, batch)]
    owners = shard_of(batch.column("request_id").to_pylist(), shards)
    return [(int(shard), batch.filter(pa.array(owners == shard))) for shard in np.unique(owners)]


@dataclass
class MergedVerdicts:
    """The latest decision of every shard per (version, detector); the merged verdict is drift
    while any of them says drift."""

    latest: dict[str, dict[int, bool]] = field(default_factory=dict)

    def merge(self, report: DriftReport, shard: int) -> DriftReport:
        """Record ``shard``'s report; the report carrying the merged verdict."""
        key = f"{report.version}/{report.detector}"
        self.latest.setdefault(key, {})[shard] = report.drift
        merged = any(self.latest[key].values())
        return report if merged == report.drift else dataclasses.replace(report, drift=merged)

    def seed(self, drifting: Iterable[str], shards: int) -> None:
        """After a restart: the keys whose last event said drift stay drifting until every
        shard has reported them clear (no clear-then-detected flap)."""
        for key in drifting:
            self.latest[key] = {shard: True for shard in range(shards)}


def merged_health(states: Sequence[dict[str, Any]], max_rows: int) -> Any:
    """One :class:`~raymlops.monitor.health.HealthStats` holding the rows of every shard's
    ``HealthStats.state()`` (at most ``max_rows`` per version from each)."""
    from raymlops.monitor.health import HealthStats

    merged = HealthStats(max_rows=max_rows * max(len(states), 1))
    for state in states:
        part = HealthStats(max_rows=max_rows)
        part.restore(state)
        for version, rows in part.rows.items():
            if rows.rows:
                merged.rows.setdefault(version, type(rows)(merged.max_rows)).append(rows.columns())
        merged.totals.update(part.totals)
        merged.side.update(part.side)
    return merged


def merged_outcomes(parts: Sequence[dict[Any, Sequence]], window: int) -> dict[int, deque]:
    """Every shard's labelled outcomes per version (``(time, outcome)`` pairs), oldest first,
    the newest ``window`` of each version kept."""
    merged: dict[int, list] = {}
    for part in parts:
        for version, outcomes in part.items():
            merged.setdefault(int(version), []).extend(tuple(o) for o in outcomes)
    return {version: deque(sorted(pairs, key=lambda pair: pair[0]), maxlen=window)
            for version, pairs in merged.items()}


def shard_summary(shard: int, status: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    """What ``drift status`` shows of one shard."""
    if status is None:
        return {"shard": shard, "reachable": False, "error": error}
    counters = Counter(status.get("counters") or {})
    return {"shard": shard, "reachable": True, "rows_ingested": counters["rows_ingested"],
            "windows_checked": counters["windows_checked"], "windows_dropped": counters["windows_dropped"],
            "rows_dropped": counters["rows_dropped"], "checks_failed": counters["checks_failed"], "reports_unsent": counters["reports_unsent"],
            "last_error": status.get("last_error")}
