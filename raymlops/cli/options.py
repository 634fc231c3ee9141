"""What every command shares: config loading with --set, and one-line errors with exit code 2."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, List, Optional, TypeVar

import typer

from raymlops.errors import RaymlopsError

F = TypeVar("F", bound=Callable[..., object])

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config file (default: configs/<kind>.yaml when it "
                             "is here, else the one installed with raymlops).")
SET_OPTION = typer.Option([], "--set", "-s", help="Override a config value: KEY.PATH=VALUE (repeatable).")
JSON_OPTION = typer.Option(False, "--json", help="Machine-readable JSON output.")


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
    from raymlops.config import CONFIG_MODELS, find_config, load_config

    return load_config(find_config(path, kind), CONFIG_MODELS[kind], overrides)
