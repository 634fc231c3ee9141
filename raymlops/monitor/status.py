"""The monitor's status body, assembled from its parts. Pure."""

from __future__ import annotations

from typing import Any


def reports_by_version(last_reports: dict[str, dict]) -> dict[str, dict[str, dict]]:
    """``{"<version>/<detector>": report}`` → ``{version: {detector: report}}``."""
    grouped: dict[str, dict[str, dict]] = {}
    for key, report in last_reports.items():
        version, detector = key.split("/", 1)
        grouped.setdefault(version, {})[detector] = report
    return grouped


def assemble_status(model: str, versions: list[int], drifting: dict[int, list[str]], last_reports: dict[str, dict],
                    open_rows: dict[int, int], online: dict[int, str], queued: int, counters: dict[str, Any],
                    uptime_s: float, restored_age_s: float | None, prediction_log: str, last_error: str | None,
                    retrain: dict[str, Any], details: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The body of ``DriftMonitor.status`` (and of ``GET /v1/models/{name}/drift``); ``details``
    per version: its budget, calibration and accuracy estimate."""
    details = details or {}
    reports = reports_by_version(last_reports)
    return {
        "model": model,
        "versions": {str(v): {
            "drifting": drifting.get(v, []),
            "reports": reports.get(str(v), {}),
            "open_window_rows": open_rows.get(v, 0),
            "online_detector": online.get(v, "not started"),
            **details.get(v, {}),
        } for v in versions},
        "queued_windows": queued,
        "counters": counters,
        "uptime_s": uptime_s,
        "restored_snapshot_age_s": restored_age_s,
        "prediction_log": prediction_log,
        "last_error": last_error,
        "retrain": retrain,
    }


def with_estimates(accuracy: dict[str, dict[str, Any]], checkers: dict[int, Any], health: Any,
                   since: float | None = None) -> dict[str, dict[str, Any]]:
    """The monitor's per-version accuracy answer (measured from feedback) with, for each version
    whose checker has an estimator, the accuracy estimated from its rows' confidences since
    ``since`` (``estimated_accuracy``, ``estimated_rows``)."""
    import numpy as np

    for version, checker in checkers.items():
        if checker.estimator is None:
            continue
        confidence = health.confidences(version, since)
        estimate = checker.estimator.estimate(confidence)
        entry = accuracy.setdefault(str(version), {"labelled": 0, "accuracy": None})
        entry["estimated_accuracy"] = round(estimate, 6) if estimate is not None else None
        entry["estimated_rows"] = int(np.isfinite(confidence).sum())
    return accuracy


def version_detail(checker: Any, budget: dict[str, Any], measured: dict[str, Any],
                   side_rows: dict[str, int] | None = None) -> dict[str, Any]:
    """Per version in ``status``: the budget and what was spent, thresholds and their
    calibration, the accuracy measured from labels next to the label-free estimate, and the rows
    of calls pinned to it or shadowed to it (``side_rows``, by arm; rollouts do not count them)."""
    detail: dict[str, Any] = {"budget": budget, "side_rows": side_rows or {}}
    if checker is not None:
        detail.update(checker.describe())
        detail["accuracy_estimate"]["measured_accuracy"] = measured.get("accuracy")
        detail["accuracy_estimate"]["labelled"] = measured.get("labelled", 0)
    return detail
