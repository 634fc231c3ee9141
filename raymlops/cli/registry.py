"""`raymlops registry list | show | register | alias set|delete | lineage | events`: each runs on the
cluster (:mod:`raymlops.cli.remote`), so the client never opens the registry itself."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, JSON_OPTION, SET_OPTION, fail, friendly_errors, load
from raymlops.cli.remote import cluster_side

app = typer.Typer(help="Model versions, aliases, lineage and events.", no_args_is_help=True)
alias_app = typer.Typer(help="Move or remove aliases (compare-and-set with --expected).", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


def open_registry(config: Optional[Path], overrides: List[str]):
    """The registry from ``--config`` (or configs/registry.yaml) with overrides."""
    from raymlops.registry import Registry

    return Registry.from_config(load("registry", config, overrides))


def _import_path(code: List[str]) -> None:
    """Make ``--code`` modules importable here (on the cluster they arrive as the job's py_modules)."""
    import sys

    for path in code:
        folder = str(Path(path).expanduser().resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)


def when(timestamp: float) -> str:
    """A UTC timestamp for tables."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def emit_json(payload: Any) -> None:
    """Print JSON for scripts."""
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def parse_expected(text: Optional[str]):
    """``--expected`` value: a version number, or ``none`` for "must be unset"; absent = no check."""
    from raymlops.registry import ANY

    if text is None:
        return ANY
    if text.lower() == "none":
        return None
    if not text.isdigit():
        fail(f"--expected must be a version number or 'none', got {text!r}")
    return int(text)


@app.command("list")
@friendly_errors
@cluster_side(upload=True)
def list_models(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every model with its latest version and aliases."""
    models = open_registry(config, set_).list_models()
    if as_json:
        return emit_json(models)
    if not models:
        typer.echo("no models registered yet")
    for model in models:
        aliases = ", ".join(f"{alias}→v{version}" for alias, version in sorted(model["aliases"].items())) or "-"
        typer.echo(f"{model['name']:<24} latest v{model['latest_version']:<4} versions {model['versions']:<4} aliases {aliases}")


@app.command("show")
@friendly_errors
@cluster_side(upload=True)
def show(ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@ALIAS."),
         config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION, as_json: bool = JSON_OPTION) -> None:
    """One version: metrics, artifact files with checksums, aliases, lineage summary, and its
    recorded environment checked against the packages where the command runs (the cluster's)."""
    from raymlops.models.environment import describe_mismatches, parity

    registry = open_registry(config, set_)
    version = registry.get(ref)
    aliases = sorted(a for a, v in registry.aliases(version.name).items() if v == version.version)
    checked = parity(version.lineage.get("environment"))
    if as_json:
        return emit_json({**asdict(version), "aliases": aliases,
                          "environment_check": {k: v for k, v in checked.items() if k != "recorded"}})
    typer.echo(f"{version.name}:{version.version}   created {when(version.created_at)} by {version.created_by}")
    typer.echo(f"aliases:   {', '.join(aliases) or '-'}")
    typer.echo(f"artifacts: {version.artifact_uri}")
    for name, digest in sorted(version.manifest.items()):
        typer.echo(f"  {name:<28} sha256 {digest[:16]}…")
    typer.echo("metrics:   " + (", ".join(f"{k}={v:.4g}" for k, v in sorted(version.metrics.items())) or "-"))
    trigger = version.lineage.get("trigger", {})
    typer.echo(f"trigger:   {trigger.get('kind', '-')}   parent: {version.lineage.get('parent_version') or '-'}")
    recorded = checked["recorded"] or {}
    packages = ", ".join(f"{k} {v}" for k, v in sorted((recorded.get("packages") or {}).items()))
    typer.echo(f"trained with: python {recorded.get('python', '?')}, {packages or '-'}" if recorded
               else "trained with: not recorded (a version older than environment records)")
    typer.echo(f"environment: {checked['status']} here" + "".join(
        f"\n  {line}" for line in describe_mismatches(checked["mismatches"], "\n").splitlines()))
    if version.description:
        typer.echo(f"note:      {version.description}")


@alias_app.command("set")
@friendly_errors
@cluster_side(upload=True)
def alias_set(name: str, alias: str, version: int,
              expected: Optional[str] = typer.Option(None, help="Only move it if it now points here (a version, or 'none')."),
              config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Point ALIAS of model NAME at VERSION."""
    move = open_registry(config, set_).set_alias(name, alias, version, expected=parse_expected(expected))
    typer.echo(f"{name}@{alias}: {move.old_version or '-'} → {move.new_version}")


@alias_app.command("delete")
@friendly_errors
@cluster_side(upload=True)
def alias_delete(name: str, alias: str,
                 expected: Optional[str] = typer.Option(None, help="Only delete it if it now points here."),
                 config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Remove ALIAS from model NAME."""
    move = open_registry(config, set_).delete_alias(name, alias, expected=parse_expected(expected))
    typer.echo(f"{name}@{alias}: {move.old_version} → -")


@app.command("register")
@friendly_errors
@cluster_side(upload=True)
def register(
    name: str = typer.Argument(..., help="Registry name of the model."),
    flavor: str = typer.Option(..., help="sklearn, torch-module, mlflow, torch-tabular, or your own "
                               "package.module:Class."),
    path: str = typer.Option(..., help="The saved model: a .skops file (sklearn; .pkl/.joblib with --allow-pickle); "
                             "a torch.jit.save file, or a state dict with --builder (torch-module); "
                             "an MLflow model directory or models:/, runs:/, s3:// URI (mlflow, with --allow-pickle); "
                             "or a version directory with model.json (torch-tabular, your flavor)."),
    reference: str = typer.Option(..., help="Data like the training data, with the label (parquet/CSV): the "
                                  "signature is inferred from it and the drift reference drawn from it."),
    label: str = typer.Option(..., help="The label column of --reference (and --test)."),
    test: Optional[str] = typer.Option(None, help="Labelled test data: the offline gate compares the version "
                                       "with the champion on it (no gate, no alias without it)."),
    categorical: Optional[List[str]] = typer.Option(None, help="A categorical feature column (repeatable); "
                                                    "default: every string column."),
    trust: Optional[List[str]] = typer.Option(None, help="A type skops may rebuild besides scikit-learn, numpy, "
                                              "scipy, XGBoost and LightGBM (repeatable)."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Load and store this model with pickle (runs "
                                      "code from the file; checked by sha256 before every later load)."),
    builder: Optional[str] = typer.Option(None, help="torch-module: the package.module:function that rebuilds the "
                                          "network of a state dict, called as builder(input_dim, output_dim, **params)."),
    params: Optional[str] = typer.Option(None, help="torch-module: the builder's keyword arguments as JSON."),
    margin: float = typer.Option(0.0, help="How much better than the champion the version must be."),
    code: Optional[List[str]] = typer.Option(None, help="Your code the flavor or builder imports (a module file or a "
                                             "package directory; repeatable): shipped with the command to the cluster."),
    config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION, as_json: bool = JSON_OPTION,
) -> None:
    """Register a model trained elsewhere: its flavor's saved form plus reference data; lineage says imported."""
    from raymlops.train.imports import load_source, register_model

    try:
        builder_params = json.loads(params) if params else {}
    except ValueError as exc:
        fail(f"--params must be a JSON object, e.g. '{{\"hidden\": [32]}}' ({exc})")
    if not isinstance(builder_params, dict):
        fail("--params must be a JSON object of the builder's keyword arguments")
    _import_path(code or [])
    model = load_source(flavor, path, trust or (), allow_pickle, builder, builder_params)
    outcome = register_model(name, model, reference, label, test, registry=open_registry(config, set_),
                             categorical=categorical, trust=trust or (), allow_pickle=allow_pickle, source=path,
                             gate_margin=margin)
    version = outcome.version
    if as_json:
        return emit_json({"version": version.version, "metrics": outcome.metrics, "aliases": outcome.aliases,
                          "gate": outcome.gate.to_payload() if outcome.gate else None})
    gate = outcome.gate.reason if outcome.gate else "no --test data: not gated, no alias moved"
    typer.echo(f"registered {name}:{version.version} ({flavor}); {gate}; aliases {outcome.aliases}")


@app.command("lineage")
@friendly_errors
@cluster_side(upload=True)
def lineage(ref: str = typer.Argument(..., help="NAME:VERSION or NAME@ALIAS."),
            config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The chain from a version back through its parents to the data and the trigger."""
    chain = open_registry(config, set_).lineage_chain(ref)
    if as_json:
        return emit_json([{"version": v.version, **v.lineage} for v in chain])
    for depth, version in enumerate(chain):
        info, pad = version.lineage, "  " * depth
        trigger = info.get("trigger", {})
        cause = trigger.get("kind", "manual")
        if trigger.get("drift_event_id") is not None:
            cause += f" (event {trigger['drift_event_id']})"
        if trigger.get("tune_run"):
            cause += f" (tune run {trigger['tune_run']})"
        code = info.get("code", {})
        typer.echo(f"{pad}{version.name}:{version.version}  {when(version.created_at)}  trigger {cause}")
        typer.echo(f"{pad}  config {str(info.get('config_hash', '-'))[:12]}  seed {info.get('seed', '-')}  "
                   f"job {info.get('ray_job_id') or '-'}  code {str(code.get('commit') or '-')[:12]}"
                   f"{' (dirty)' if code.get('dirty') else ''}")
        for data in info.get("data", []):
            typer.echo(f"{pad}  data {data['uri']}  rows {data.get('rows', '-')}  sha256 {data['sha256'][:12]}…")


@app.command("events")
@friendly_errors
@cluster_side(upload=True)
def events(name: Optional[str] = typer.Argument(None, help="Model name; all models when omitted."),
           kind: List[str] = typer.Option([], "--kind", help="Only these kinds (repeatable)."),
           since_hours: Optional[float] = typer.Option(None, "--since-hours", help="Only the last N hours."),
           limit: int = typer.Option(100, help="At most this many (the newest)."),
           config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The append-only event history, oldest first."""
    since = time.time() - since_hours * 3600 if since_hours is not None else None
    found = open_registry(config, set_).events(name, kind or None, since=since, limit=limit)
    if as_json:
        return emit_json([asdict(e) for e in found])
    for event in found:
        version = f"v{event.version}" if event.version is not None else "-"
        typer.echo(f"{event.id:>6}  {when(event.time)}  {event.model:<16} {version:<5} {event.kind:<20} "
                   f"{event.actor:<12} {json.dumps(event.payload, sort_keys=True, default=str)[:100]}")
