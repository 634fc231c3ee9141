"""The ``raymlops`` command line: thin commands over the library.

Every command runs from any directory, against the local cluster or a remote one (``--profile``,
or ``RAY_ADDRESS``, ``RAYMLOPS_SERVE_URL`` and the tokens); commands that need the registry run on
the cluster (:mod:`raymlops.cli.remote`). Every command accepts ``--config FILE`` and dotted
``--set key=value`` overrides where it reads a config, and turns a raymlops error into one line
on stderr with exit code 2 (never a stack trace).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from raymlops.cli import cluster, config, data, jobs, monitoring, pipeline, project, registry, rollouts, serving
from raymlops.cli.options import friendly_errors
from raymlops.errors import RaymlopsError

app = typer.Typer(help="raymlops: train, register, serve, monitor and roll out models on Ray.", no_args_is_help=True)
cluster.register(app)
jobs.register(app)
serving.register(app)
monitoring.register(app)
rollouts.register(app)
app.add_typer(config.app, name="config")
app.add_typer(data.app, name="data")
app.add_typer(registry.app, name="registry")
app.add_typer(pipeline.app, name="pipeline")
app.command("init")(project.init)


@app.callback()
def global_options(
    profile: Optional[str] = typer.Option(
        None, "--profile", envvar="RAYMLOPS_PROFILE",
        help="Cluster profile from ~/.raymlops/profiles.yaml (addresses and tokens of a remote cluster)."),
) -> None:
    """raymlops: train, register, serve, monitor and roll out models on Ray."""
    if profile:
        from raymlops.profiles import apply_profile

        try:
            apply_profile(profile)
        except RaymlopsError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None


@app.command(name="demo")
@friendly_errors
def demo_command(keep_running: bool = typer.Option(False, "--keep-running", help="Leave the cluster up afterwards.")) -> None:
    """Run the loop end to end on a local cluster: every step built so far, naming the ones still to come."""
    from raymlops.cli.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


def main() -> None:
    """Console entry point."""
    from raymlops.cli.remote import remember_invocation

    remember_invocation(sys.argv[1:])
    app()


if __name__ == "__main__":
    main()
