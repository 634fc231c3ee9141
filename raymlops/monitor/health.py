"""Per-version health stats from the prediction stream (count, error rate, latency
percentiles, prediction distribution) over any recent period. Pure.

Each version keeps its last ``max_rows`` rows as column chunks (time, status, latency,
prediction, confidence, and whether the row is its request's first), appended a batch at a time;
the rollout controller asks for the stats since its step began. Only the traffic split's arms
(stable, canary) count: calls pinned to a version and shadow copies are counted apart, so nobody
can steer a rollout by pinning calls to the canary. Requests, errors and latencies count each
request once, however many rows it carried; the predictions count rows.
"""

from __future__ import annotations

import base64
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from raymlops.records import ROUTED_ARMS, as_view, filled
from raymlops.types import ArmStats

COLUMNS = ("time", "status", "latency_ms", "prediction", "confidence", "first")
#: Predicted values of a regression kept per stats answer (the newest).
MAX_VALUES = 2000


def percentile(sorted_values: list[float] | np.ndarray, q: float) -> float | None:
    """The q-quantile (0..1) of already sorted values by the nearest-rank method; None when empty."""
    if len(sorted_values) == 0:
        return None
    index = min(max(math.ceil(q * len(sorted_values)) - 1, 0), len(sorted_values) - 1)
    return float(sorted_values[index])


@dataclass
class VersionRows:
    """The recent rows of one version as column chunks, at most ``max_rows`` rows in all."""

    max_rows: int
    chunks: deque = field(default_factory=deque)
    rows: int = 0

    def append(self, chunk: dict[str, np.ndarray]) -> None:
        size = len(chunk["time"])
        self.chunks.append(chunk)
        self.rows += size
        while self.rows - len(self.chunks[0]["time"]) >= self.max_rows:
            self.rows -= len(self.chunks.popleft()["time"])

    def columns(self) -> dict[str, np.ndarray]:
        """Every kept row (the newest ``max_rows``), one array per column."""
        if not self.chunks:
            return {name: np.array([]) for name in COLUMNS}
        joined = {name: np.concatenate([c[name] for c in self.chunks]) for name in COLUMNS}
        return {name: values[-self.max_rows:] for name, values in joined.items()}


def pack(values: np.ndarray) -> dict[str, str]:
    """A numeric array as JSON-ready text (little-endian bytes in base64): a snapshot of 20,000
    rows encodes in a fraction of the time of a list of numbers."""
    array = np.ascontiguousarray(values)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return {"dtype": little.dtype.str, "base64": base64.b64encode(little.tobytes()).decode("ascii")}


def unpack(saved: Any, dtype: Any) -> np.ndarray:
    """The array :func:`pack` wrote (or a plain list, as older snapshots hold it), as ``dtype``.

    Raises:
        ValueError: a packed array of another kind than numbers and booleans.
    """
    if isinstance(saved, dict):
        kind = np.dtype(saved["dtype"])
        if kind.kind not in "biuf":
            raise ValueError(f"a packed column of dtype {kind} (numbers and booleans only)")
        return np.frombuffer(base64.b64decode(saved["base64"]), dtype=kind).astype(dtype)
    return np.asarray(saved, dtype=dtype)


@dataclass
class HealthStats:
    """Recent rows of every version."""

    max_rows: int = 20_000
    rows: dict[int, VersionRows] = field(default_factory=dict)
    totals: Counter = field(default_factory=Counter)
    side: Counter = field(default_factory=Counter)  # rows of pinned and shadow calls, by "version/arm"

    def add(self, records: Any) -> None:
        """Take a record batch or view (every status counts, rejected rows included; rows of
        pinned and shadow calls only in :attr:`side`)."""
        view = as_view(records)
        known = view.versions >= 0
        if "arm" in view.batch.schema.names:
            arms = view.column("arm")
            routed = np.isin(arms, ROUTED_ARMS)
            for key, count in Counter(f"{v}/{a}" for v, a in zip(view.versions[known & ~routed].tolist(),
                                                                  arms[known & ~routed].tolist())).items():
                self.side[key] += count
            known &= routed
        if not known.any():
            return
        batch = view.batch
        ids = view.column("request_id") if "request_id" in batch.schema.names else np.arange(view.num_rows)
        first = np.ones(view.num_rows, dtype=bool)
        first[1:] = ids[1:] != ids[:-1]  # the rows of one request are contiguous in a batch
        values = {"time": filled(batch, "time", 0.0).astype(np.float64),
                  "status": filled(batch, "status", 0).astype(np.int64),
                  "latency_ms": filled(batch, "latency_ms", np.nan).astype(np.float64),
                  "prediction": view.column("prediction"),
                  "confidence": filled(batch, "confidence", np.nan).astype(np.float64),
                  "first": first}
        versions = view.versions
        for version in np.unique(versions[known]):
            mask = (versions == version) & known
            rows = self.rows.setdefault(int(version), VersionRows(self.max_rows))
            rows.append({name: values[name][mask] for name in COLUMNS})
            self.totals[int(version)] += int(np.count_nonzero(mask))

    def stats(self, version: int, since: float | None = None) -> ArmStats:
        """Stats of ``version`` since a UNIX time (default: every kept row)."""
        since = since if since is not None else 0.0
        kept = self.rows.get(version)
        cols = kept.columns() if kept is not None else {name: np.array([]) for name in COLUMNS}
        recent = cols["time"] >= since
        statuses, latencies, predictions = cols["status"][recent], cols["latency_ms"][recent], cols["prediction"][recent]
        first = cols["first"][recent].astype(bool)
        requests = int(np.count_nonzero(first))
        errors = int(np.count_nonzero(first & (statuses >= 500)))
        ok = statuses < 400
        answered = np.sort(latencies[first & ok & ~np.isnan(latencies)]) if requests else np.array([])
        given = [p for p in predictions[ok] if p is not None]
        numeric = bool(given) and all(isinstance(p, (float, np.floating)) for p in given[-MAX_VALUES:])
        counted = Counter() if numeric else Counter(str(p) for p in given)
        return ArmStats(version=version, requests=requests, errors=errors,
                        error_rate=errors / requests if requests else 0.0,
                        latency_p50_ms=percentile(answered, 0.5), latency_p99_ms=percentile(answered, 0.99),
                        predictions=dict(counted), since=since,
                        values=[float(p) for p in given[-MAX_VALUES:]] if numeric else [])

    def confidences(self, version: int, since: float | None = None) -> np.ndarray:
        """The confidences of ``version``'s answered rows since a UNIX time (NaN where the model gave none)."""
        kept = self.rows.get(version)
        if kept is None:
            return np.array([])
        cols = kept.columns()
        recent = (cols["time"] >= (since or 0.0)) & (cols["status"] < 400)
        return cols["confidence"][recent]

    def all(self, since: float | None = None) -> dict[int, ArmStats]:
        """Stats of every version seen."""
        return {version: self.stats(version, since) for version in sorted(self.rows)}

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps (JSON-ready: numeric columns packed, predictions as a list)."""
        return {"columns": {v: {name: values.tolist() if values.dtype == object else pack(values)
                                for name, values in rows.columns().items()}
                            for v, rows in self.rows.items()},
                "totals": dict(self.totals), "side": dict(self.side)}

    def restore(self, state: dict[str, Any]) -> None:
        """Take back a snapshot."""
        self.rows = {}
        for v, saved in state.get("columns", {}).items():
            rows = self.rows[int(v)] = VersionRows(self.max_rows)
            times = unpack(saved["time"], np.float64)
            if len(times):
                rows.append({"time": times, "status": unpack(saved["status"], np.int64),
                             "latency_ms": unpack(saved["latency_ms"], np.float64),
                             "prediction": np.asarray(saved["prediction"], dtype=object),
                             "confidence": unpack(saved.get("confidence") or [np.nan] * len(times), np.float64),
                             "first": unpack(saved.get("first") or [True] * len(times), bool)})
        self.totals = Counter({int(v): n for v, n in state["totals"].items()})
        self.side = Counter(state.get("side", {}))
