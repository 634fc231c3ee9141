"""The drift report as one self-contained HTML page: inline CSS and SVG, no script, no network.

Sections: a header with the verdict; per feature, the reference's and the recent window's
distributions side by side (bars) with the effect size against its minimum; the false-alarm
budget and what each detector spent; the label-free accuracy estimate; per detector,
p-values over time against the calibrated threshold; and one timeline of drift events,
retraining jobs and rollout steps.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

from raymlops.monitor.budget import describe_limit

REFERENCE, RECENT, DRIFT, OK = "#7a8ca5", "#e07b39", "#c0392b", "#2e8b57"
STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.grid{display:flex;flex-wrap:wrap;gap:16px}.card{border:1px solid #ddd;border-radius:6px;padding:8px}
.drift{color:#c0392b;font-weight:600}.ok{color:#2e8b57;font-weight:600}
table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;font-size:13px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}"""


def when(timestamp: float) -> str:
    """A UTC time for people."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def bars(name: str, dist: dict[str, Any], width: int = 330, height: int = 150) -> str:
    """Reference and recent shares per bin or category, as paired bars in one SVG."""
    labels = dist.get("categories") or [f"{a:.3g}" for a in dist.get("edges", [])[:-1]]
    ref, cur = dist.get("reference", []), dist.get("recent", [])
    n = max(len(ref), 1)
    top = max([*ref, *cur, 1e-9])
    slot = (width - 20) / n
    parts = [f'<svg role="img" aria-label="distribution of {html.escape(name)}" width="{width}" height="{height + 30}">']
    for i in range(len(ref)):
        x = 10 + i * slot
        for j, (values, colour) in enumerate(((ref, REFERENCE), (cur, RECENT))):
            h = (values[i] / top) * height if i < len(values) else 0
            parts.append(f'<rect x="{x + j * slot / 2:.1f}" y="{height - h:.1f}" width="{max(slot / 2 - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>{html.escape(str(labels[i]))}: '
                         f'{values[i] if i < len(values) else 0:.3f}</title></rect>')
    parts.append(f'<line x1="10" y1="{height}" x2="{width - 10}" y2="{height}" stroke="#999"/>')
    for i in (0, len(labels) - 1) if labels else ():
        parts.append(f'<text x="{10 + i * slot:.1f}" y="{height + 14}" font-size="10">{html.escape(str(labels[i]))[:12]}'
                     "</text>")
    parts.append("</svg>")
    return "".join(parts)


def threshold_of(points: list[dict[str, Any]], report: dict[str, Any]) -> float:
    """The latest threshold a detector's p-values were held to (older reports: the version's α)."""
    for point in reversed(points):
        if point.get("threshold") is not None and point.get("p_min") is not None:
            return float(point["threshold"])
    return float(report.get("p_val", 0.05))


def p_value_chart(detector: str, points: list[dict[str, Any]], p_val: float, width: int = 520, height: int = 160) -> str:
    """The lowest p-value of each run over time (log scale) with the threshold line; drift runs in red."""
    import math

    shown = [p for p in points if p.get("p_min") is not None]
    if not shown:
        return f"<p>{html.escape(detector)}: a statistic without p-values (online detector); " \
               f"{sum(p['drift'] for p in points)} detections in {len(points)} runs.</p>"
    t0, t1 = shown[0]["time"], max(shown[-1]["time"], shown[0]["time"] + 1)
    floor = 1e-6

    def y(p: float) -> float:
        return height * (math.log10(max(p, floor)) / math.log10(floor))

    def x(t: float) -> float:
        return 40 + (width - 50) * (t - t0) / (t1 - t0)

    path = " ".join(f"{'M' if i == 0 else 'L'}{x(p['time']):.1f},{y(p['p_min']):.1f}" for i, p in enumerate(shown))
    dots = "".join(f'<circle cx="{x(p["time"]):.1f}" cy="{y(p["p_min"]):.1f}" r="3" fill="{DRIFT if p["drift"] else OK}">'
                   f'<title>{when(p["time"])}: p={p["p_min"]:.3g}</title></circle>' for p in shown)
    return (f'<svg role="img" aria-label="p-values of {html.escape(detector)}" width="{width}" height="{height + 20}">'
            f'<line x1="40" y1="{y(p_val):.1f}" x2="{width - 10}" y2="{y(p_val):.1f}" stroke="{DRIFT}" '
            f'stroke-dasharray="4 3"/><text x="0" y="{y(p_val) + 4:.1f}" font-size="10">{p_val:.2g}</text>'
            f'<text x="0" y="10" font-size="10">p=1</text><text x="0" y="{height}" font-size="10">1e-6</text>'
            f'<path d="{path}" fill="none" stroke="#555"/>{dots}</svg>')


def budget_table(budget: dict[str, Any] | None) -> str:
    """The false-alarm budget, each detector's share, and what was spent."""
    if not budget or budget.get("false_alarms") is None:
        return "<p>No budget recorded yet.</p>"
    rows = []
    for name, spent in sorted(budget.get("detectors", {}).items()):
        allocation = spent.get("allocation") or {}
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{allocation.get('alarms', 0):.3g}</td>"
                    f"<td>{describe_limit(allocation)}</td>"
                    f"<td>{spent['looks']}</td><td>{spent['alarms']}</td><td>{spent['expected_false_alarms']:.3g}</td></tr>")
    head = (f"<p>{budget['false_alarms']:g} false alarm(s) per {budget['per_rows']} rows. {budget['rows']} rows checked: "
            f"the verdict alarmed {budget['alarms']} time(s); with no drift about {budget['budget_so_far']:.3g} "
            "would be expected.</p>")
    return (f"{head}<table><tr><th>detector</th><th>share (alarms per {budget['per_rows']} rows)</th><th>threshold"
            "</th><th>looks</th><th>alarms</th><th>expected false alarms</th></tr>" + "".join(rows) + "</table>")


def estimate_line(estimate: dict[str, Any] | None) -> str:
    """Label-free accuracy estimate next to the accuracy measured from labels."""
    if not estimate:
        return ""
    if estimate.get("state") != "ready":
        return f"<p>Accuracy estimate: {html.escape(str(estimate.get('state')))}.</p>"
    shown = estimate.get("estimated_accuracy")
    measured = estimate.get("measured_accuracy")
    return (f"<p>Estimated accuracy (no labels): {'—' if shown is None else f'{shown:.3f}'}; measured from "
            f"{estimate.get('labelled', 0)} feedback labels: {'—' if measured is None else f'{measured:.3f}'}; "
            f"the reference's: {estimate.get('reference_accuracy', 0):.3f}.</p>")


def effect_line(dist: dict[str, Any]) -> str:
    """A feature's latest effect size against its minimum, and its p-value against the threshold."""
    if dist.get("effect") is None:
        return ""
    p, threshold = dist.get("p_value"), dist.get("threshold")
    unit = "PSI" if dist["kind"] == "categorical" else "Wasserstein/std"
    return (f"<br>effect {dist['effect']:.3g} {unit} (min {dist.get('min_effect', 0):g}); "
            f"p {p:.3g} (threshold {threshold:.3g})" if p is not None and threshold is not None else "")


def timeline_table(events: list[dict[str, Any]]) -> str:
    """Drift events, retraining jobs and rollout steps, newest first."""
    if not events:
        return "<p>No drift events, retraining jobs or rollout steps yet.</p>"
    rows = "".join(f'<tr><td>{when(e["time"])}</td><td class="{"drift" if e["kind"] == "drift_detected" else ""}">'
                   f'{html.escape(e["kind"])}</td><td>{e["version"] if e["version"] is not None else ""}</td>'
                   f'<td>{html.escape(e["detail"])}</td></tr>' for e in reversed(events))
    return f"<table><tr><th>time</th><th>event</th><th>version</th><th>detail</th></tr>{rows}</table>"


def render_report(report: dict[str, Any]) -> str:
    """The whole page."""
    model, version = html.escape(report["model"]), report["version"]
    drifting = report.get("drifting") or []
    verdict = (f'<span class="drift">DRIFT ({html.escape(", ".join(drifting))})</span>' if drifting
               else '<span class="ok">no drift</span>')
    features = "".join(
        f'<div class="card"><b>{html.escape(name)}</b> ({dist["kind"]}, {dist.get("recent_rows", 0)} recent rows)'
        f'{effect_line(dist)}<br>{bars(name, dist)}</div>' for name, dist in report.get("features", {}).items())
    charts = "".join(f"<h3>{html.escape(d)}</h3>{p_value_chart(d, points, threshold_of(points, report))}"
                     for d, points in report.get("p_values", {}).items()) or "<p>No detector has run yet.</p>"
    legend = (f'<p class="legend"><span style="background:{REFERENCE}"></span>reference (held-out data)'
              f'<span style="background:{RECENT}"></span>recent window</p>')
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Drift report: {model} v{version}</title>"
            f"<style>{STYLE}</style></head><body><h1>Drift report: {model} v{version}</h1>"
            f"<p>State: {verdict} &middot; generated {when(report['generated_at'])}</p>"
            f"<h2>Features: reference vs recent</h2>{legend}<div class='grid'>{features or 'No reference features.'}</div>"
            f"<h2>False-alarm budget</h2>{budget_table(report.get('budget'))}"
            f"{estimate_line(report.get('accuracy_estimate'))}"
            f"<h2>p-values over time</h2>{charts}<h2>Timeline</h2>{timeline_table(report.get('timeline', []))}"
            "</body></html>")
