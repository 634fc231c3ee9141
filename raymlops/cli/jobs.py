"""`raymlops train | tune`: submit the packaged job entrypoints through the Ray Jobs API and follow them."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, fail, friendly_errors


def register(app: typer.Typer) -> None:
    """Add the job commands to ``app``."""
    app.command()(train)
    app.command()(tune)
    app.command()(score)


def _submit(module: str, config: Optional[Path], overrides: List[str], kind: str, extra: Sequence[str] = ()) -> None:
    from raymlops.config import CONFIG_MODELS, find_config, load_config
    from raymlops.submission import entrypoint_for, submit_and_follow
    from raymlops.submission.client import code_paths, project_working_dir

    cfg = load_config(find_config(config, kind), CONFIG_MODELS[kind], overrides)  # typos fail before submitting
    code = code_paths(getattr(cfg, "code", None) or getattr(getattr(cfg, "base", None), "code", []))
    working_dir = project_working_dir(config)
    job_id = submit_and_follow(entrypoint_for(module, config if working_dir else None, overrides) + list(extra),
                               working_dir=working_dir, echo=lambda text: typer.echo(text, nl=False), py_modules=code)
    typer.echo(f"\njob {job_id} succeeded")


@friendly_errors
def train(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION,
          reproduce: Optional[str] = typer.Option(
              None, "--reproduce", metavar="NAME:VERSION",
              help="Re-run a registered version from its lineage: its recorded config and seed, on data whose "
              "content hashes are checked first; code and package differences are listed, the result is registered "
              "as a new version (parent: the original; aliases untouched) with its metric differences.")) -> None:
    """Submit the training job (python -m raymlops.jobs.train) through the Ray Jobs API, stream its log,
    exit with its status. Run it in your project: the directory is uploaded as the job's working dir."""
    if reproduce is not None:
        from raymlops.train.reproduce import PLACE_SETTINGS

        recipe = [o for o in set_ if o.split("=", 1)[0].split(".", 1)[0] not in PLACE_SETTINGS]
        if recipe:
            fail(f"--set {recipe[0]}: --reproduce re-runs the recorded config as it was; only "
                 f"{' and '.join(PLACE_SETTINGS)} settings may change")
        if ":" not in reproduce:
            fail(f"--reproduce {reproduce}: give NAME:VERSION, e.g. penguins:3")
    _submit("raymlops.jobs.train", config, set_, "train", ["--reproduce", reproduce] if reproduce else [])


@friendly_errors
def tune(config: Optional[Path] = CONFIG_OPTION, set_: List[str] = SET_OPTION) -> None:
    """Submit the tuning job (python -m raymlops.jobs.tune) through the Ray Jobs API, stream its log,
    exit with its status."""
    _submit("raymlops.jobs.tune", config, set_, "tune")


@friendly_errors
def score(model: str = typer.Argument(..., help="NAME (its champion), NAME@ALIAS or NAME:VERSION."),
          input_uri: str = typer.Option(..., "--input", "-i", help="Parquet/CSV file or directory, as the cluster "
                                        "reads it (s3://..., or a path on the cluster)."),
          output_uri: str = typer.Option(..., "--output", "-o", help="Output directory, as the cluster writes it."),
          output_format: Optional[str] = typer.Option(None, "--format", help="parquet (default) or csv."),
          max_actors: int = typer.Option(2, min=1, help="Scoring actors at most (the pool autoscales from 1)."),
          num_cpus: float = typer.Option(0.5, min=0.0, help="CPUs per actor."),
          batch_size: int = typer.Option(1024, min=1, help="Rows per model call."),
          as_json: bool = typer.Option(False, "--json", help="Print only the outcome as JSON.")) -> None:
    """Batch-score data with a registered version as a Ray job (Ray Data, an actor pool, GPUs when
    present): every output row carries the version that scored it; says whether the batch drifted
    from the version's reference."""
    import json

    from raymlops.errors import JobError
    from raymlops.serve.batch import SUMMARY_MARK
    from raymlops.submission import submit_and_follow
    from raymlops.submission.client import project_working_dir

    if output_format not in (None, "parquet", "csv"):
        fail(f"--format {output_format!r}: use parquet or csv")
    entrypoint = ["python", "-m", "raymlops.jobs.score", model, "--input", input_uri, "--output", output_uri,
                  "--max-actors", str(max_actors), "--num-cpus", str(num_cpus), "--batch-size", str(batch_size)]
    if output_format:
        entrypoint += ["--output-format", output_format]
    lines: list[str] = []

    def echo(text: str) -> None:
        lines.append(text)
        if not as_json:
            typer.echo(text, nl=False)

    try:
        job_id = submit_and_follow(entrypoint, working_dir=project_working_dir(), echo=echo)
    except JobError:
        if as_json:
            typer.echo("".join(lines), err=True)
        raise
    summary = next((line.split(SUMMARY_MARK, 1)[1] for line in "".join(lines).splitlines()
                    if SUMMARY_MARK in line), None)
    if as_json and summary:
        typer.echo(json.dumps(json.loads(summary), indent=2))
    elif not as_json:
        typer.echo(f"\njob {job_id} succeeded")
