"""The ``raymlops`` command line: thin commands over the library.

Every command accepts ``--config FILE`` and dotted ``--set key=value`` overrides where it
reads a config, honours ``RAY_ADDRESS``, and turns a raymlops error into one line on
stderr with exit code 2 (never a stack trace).
"""

from __future__ import annotations

import sys

import typer

from raymlops.cli import cluster, config, data, jobs, monitoring, registry, rollouts, serving
from raymlops.cli.options import friendly_errors

app = typer.Typer(help="raymlops: train, register, serve, monitor and roll out models on Ray.", no_args_is_help=True)
cluster.register(app)
jobs.register(app)
serving.register(app)
monitoring.register(app)
rollouts.register(app)
app.add_typer(config.app, name="config")
app.add_typer(data.app, name="data")
app.add_typer(registry.app, name="registry")



@app.command(name="demo")
@friendly_errors
def demo_command(keep_running: bool = typer.Option(False, "--keep-running", help="Leave the cluster up afterwards.")) -> None:
    """Run the loop end to end on a local cluster: every step built so far, naming the ones still to come."""
    from raymlops.cli.demo import run_demo

    sys.exit(run_demo(keep_running=keep_running))


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
