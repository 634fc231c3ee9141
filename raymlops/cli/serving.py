"""`raymlops deploy`, `raymlops traffic set` and `raymlops apikey create`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, friendly_errors, load
from raymlops.cli.remote import cluster_side, on_cluster

traffic_app = typer.Typer(help="Change a deployed model's traffic split live.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for inference endpoints (`access.require_api_key`).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the serving commands to ``app``."""
    app.command()(deploy)
    app.command()(undeploy)
    app.add_typer(traffic_app, name="traffic")
    app.add_typer(apikey_app, name="apikey")


def _print_urls(argv: list[str]) -> None:
    """After a deploy on the cluster: the model's URLs as this machine reaches them."""
    from raymlops.config import ServeConfig, find_config, load_config
    from raymlops.serve.deploy import model_base_url

    config, overrides = _config_args(argv)
    cfg = load_config(find_config(config, "serve"), ServeConfig, overrides)
    url = model_base_url(cfg.model_name)
    typer.echo(f"predict: POST {url}/v1/models/{cfg.model_name}/predict   docs: {url}/docs")
    typer.echo(f"admin:   PUT  {url}/admin/models/{cfg.model_name}/traffic with `Authorization: Bearer <admin token>`"
               " (`raymlops env --admin-token` on the cluster)")


def _config_args(argv: list[str]) -> tuple[Optional[str], list[str]]:
    """``--config`` and the ``--set`` values of a command line."""
    config, overrides = None, []
    for flag, value in zip(argv, argv[1:]):
        if flag in ("--config", "-c"):
            config = value
        elif flag in ("--set", "-s"):
            overrides.append(value)
    return config, overrides


@friendly_errors
@cluster_side(upload=True, after=_print_urls)
def deploy(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Serve the model's champion (and candidate as canary) on Ray Serve at its route prefix
    (`/<model name>` unless `route_prefix` is set); wait until RUNNING. Runs on the cluster."""
    from raymlops.serve.deploy import deploy as run_deploy
    from raymlops.serve.endpoints import direct_endpoints

    cfg = load("serve", config, set_)
    deployed = run_deploy(cfg)
    user = deployed.user_config
    canary = f", canary v{user['canary_version']} at {user['canary_weight']:.0%}" if user.get("canary_version") else ""
    typer.echo(f"{deployed.app_name}: stable v{user['stable_version']}{canary}; route {cfg.prefix}")
    if not on_cluster():
        typer.echo(f"predict: POST {deployed.url}/v1/models/{deployed.model}/predict   docs: {deployed.url}/docs")
    direct = direct_endpoints(deployed.endpoints, deployed.url)
    if direct:
        typer.echo("direct:  " + "  ".join(direct) + "   (each replica's own port: Serve's direct ingress)")


@friendly_errors
@cluster_side(upload=False)
def undeploy(name: str = typer.Argument(..., help="Model (or Serve application) to remove; other models stay.")) -> None:
    """Remove a model's Serve application, its drift monitor and its rollout controller (their
    history in the registry and the monitor's snapshots are kept). Runs on the cluster."""
    from raymlops.serve.deploy import undeploy as run_undeploy

    done = run_undeploy(name)
    stopped = ", ".join(done.stopped_actors) or "no actors running"
    state = "application removed" if done.removed_app else "no application was deployed"
    typer.echo(f"{name}: {state}; stopped {stopped}")


@traffic_app.command("set")
@friendly_errors
def traffic_set(
    name: str = typer.Argument(..., help="Serve application (the model name unless app_name was set)."),
    canary_weight: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share answered by the canary."),
    canary_version: Optional[int] = typer.Option(None, help="Change the canary version."),
    shadow_version: Optional[int] = typer.Option(None, help="Version that receives shadow traffic."),
    shadow_share: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share of requests shadowed."),
    if_version: Optional[int] = typer.Option(None, "--if-version", help="Apply only if the traffic is still at "
                                             "this traffic_version (as `raymlops describe` shows it); else refused."),
) -> None:
    """Change weights on every replica at once, without restarting any. Changes from every source
    (this command, the admin endpoint, the rollout controller) are written one at a time."""
    from raymlops.serve.writer import set_traffic

    changes = {key: value for key, value in {
        "canary_weight": canary_weight, "canary_version": canary_version,
        "shadow_version": shadow_version, "shadow_share": shadow_share}.items() if value is not None}
    if not changes:
        typer.echo("error: nothing to change; pass --canary-weight, --canary-version, --shadow-version or --shadow-share",
                   err=True)
        raise typer.Exit(2)
    deployed = set_traffic(name, changes, expected_version=if_version)
    typer.echo(f"{name}: " + ", ".join(f"{k}={v}" for k, v in deployed.user_config.items() if v is not None))


SCOPE_OPTION = typer.Option("inference", "--scope", help="`inference`: predict (and, with require_api_key, every "
                            "model endpoint); `feedback`: post feedback labels, which steer rollouts and retraining.")


@apikey_app.command("create")
def apikey_create(scope: str = SCOPE_OPTION) -> None:
    """Print a new random API key and the digest to list in serve.yaml: under
    `access.api_key_sha256` (scope `inference`) or `access.feedback_key_sha256` (scope `feedback`).

    Give the key to the caller; keep only the digest in config (or pass keys at deploy time in
    `$RAYMLOPS_API_KEYS` / `$RAYMLOPS_FEEDBACK_KEYS`, comma-separated).
    """
    from raymlops.serve.access import digest, new_api_key

    if scope not in ("inference", "feedback"):
        typer.echo(f"error: --scope {scope}: use `inference` or `feedback`", err=True)
        raise typer.Exit(2)
    key = new_api_key()
    typer.echo(f"key:    {key}")
    typer.echo(f"digest: {digest(key)}")
    if scope == "feedback":
        typer.echo("add to serve.yaml:  access: {feedback_key_sha256: [<digest>]}  then `raymlops deploy`")
    else:
        typer.echo("add to serve.yaml:  access: {require_api_key: true, api_key_sha256: [<digest>]}  then "
                   "`raymlops deploy`")
