"""The ``raymlops`` command line: thin commands over the library.

Every command accepts ``--config FILE`` and dotted ``--set key=value`` overrides where it
reads a config, honours ``RAY_ADDRESS``, and turns a raymlops error into one line on
stderr with exit code 2 (never a stack trace).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Callable, List, Optional, TypeVar

import typer

from raymlops.errors import RaymlopsError

app = typer.Typer(help="raymlops: train, register, serve, monitor and roll out models on Ray.", no_args_is_help=True)
config_app = typer.Typer(help="Validate and document configuration files.", no_args_is_help=True)
data_app = typer.Typer(help="Prepare data sets as parquet splits with a schema.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(data_app, name="data")

F = TypeVar("F", bound=Callable[..., object])

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config file (defaults to configs/<kind>.yaml when present).")
SET_OPTION = typer.Option([], "--set", "-s", help="Override a config value: KEY.PATH=VALUE (repeatable).")


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Turn raymlops errors into one clear line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RaymlopsError as exc:
            fail(str(exc).replace("\n", "\n  "))
        except KeyboardInterrupt:
            fail("interrupted", code=130)

    return wrapper  # type: ignore[return-value]


def load(kind: str, path: Optional[Path], overrides: List[str]):
    """Load the ``kind`` config from ``path`` (or ``configs/<kind>.yaml`` when present) with overrides."""
    from raymlops.config import CONFIG_MODELS, load_config

    if path is None:
        default = Path("configs") / f"{kind}.yaml"
        path = default if default.exists() else None
    return load_config(path, CONFIG_MODELS[kind], overrides)


# --------------------------------------------------------------------------- cluster


@app.command()
@friendly_errors
def up(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Start the local Ray cluster (127.0.0.1, token auth on, Serve on its port)."""
    from raymlops.local_head import up as start

    result = start(load("local", config, set_))
    typer.echo(result.message)
    _print_addresses(result.addresses)
    typer.echo('\nPoint the plain Ray CLI at it:  eval "$(raymlops env)"')


@app.command()
@friendly_errors
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show nodes, CPUs/GPUs, URLs, Serve applications and running jobs."""
    from raymlops.cluster import status as read_status

    info = read_status()
    if as_json:
        payload = {
            "addresses": info.addresses.__dict__, "nodes": len(info.nodes), "cpus": info.cpus, "gpus": info.gpus,
            "serve_applications": info.serve_applications, "running_jobs": info.running_jobs,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"nodes: {len(info.nodes)}   CPUs: {info.cpus:g}   GPUs: {info.gpus:g}")
    for node in info.nodes:
        role = "head" if node.get("is_head_node") else "worker"
        typer.echo(f"  {node.get('node_ip')}  {role}  {node.get('node_id', '')[:12]}")
    _print_addresses(info.addresses)
    apps = ", ".join(f"{name} ({state})" for name, state in info.serve_applications.items()) or "none"
    typer.echo(f"Serve applications: {apps}")
    typer.echo(f"running jobs: {len(info.running_jobs)}")
    for job in info.running_jobs:
        typer.echo(f"  {job['id']}  {job['status']}  {job['entrypoint'][:80]}")


@app.command()
@friendly_errors
def down() -> None:
    """Stop the cluster that `raymlops up` started (other Ray clusters are left alone)."""
    from raymlops.local_head import down as stop

    typer.echo(stop())


@app.command("env")
@friendly_errors
def env_command() -> None:
    """Print shell exports that let the plain Ray CLI reach the cluster: eval "$(raymlops env)"."""
    from raymlops import auth
    from raymlops.cluster import resolve_addresses

    addresses = resolve_addresses()
    typer.echo(f"export RAY_ADDRESS={addresses.dashboard}")
    for key, value in auth.client_environment(addresses.loopback).items():
        typer.echo(f"export {key}={value}")
    if not auth.read_ray_token():
        typer.echo(f"# no Ray token yet at {auth.ray_token_path()}: run `raymlops up` first", err=True)


def _print_addresses(addresses) -> None:
    typer.echo(f"dashboard:  {addresses.dashboard}")
    typer.echo(f"serve HTTP: {addresses.serve_http or 'unknown'}")
    typer.echo(f"metrics:    {addresses.metrics or 'unknown (the cluster was not started by raymlops up)'}")


# --------------------------------------------------------------------------- config


@config_app.command("validate")
def config_validate(
    file: Path = typer.Argument(..., help="The YAML file to check."),
    kind: Optional[str] = typer.Option(None, help="Config kind when the file name does not say (e.g. data)."),
    set_: List[str] = SET_OPTION,
) -> None:
    """Check a config file: each problem as FILE: FIELD: MESSAGE; exit 2 on any."""
    from raymlops.config import load_config, model_for_file

    try:
        load_config(file, model_for_file(file, kind), set_)
    except RaymlopsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2)
    typer.echo(f"{file}: ok")


# --------------------------------------------------------------------------- data


@data_app.command("prepare")
@friendly_errors
def data_prepare(
    config: Optional[Path] = CONFIG_OPTION,
    set_: List[str] = SET_OPTION,
    source: Optional[str] = typer.Option(None, help="Your own CSV/parquet file (any pyarrow URI)."),
    label: Optional[str] = typer.Option(None, help="Label column of --source."),
    output: Optional[str] = typer.Option(None, help="Output directory (any pyarrow URI)."),
    seed: Optional[int] = typer.Option(None, help="Split seed."),
) -> None:
    """Write train/valid/test parquet splits and schema.json (built-in: Palmer Penguins)."""
    from raymlops.data import prepare_dataset

    options = {"source": source, "label": label, "output": output, "seed": seed}
    cfg = load("data", config, set_ + [f"prepare.{k}={json.dumps(v)}" for k, v in options.items() if v is not None])
    prepared = prepare_dataset(cfg.prepare)
    _report(prepared)


@data_app.command("synth")
@friendly_errors
def data_synth(
    config: Optional[Path] = CONFIG_OPTION,
    set_: List[str] = SET_OPTION,
    rows: Optional[int] = typer.Option(None, help="Number of rows."),
    numeric_features: Optional[int] = typer.Option(None, help="Numeric features."),
    categorical_features: Optional[int] = typer.Option(None, help="Categorical features."),
    shift_features: Optional[str] = typer.Option(None, help="Comma-separated numeric feature indices to shift."),
    magnitude: Optional[float] = typer.Option(None, help="Covariate shift in standard deviations."),
    label_prior: Optional[float] = typer.Option(None, help="Label shift: positive share after resampling."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    output: Optional[str] = typer.Option(None, help="Output directory (any pyarrow URI)."),
) -> None:
    """Write a synthetic N x D classification set with an optional, controlled shift."""
    from raymlops.data import synthesize

    shift = None if shift_features is None else [int(part) for part in shift_features.split(",") if part.strip()]
    options = {
        "rows": rows, "numeric_features": numeric_features, "categorical_features": categorical_features,
        "seed": seed, "output": output, "shift.features": shift, "shift.magnitude": magnitude,
        "shift.label_prior": label_prior,
    }
    cfg = load("data", config, set_ + [f"synth.{k}={json.dumps(v)}" for k, v in options.items() if v is not None])
    _report(synthesize(cfg.synth))


def _report(prepared) -> None:
    counts = ", ".join(f"{split} {count}" for split, count in prepared.rows.items())
    typer.echo(f"wrote {prepared.directory}: {counts} rows; {len(prepared.schema.features)} features, "
               f"label {prepared.schema.label!r} with classes {', '.join(prepared.schema.classes)}")


# --------------------------------------------------------------------------- demo


@app.command()
@friendly_errors
def demo(keep_running: bool = typer.Option(False, "--keep-running", help="Leave the cluster up afterwards.")) -> None:
    """Run the whole loop end to end on a local cluster."""
    from raymlops.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
