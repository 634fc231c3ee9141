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
        raise typer.Exit(2) from None
    typer.echo(f"{file}: ok")


@app.command("reference")
def config_reference(output: Optional[Path] = typer.Option(None, help="Write to this file instead of stdout.")) -> None:
    """Print the configuration reference (markdown) generated from the config models."""
    from raymlops.config_reference import render_reference

    text = render_reference()
    if output is None:
        typer.echo(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
        typer.echo(f"wrote {output}")
