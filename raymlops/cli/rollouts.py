"""`raymlops rollout start | status | pause | resume | promote | abort | rollback NAME`: the model
server's admin endpoints, called with the admin token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, fail, friendly_errors

rollout_app = typer.Typer(help="Progressive rollouts of a model's candidate (metric-gated promote / rollback).",
                          no_args_is_help=True)
PREFIX_OPTION = typer.Option(None, "--route-prefix", help="The application's route prefix; unset = the route of "
                             "the application that serves the model (asked from the cluster).")


def register(app: typer.Typer) -> None:
    """Add the rollout commands to ``app``."""
    app.add_typer(rollout_app, name="rollout")


def _call(name: str, action: str, prefix: Optional[str], body: dict | None = None) -> dict:
    import httpx

    from raymlops.cluster import client_admin_token
    from raymlops.serve.deploy import model_base_url

    url = f"{model_base_url(name, route_prefix=prefix)}/admin/models/{name}/rollout"
    url = url if action == "status" else f"{url}/{action}"
    headers = {"authorization": f"Bearer {client_admin_token()}"}
    try:
        response = (httpx.get(url, headers=headers, timeout=90) if action == "status"
                    else httpx.post(url, headers=headers, json=body, timeout=90))
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url} ({exc}); is the model deployed? (`raymlops status`)")
    if response.status_code != 200:
        try:
            error = response.json()["error"]
            fail(f"{error['field']}: {error['problem']}")
        except (ValueError, KeyError):
            fail(f"{url}: {response.status_code} {response.text[:300]}")
    return response.json()


def _show(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    state, last = result.get("state"), result.get("last_decision") or {}
    if not state:
        typer.echo(f"{result['model']}: no rollout")
        return
    steps = (result.get("config") or {}).get("steps", [])
    step = f"step {state['step'] + 1}/{len(steps)}" if steps else f"step {state['step'] + 1}"
    typer.echo(f"{result['model']}: v{state['canary_version']} vs v{state['stable_version']} — {state['phase']}, {step}"
               + (f" ({state['reason']})" if state.get("reason") else ""))
    if last:
        typer.echo(f"  last decision: {last.get('action')} — {'; '.join(last.get('reasons', []))}")
        numbers = last.get("numbers") or {}
        for arm in ("stable", "canary"):
            if arm in numbers:
                n = numbers[arm]
                quality = f"mean abs error {n['error']:.4g}" if n.get("error") is not None else \
                    f"accuracy {n.get('accuracy')}"
                typer.echo(f"    {arm}: {n['requests']} requests, error rate {n['error_rate']:.4f}, p99 "
                           f"{n['latency_p99_ms']} ms, {quality} ({n['labelled']} labels)")


@rollout_app.command("start")
@friendly_errors
def start(name: str = typer.Argument(..., help="Served model name."),
          config: Optional[Path] = CONFIG_OPTION,
          set_: List[str] = SET_OPTION, prefix: Optional[str] = PREFIX_OPTION,
          as_json: bool = typer.Option(False, "--json")) -> None:
    """Roll the `candidate` out against the `champion`, step by step, gated on measured evidence."""
    from raymlops.config import RolloutConfig, find_config, load_config

    cfg = load_config(find_config(config, "rollout"), RolloutConfig, [*set_, f"model_name={name}"])
    _show(_call(name, "start", prefix, cfg.model_dump(mode="json", exclude={"app_name"})), as_json)


def _simple(action: str, doc: str):
    @friendly_errors
    def command(name: str = typer.Argument(..., help="Served model name."), prefix: Optional[str] = PREFIX_OPTION,
                as_json: bool = typer.Option(False, "--json")) -> None:
        _show(_call(name, action, prefix), as_json)

    command.__doc__ = doc
    rollout_app.command(action)(command)


_simple("status", "The rollout's phase, step, and its last decision with the numbers behind it.")
_simple("pause", "Stop advancing (weights stay); gates are not judged while paused.")
_simple("resume", "Continue a paused or held rollout; the current step starts over.")
_simple("promote", "Promote the canary now: `champion` moves to it (compare-and-set).")
_simple("abort", "Stop the rollout: canary weight 0, `candidate` cleared.")
_simple("rollback", "Roll back: during a rollout like abort; after promotion (within the rollback window) the "
        "old champion is restored instantly.")
