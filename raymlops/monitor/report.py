"""The drift report's data: per feature, the reference's distribution against the recent window's;
each detector's p-values over time; drift events, retraining jobs and rollout steps on one
timeline. Pure (the monitor actor gathers the inputs); :mod:`raymlops.monitor.report_html`
renders it as one self-contained page.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

#: Registry event kinds shown on the timeline (by prefix), and ``registered``.
TIMELINE_PREFIXES = ("drift_", "retrain_", "rollout_")
BINS = 12
MAX_CATEGORIES = 20


def numeric_distribution(reference: Sequence[float], recent: Sequence[float]) -> dict[str, Any]:
    """Shares of reference and recent values over shared bins (the reference's 1st–99th percentile
    range, widened to hold the recent values' median), plus summary numbers."""
    ref = np.asarray(reference, dtype=float)
    ref = ref[np.isfinite(ref)]
    cur = np.asarray(recent, dtype=float)
    cur = cur[np.isfinite(cur)]
    if ref.size == 0:
        return {"kind": "numeric", "edges": [], "reference": [], "recent": [], "reference_mean": None,
                "recent_mean": None, "recent_rows": int(cur.size)}
    low, high = np.percentile(ref, [1, 99])
    if cur.size:
        low, high = min(low, float(np.median(cur))), max(high, float(np.median(cur)))
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        if values.size == 0:
            return [0.0] * BINS
        counts, _ = np.histogram(np.clip(values, low, high), bins=edges)
        return (counts / values.size).round(4).tolist()

    return {"kind": "numeric", "edges": edges.round(6).tolist(), "reference": shares(ref), "recent": shares(cur),
            "reference_mean": float(ref.mean()), "recent_mean": float(cur.mean()) if cur.size else None,
            "recent_rows": int(cur.size)}


def categorical_distribution(reference: Sequence[Any], recent: Sequence[Any]) -> dict[str, Any]:
    """Shares of each category (the most frequent ones; the rest as ``(other)``) in both samples."""
    ref = [str(v) for v in reference if v is not None]
    cur = [str(v) for v in recent if v is not None]
    counts: dict[str, int] = {}
    for value in ref + cur:
        counts[value] = counts.get(value, 0) + 1
    shown = sorted(counts, key=lambda v: -counts[v])[:MAX_CATEGORIES]
    if len(counts) > len(shown):
        shown.append("(other)")

    def shares(values: list[str]) -> list[float]:
        if not values:
            return [0.0] * len(shown)
        bucket = [v if v in shown else "(other)" for v in values]
        return [round(bucket.count(c) / len(values), 4) for c in shown]

    return {"kind": "categorical", "categories": shown, "reference": shares(ref), "recent": shares(cur),
            "recent_rows": len(cur)}


def feature_distributions(reference: Mapping[str, Any], recent: Mapping[str, Any],
                          categorical: Iterable[str]) -> dict[str, dict[str, Any]]:
    """One distribution per feature of the reference."""
    categorical = set(categorical)
    out = {}
    for name, values in reference.items():
        current = recent.get(name, [])
        out[name] = (categorical_distribution(values, current) if name in categorical
                     else numeric_distribution(values, current))
    return out


def history_point(report: Mapping[str, Any]) -> dict[str, Any]:
    """One detector run, as the p-value history keeps it."""
    p_values = report.get("p_values") or {}
    return {"time": report["time"], "version": report["version"], "detector": report["detector"],
            "p_min": min(p_values.values()) if p_values else None, "p_values": p_values,
            "threshold": report.get("threshold"), "drift": bool(report.get("drift"))}


def timeline(events: Iterable[Any]) -> list[dict[str, Any]]:
    """Drift events, retraining jobs and rollout steps (and registrations), oldest first."""
    out = []
    for event in events:
        if event.kind == "registered" or event.kind.startswith(TIMELINE_PREFIXES):
            payload = event.payload or {}
            detail = payload.get("detector") or payload.get("reason") or payload.get("job_id") or ""
            out.append({"time": event.time, "kind": event.kind, "version": event.version, "detail": str(detail)[:200]})
    return out


def assemble_report(model: str, version: int, distributions: dict[str, dict[str, Any]], history: Iterable[Mapping],
                    events: list[dict[str, Any]], drifting: list[str], p_val: float,
                    detail: Mapping[str, Any] | None = None, last_reports: Mapping[str, Mapping] | None = None
                    ) -> dict[str, Any]:
    """The report body (``GET /v1/models/{name}/drift/report``): ``detail`` is the version's
    budget, calibration and accuracy estimate (as in ``drift status``), ``last_reports`` its
    latest report per detector, whose effect sizes are shown per feature."""
    points = [point for point in history if point["version"] == version]
    detectors = sorted({point["detector"] for point in points})
    feature = (last_reports or {}).get("feature") or {}
    for name, dist in distributions.items():
        if name in feature.get("effects", {}):
            dist.update(effect=feature["effects"][name], min_effect=feature.get("min_effect", {}).get(name),
                        p_value=feature.get("p_values", {}).get(name), threshold=feature.get("threshold"))
    output = (last_reports or {}).get("output") or {}
    return {
        "model": model, "version": version, "generated_at": time.time(), "p_val": p_val, "drifting": drifting,
        "features": distributions,
        "output": {"effect": output.get("effects", {}).get("prediction"),
                   "min_effect": output.get("min_effect", {}).get("prediction"),
                   "p_value": output.get("p_values", {}).get("prediction"), "threshold": output.get("threshold")}
        if output else None,
        "p_values": {detector: [point for point in points if point["detector"] == detector] for detector in detectors},
        "timeline": events,
        **dict(detail or {}),
    }


def version_report(model: str, version: int, checker: Any, recent: Any, history: list[Mapping], events: Iterable[Any],
                   drifting: list[str], detail: Mapping[str, Any] | None = None,
                   last_reports: Mapping[str, Mapping] | None = None) -> dict[str, Any]:
    """The report of one version from the monitor's parts: its checker's reference (categorical
    codes turned back into values), the last window it tested (an Arrow table, or None), the
    detector history and the registry's events."""
    from raymlops.monitor.checker import complete_rows

    reference = checker.reference
    current = complete_rows(recent, reference.features) if recent is not None else {}
    values: dict[str, Any] = {name: reference.values[name] for name in reference.numeric}
    values.update({name: [reference.categories[name][int(c)] for c in reference.values[name]]
                   for name in reference.categorical})
    distributions = feature_distributions(values, current, reference.categorical)
    return assemble_report(model, version, distributions, history, timeline(events), drifting, checker.p_val, detail,
                           last_reports)
