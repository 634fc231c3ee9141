"""`raymlops deploy`, `raymlops traffic set` and `raymlops apikey create`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, friendly_errors, load

traffic_app = typer.Typer(help="Change a deployed model's traffic split live.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for inference endpoints (`access.require_api_key`).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the serving commands to ``app``."""
    app.command()(deploy)
    app.command()(undeploy)
    app.add_typer(traffic_app, name="traffic")
    app.add_typer(apikey_app, name="apikey")


@friendly_errors
def deploy(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Serve the model's champion (and candidate as canary) on Ray Serve; wait until RUNNING."""
    from raymlops.serve.deploy import deploy as run_deploy
    from raymlops.serve.endpoints import direct_endpoints

    deployed = run_deploy(load("serve", config, set_))
    user = deployed.user_config
    canary = f", canary v{user['canary_version']} at {user['canary_weight']:.0%}" if user.get("canary_version") else ""
    typer.echo(f"{deployed.app_name}: stable v{user['stable_version']}{canary}")
    typer.echo(f"predict: POST {deployed.url}/v1/models/{deployed.model}/predict   docs: {deployed.url}/docs")
    direct = direct_endpoints(deployed.endpoints, deployed.url)
    if direct:
        typer.echo("direct:  " + "  ".join(direct) + "   (each replica's own port: Serve's direct ingress)")
    typer.echo("admin:   PUT  .../admin/models/NAME/traffic with `Authorization: Bearer $(raymlops env --admin-token)`")


@friendly_errors
def undeploy(name: str = typer.Argument(..., help="Serve application to remove (other applications stay).")) -> None:
    """Remove a deployed model's Serve application."""
    from raymlops.serve.deploy import undeploy as run_undeploy

    typer.echo(f"{name}: removed" if run_undeploy(name) else f"{name}: not deployed")


@traffic_app.command("set")
@friendly_errors
def traffic_set(
    name: str = typer.Argument(..., help="Serve application (the model name unless app_name was set)."),
    canary_weight: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share answered by the canary."),
    canary_version: Optional[int] = typer.Option(None, help="Change the canary version."),
    shadow_version: Optional[int] = typer.Option(None, help="Version that receives shadow traffic."),
    shadow_share: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share of requests shadowed."),
) -> None:
    """Change weights on every replica at once, without restarting any."""
    from raymlops.serve.deploy import set_traffic

    changes = {key: value for key, value in {
        "canary_weight": canary_weight, "canary_version": canary_version,
        "shadow_version": shadow_version, "shadow_share": shadow_share}.items() if value is not None}
    if not changes:
        typer.echo("error: nothing to change; pass --canary-weight, --canary-version, --shadow-version or --shadow-share",
                   err=True)
        raise typer.Exit(2)
    deployed = set_traffic(name, changes)
    typer.echo(f"{name}: " + ", ".join(f"{k}={v}" for k, v in deployed.user_config.items() if v is not None))


@apikey_app.command("create")
def apikey_create() -> None:
    """Print a new random API key and the digest to list under `access.api_key_sha256` in serve.yaml.

    Give the key to the caller; keep only the digest in config (or pass keys at deploy time in
    `$RAYMLOPS_API_KEYS`, comma-separated).
    """
    from raymlops.serve.access import digest, new_api_key

    key = new_api_key()
    typer.echo(f"key:    {key}")
    typer.echo(f"digest: {digest(key)}")
    typer.echo("add to serve.yaml:  access: {require_api_key: true, api_key_sha256: [<digest>]}  then `raymlops deploy`")
