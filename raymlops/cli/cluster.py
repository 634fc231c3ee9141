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


@friendly_errors
def down() -> None:
    """Stop the cluster that `raymlops up` started (other Ray clusters are left alone)."""
    from raymlops.local_head import down as stop

    typer.echo(stop())


@friendly_errors
def env_command(
    admin_token: bool = typer.Option(False, "--admin-token", help="Print only the admin bearer token (for "
                                     "`Authorization: Bearer` on /admin endpoints), creating it if missing."),
) -> None:
    """Print shell exports that let the plain Ray CLI reach the cluster: eval "$(raymlops env)"."""
    from raymlops import auth
    from raymlops.cluster import resolve_addresses

    if admin_token:
        typer.echo(auth.ensure_admin_token())
        return

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
