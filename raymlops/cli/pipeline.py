"""`raymlops pipeline run FILE`: the whole path of a model for a CI job, with one exit code and a
JSON summary (see :mod:`raymlops.pipeline.outcome` for the codes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import SET_OPTION, friendly_errors

app = typer.Typer(help="CI/CD pipelines: data → train/tune → gate → deploy → rollout, one exit code.",
                  no_args_is_help=True)
UNTIL = ("data", "gate", "deploy")


def stage_line(text: str) -> str:
    """A progress line: bold on a terminal, plain otherwise (CI logs)."""
    return f"\033[1m{text}\033[0m" if text.startswith("==> ") and sys.stdout.isatty() else text


@app.command("run")
@friendly_errors
def run(file: Path = typer.Argument(..., help="The pipeline file (model: PipelineConfig; see docs/CONFIG.md)."),
        until: Optional[str] = typer.Option(None, help="Stop after this stage: data, gate (e.g. on a pull request: "
                                            "train and gate, no deploy) or deploy."),
        force: bool = typer.Option(False, "--force", help="Redo every stage, even those whose result exists."),
        summary: Optional[Path] = typer.Option(None, help="Where to write the JSON summary (default: the file's "
                                               "`summary`, relative to here)."),
        set_: List[str] = SET_OPTION) -> None:
    """Run the pipeline on the cluster; progress lines as it goes, then the exit code says how it
    ended: 0 promoted (or the last stage asked for succeeded), 1 error, 2 invalid pipeline or
    config, 3 the offline gate refused the version, 4 the rollout rolled back, 5 the rollout is
    held or did not end in time."""
    from raymlops.cli.remote import SUMMARY_MARK, Demux, on_cluster, remembered_invocation, run_on_cluster
    from raymlops.config import PipelineConfig, load_config

    if until is not None and until not in UNTIL:
        raise typer.BadParameter(f"{until!r}: use one of {', '.join(UNTIL)}", param_hint="--until")
    cfg = load_config(file, PipelineConfig, set_)  # a typo fails here, before anything is submitted
    invocation = remembered_invocation()
    if on_cluster() or invocation is None:
        from raymlops.pipeline.runner import PipelineRun

        result = PipelineRun(cfg, until, force, say=lambda text: typer.echo(stage_line(text))).run()
        text = json.dumps(result, default=str)
        if on_cluster():
            typer.echo(SUMMARY_MARK + text)  # the client keeps it
        else:
            _write(summary or Path(cfg.summary), text)
        raise typer.Exit(result["exit_code"])
    from raymlops.pipeline.runner import plan_pipeline

    plan = plan_pipeline(cfg)  # every stage's config checked here too, before a job starts
    demux = Demux()
    code = run_on_cluster(invocation, upload=True, code=plan.train_config.code, demux=demux)
    if demux.summary:
        _write(summary or Path(cfg.summary), demux.summary)
    raise typer.Exit(code)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json.loads(text), indent=2) + "\n")
    typer.echo(f"summary: {path}", err=True)
