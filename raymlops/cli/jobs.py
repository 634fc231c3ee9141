"""`raymlops train | tune`: submit the job entrypoints through the Ray Jobs API and follow them."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from raymlops.cli.options import SET_OPTION, fail, friendly_errors


def register(app: typer.Typer) -> None:
    """Add the job commands to ``app``."""
    app.command()(train)
    app.command()(tune)


def _submit(script: str, config: Path, overrides: List[str], kind: str) -> None:
    from raymlops.config import CONFIG_MODELS, load_config
    from raymlops.jobs import entrypoint_for, submit_and_follow
    from raymlops.jobs.client import code_paths

    if not Path(script).exists():
        fail(f"{script} not found: run this from the project directory (it is uploaded as the job's working dir)")
    cfg = load_config(config, CONFIG_MODELS[kind], overrides)  # a typo fails here, before anything is submitted
    code = code_paths(getattr(cfg, "code", None) or getattr(getattr(cfg, "base", None), "code", []))
    job_id = submit_and_follow(entrypoint_for(script, config, overrides), working_dir=".",
                               echo=lambda text: typer.echo(text, nl=False), py_modules=code)
    typer.echo(f"\njob {job_id} succeeded")


@friendly_errors
def train(config: Path = typer.Option(Path("configs/train.yaml"), "--config", "-c", help="Training config."),
          set_: List[str] = SET_OPTION) -> None:
    """Submit jobs/train.py as a Ray job, stream its log, exit with its status."""
    _submit("jobs/train.py", config, set_, "train")


@friendly_errors
def tune(config: Path = typer.Option(Path("configs/tune.yaml"), "--config", "-c", help="Tuning config."),
         set_: List[str] = SET_OPTION) -> None:
    """Submit jobs/tune.py as a Ray job, stream its log, exit with its status."""
    _submit("jobs/tune.py", config, set_, "tune")
