"""`raymlops up | status | down | env`: the managed local cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, JSON_OPTION, SET_OPTION, friendly_errors, load


def register(app: typer.Typer) -> None:
    """Add the cluster commands to ``app``."""
    app.command()(up)
    app.command()(status)
    app.command()(down)
    app.command("env")(env_command)



@friendly_errors
def up(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Start the local Ray cluster (127.0.0.1, token auth on, Serve on its port)."""
    from raymlops.local_head import up as start

    result = start(load("local", config, set_))
    typer.echo(result.message)
    _print_addresses(result.addresses)
    typer.echo('\nPoint the plain Ray CLI at it:  eval "$(raymlops env)"')


@friendly_errors
def status(as_json: bool = JSON_OPTION) -> None:
    """Show nodes, CPUs/GPUs, URLs, Serve applications and running jobs."""
    from raymlops.cluster import status as read_status

    info = read_status()
    if as_json:
        payload = {
            "addresses": info.addresses.__dict__, "nodes": len(info.nodes), "cpus": info.cpus, "gpus": info.gpus,
            "serve_applications": info.serve_applications, "serve_routes": info.serve_routes,
            "running_jobs": info.running_jobs,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"nodes: {len(info.nodes)}   CPUs: {info.cpus:g}   GPUs: {info.gpus:g}")
    for node in info.nodes:
        role = "head" if node.get("is_head_node") else "worker"
        typer.echo(f"  {node.get('node_ip')}  {role}  {node.get('node_id', '')[:12]}")
    _print_addresses(info.addresses)
    if not info.serve_applications:
        typer.echo("Serve applications: none")
    else:
        typer.echo("Serve applications:")
        for name, state in info.serve_applications.items():
            route = info.serve_routes.get(name, "")
            typer.echo(f"  {name} ({state})  {info.addresses.serve_http or ''}{route.rstrip('/')}")
    typer.echo(f"running jobs: {len(info.running_jobs)}")
    for job in info.running_jobs:
        typer.echo(f"  {job['id']}  {job['status']}  {job['entrypoint'][:80]}")


@friendly_errors
def down() -> None:
    """Stop the cluster that `raymlops up` started (other Ray clusters are left alone)."""
    from raymlops.local_head import down as stop

    typer.echo(stop())


@friendly_errors
def env_command(
    admin_token: bool = typer.Option(False, "--admin-token", help="Print only the admin bearer token (for "
                                     "`Authorization: Bearer` on /admin endpoints); on the cluster `raymlops up` "
                                     "started here it is created when missing."),
) -> None:
    """Print shell exports that make every Ray CLI command reach the cluster: eval "$(raymlops env)".

    RAY_ADDRESS is the GCS (what `ray status` and drivers need; the dashboard URL when only that is
    known), RAY_API_SERVER_ADDRESS the dashboard (what `ray job` reads), with token auth on.
    """
    import os
    import shlex

    from raymlops import auth
    from raymlops.cluster import client_admin_token, resolve_addresses

    addresses = resolve_addresses()
    if admin_token:
        typer.echo(client_admin_token(addresses))
        return
    exports = {"RAY_ADDRESS": addresses.gcs or addresses.dashboard, "RAY_API_SERVER_ADDRESS": addresses.dashboard,
               "RAYMLOPS_SERVE_URL": addresses.serve_http or "", **auth.client_environment(addresses.loopback)}
    if os.environ.get(auth.RAY_TOKEN_ENV):
        exports[auth.RAY_TOKEN_ENV] = os.environ[auth.RAY_TOKEN_ENV]
    elif os.environ.get(auth.RAY_TOKEN_PATH_ENV):
        exports[auth.RAY_TOKEN_PATH_ENV] = str(auth.ray_token_path())
    for key, value in exports.items():
        if value:
            typer.echo(f"export {key}={shlex.quote(value)}")
    if not auth.read_ray_token():
        typer.echo(f"# no Ray token yet at {auth.ray_token_path()}: run `raymlops up` first", err=True)


def _print_addresses(addresses) -> None:
    typer.echo(f"dashboard:  {addresses.dashboard}")
    typer.echo(f"serve HTTP: {addresses.serve_http or 'unknown'}")
    typer.echo(f"metrics:    {addresses.metrics or 'unknown (the cluster was not started by raymlops up)'}")
