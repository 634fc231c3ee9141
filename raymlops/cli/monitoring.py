"""`raymlops monitor start`, `raymlops drift status | report` and `raymlops predictions export`."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, fail, friendly_errors

monitor_app = typer.Typer(help="The drift monitor actor of a served model.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift state of a served model.", no_args_is_help=True)
predictions_app = typer.Typer(help="The prediction log (what retraining reads).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the monitoring commands to ``app``."""
    app.add_typer(monitor_app, name="monitor")
    app.add_typer(drift_app, name="drift")
    app.add_typer(predictions_app, name="predictions")


@monitor_app.command("start")
@friendly_errors
def monitor_start(name: str = typer.Argument(..., help="Registered model name."),
                  config: Optional[Path] = CONFIG_OPTION,
                  set_: List[str] = SET_OPTION,
                  replace: bool = typer.Option(False, "--replace", help="Restart a running monitor with these "
                                               "settings (its state comes back from its snapshot).")) -> None:
    """Start the model's DriftMonitor actor through the Jobs API (a no-op when it runs already,
    unless --replace)."""
    from raymlops.config import MonitorConfig, find_config, load_config
    from raymlops.monitor.client import start_monitor

    load_config(find_config(config, "monitor"), MonitorConfig, set_)  # typos fail here, before submitting
    job_id = start_monitor(name, str(config) if config else None, set_, echo=lambda text: typer.echo(text, nl=False),
                           replace=replace)
    typer.echo(f"job {job_id} succeeded")


@drift_app.command("status")
@friendly_errors
def drift_status(name: str = typer.Argument(..., help="Served model name."),
                 app_prefix: Optional[str] = typer.Option(None, "--route-prefix", help="The application's route "
                                                          "prefix; unset = asked from the cluster."),
                 as_json: bool = typer.Option(False, "--json", help="Print the monitor's status as JSON.")) -> None:
    """Drift state per version: the false-alarm budget and what each detector spent, the latest
    p-values against their calibrated thresholds with effect sizes, and the label-free accuracy
    estimate next to the measured one (from the model server's /v1/models/NAME/drift)."""
    import httpx

    from raymlops.serve.deploy import model_base_url

    url = f"{model_base_url(name, route_prefix=app_prefix)}/v1/models/{name}/drift"
    try:
        response = httpx.get(url, headers=_credentials(), timeout=30)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url} ({exc}); is the model deployed? (`raymlops status`)")
    if response.status_code != 200:
        fail(f"{url}: {response.status_code} {response.text[:300]}")
    status = response.json()
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    counters, shards = status["counters"], status.get("shards") or []
    if shards:  # a sharded monitor: the figures of every shard
        counters = {key: sum(s.get(key) or 0 for s in shards) for key in ("rows_ingested", "windows_checked",
                                                                           "rows_dropped")}
    typer.echo(f"{name}: {counters.get('rows_ingested', 0)} rows ingested, {counters.get('windows_checked', 0)} "
               f"windows checked, {counters.get('rows_dropped', 0)} rows dropped")
    for line in shard_lines(shards):
        typer.echo(f"  {line}")
    for version, info in status["versions"].items():
        state = "DRIFT (" + ", ".join(info["drifting"]) + ")" if info["drifting"] else "no drift"
        typer.echo(f"  v{version}: {state}; open window {info['open_window_rows']} rows; "
                   f"online detector {info['online_detector']}")
        for line in budget_lines(info.get("budget")):
            typer.echo(f"    {line}")
        for detector, report in sorted(info["reports"].items()):
            typer.echo(f"    {report_line(detector, report)}")
        estimate = info.get("accuracy_estimate") or {}
        if estimate.get("state") == "ready":
            shown, measured = estimate.get("estimated_accuracy"), estimate.get("measured_accuracy")
            typer.echo(f"    accuracy: estimated {'—' if shown is None else f'{shown:.3f}'} (no labels), measured "
                       f"{'—' if measured is None else f'{measured:.3f}'} on {estimate.get('labelled', 0)} labels")
        if info.get("side_rows"):
            typer.echo("    not counted for rollouts: " + ", ".join(f"{n} {arm} rows" for arm, n in info["side_rows"].items()))
    for loop, failure in (status.get("loops") or {}).items():
        typer.echo(f"  {loop} loop restarted {failure['restarts']}× (last: {failure['last_error']})")
    if status.get("last_error"):
        typer.echo(f"  last error: {status['last_error']}")


def shard_lines(shards: list[dict]) -> list[str]:
    """One line per shard of a sharded monitor (``shards`` of its status)."""
    return [f"shard {shard['shard']}: " + (
        f"{shard['rows_ingested']} rows, {shard['windows_checked']} windows checked, {shard['windows_dropped']} "
        "dropped" + (f"; last error: {shard['last_error']}" if shard.get("last_error") else "")
        if shard.get("reachable") else f"unreachable ({shard.get('error')})") for shard in shards]


def _credentials() -> dict[str, str]:
    """What this client sends to status endpoints: ``$RAYMLOPS_API_KEY`` when set, else the admin
    token when it has one (a model that requires API keys needs either); nothing otherwise."""
    import os

    from raymlops.cluster import client_admin_token
    from raymlops.errors import RaymlopsError

    if os.environ.get("RAYMLOPS_API_KEY"):
        return {"x-api-key": os.environ["RAYMLOPS_API_KEY"]}
    try:
        return {"authorization": f"Bearer {client_admin_token()}"}
    except RaymlopsError:  # no token for this cluster: ask without one
        return {}


def report_line(detector: str, report: dict) -> str:
    """One detector's latest report: decision, lowest p-value against its threshold, its effect."""
    p_values, effects = report["p_values"], report.get("effects") or {}
    worst = min(p_values.items(), key=lambda kv: kv[1]) if p_values else None
    if worst:
        lowest = f"lowest p {worst[1]:.3g} ({worst[0]}) vs threshold {report['threshold']:.3g}"
    else:
        lowest = f"statistic {report['distances']}"
    if effects:
        name, value = max(effects.items(), key=lambda kv: kv[1])
        least = (report.get("min_effect") or {}).get(name)
        lowest += f"; largest effect {value:.3g} ({name}" + (f", min {least:g})" if least is not None else ")")
    return f"{detector:8s} {'drift' if report['drift'] else 'ok':5s} {lowest}; {report['window_rows']} rows"


def budget_lines(budget: dict | None) -> list[str]:
    """The false-alarm budget and what each detector spent of it."""
    from raymlops.monitor.budget import describe_limit

    if not budget or budget.get("false_alarms") is None:
        return []
    lines = [f"budget: {budget['false_alarms']:g} false alarm(s) per {budget['per_rows']} rows; "
             f"{budget['alarms']} alarm(s) in {budget['rows']} rows (≈{budget['budget_so_far']:.2g} expected with no drift)"]
    for name, spent in sorted(budget.get("detectors", {}).items()):
        allocation = spent.get("allocation") or {}
        lines.append(f"  {name:8s} share {allocation.get('alarms', 0):.2g} ({describe_limit(allocation)}); "
                     f"{spent['alarms']} alarm(s) in "
                     f"{spent['looks']} looks, {spent['expected_false_alarms']:.2g} expected")
    return lines


@drift_app.command("report")
@friendly_errors
def drift_report(name: str = typer.Argument(..., help="Served model name."),
                 version: Optional[int] = typer.Option(None, help="Version (default: the champion)."),
                 html_file: Optional[Path] = typer.Option(None, "--html", help="Write the report as one self-contained "
                                                          "HTML page (opens with no network)."),
                 as_json: bool = typer.Option(False, "--json", help="Print the report's data as JSON."),
                 app_prefix: Optional[str] = typer.Option(None, "--route-prefix", help="The application's route "
                                                          "prefix; unset = asked from the cluster.")) -> None:
    """Drift report of a version: per feature the reference against the recent window, p-values over
    time, and drift events, retraining jobs and rollout steps on one timeline."""
    import httpx

    from raymlops.monitor.report_html import render_report
    from raymlops.serve.deploy import model_base_url

    if html_file is None and not as_json:
        fail("say where the report goes: --html FILE (a page) and/or --json (its data on stdout)")
    url = f"{model_base_url(name, route_prefix=app_prefix)}/v1/models/{name}/drift/report"
    try:
        response = httpx.get(url, params={"version": version} if version is not None else None,
                             headers=_credentials(), timeout=60)
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url} ({exc}); is the model deployed? (`raymlops status`)")
    if response.status_code != 200:
        fail(f"{url}: {response.status_code} {response.text[:300]}")
    report = response.json()
    if html_file is not None:
        html_file.write_text(render_report(report))
        typer.echo(f"{name} v{report['version']}: {len(report['features'])} features, "
                   f"{sum(len(p) for p in report['p_values'].values())} detector runs, {len(report['timeline'])} "
                   f"events → {html_file}", err=as_json)
    if as_json:
        typer.echo(json.dumps(report, indent=2))


def _parse_since(text: Optional[str]) -> Optional[float]:
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return time.time() - float(text[:-1]) * units[text[-1]]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since {text!r}: use an ISO date/time (2026-11-25, 2026-11-25T10:00) or an age like 30m, 6h, 2d")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


@predictions_app.command("export")
@friendly_errors
def predictions_export(
    name: str = typer.Argument(..., help="Model name."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write (.parquet or .csv)."),
    since: Optional[str] = typer.Option(None, help="From this UTC time (ISO) or age (30m, 6h, 2d) on."),
    version: Optional[int] = typer.Option(None, help="Only this version."),
    registry: Path = typer.Option(Path("configs/registry.yaml"), help="Registry config (locates the log)."),
    log_root: Optional[str] = typer.Option(None, help="Log URI, when not <artifact_root>/_predictions."),
) -> None:
    """Write the logged prediction records of a model to one file."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from raymlops import filesystem
    from raymlops.monitor.storage import read_prediction_log
    from raymlops.registry.registry import absolute_settings

    root = log_root or filesystem.join(absolute_settings(str(registry))["artifact_root"], "_predictions")
    table = read_prediction_log(root, name, _parse_since(since), version)
    if table.num_rows == 0:
        fail(f"no logged predictions of {name} under {root}" + (f" since {since}" if since else ""))
    if output.suffix == ".csv":
        pacsv.write_csv(table, output)
    else:
        pq.write_table(table, output)
    typer.echo(f"{table.num_rows} records → {output}")
