"""`raymlops config validate`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import SET_OPTION
from raymlops.errors import RaymlopsError

app = typer.Typer(help="Validate and document configuration files.", no_args_is_help=True)



@app.command("validate")
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
