"""`raymlops data prepare | synth`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from raymlops.cli.options import CONFIG_OPTION, SET_OPTION, friendly_errors, load

app = typer.Typer(help="Prepare data sets as parquet splits with a schema.", no_args_is_help=True)



@app.command("prepare")
@friendly_errors
def data_prepare(
    config: Optional[Path] = CONFIG_OPTION,
    set_: List[str] = SET_OPTION,
    dataset: Optional[str] = typer.Option(None, help="Built-in data set: penguins (default), diabetes (regression), "
                                          "wine, breast_cancer, iris, digits."),
    source: Optional[str] = typer.Option(None, help="Your own CSV/parquet file (any pyarrow URI)."),
    label: Optional[str] = typer.Option(None, help="Label column of --source."),
    task: Optional[str] = typer.Option(None, help="Task of --source: classification (default) or regression "
                                       "(also: --dataset digits as a regression of the digit's value)."),
    output: Optional[str] = typer.Option(None, help="Output directory (any pyarrow URI)."),
    seed: Optional[int] = typer.Option(None, help="Split seed."),
) -> None:
    """Write train/valid/test parquet splits and schema.json (default: Palmer Penguins, into
    $RAYMLOPS_HOME/data/<name>)."""
    from raymlops.data import prepare_dataset

    options = {"dataset": dataset, "source": source, "label": label, "task": task, "output": output, "seed": seed}
    cfg = load("data", config, set_ + [f"prepare.{k}={json.dumps(v)}" for k, v in options.items() if v is not None])
    prepared = prepare_dataset(cfg.prepare)
    _report(prepared)


@app.command("synth")
@friendly_errors
def data_synth(
    config: Optional[Path] = CONFIG_OPTION,
    set_: List[str] = SET_OPTION,
    rows: Optional[int] = typer.Option(None, help="Number of rows."),
    numeric_features: Optional[int] = typer.Option(None, help="Numeric features."),
    categorical_features: Optional[int] = typer.Option(None, help="Categorical features."),
    shift_features: Optional[str] = typer.Option(None, help="Comma-separated numeric feature indices to shift."),
    magnitude: Optional[float] = typer.Option(None, help="Covariate shift in standard deviations."),
    label_prior: Optional[float] = typer.Option(None, help="Label shift: positive share after resampling."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    output: Optional[str] = typer.Option(None, help="Output directory (any pyarrow URI)."),
) -> None:
    """Write a synthetic N x D classification set with an optional, controlled shift."""
    from raymlops.data import synthesize

    shift = None if shift_features is None else [int(part) for part in shift_features.split(",") if part.strip()]
    options = {
        "rows": rows, "numeric_features": numeric_features, "categorical_features": categorical_features,
        "seed": seed, "output": output, "shift.features": shift, "shift.magnitude": magnitude,
        "shift.label_prior": label_prior,
    }
    cfg = load("data", config, set_ + [f"synth.{k}={json.dumps(v)}" for k, v in options.items() if v is not None])
    _report(synthesize(cfg.synth))


def _report(prepared) -> None:
    counts = ", ".join(f"{split} {count}" for split, count in prepared.rows.items())
    schema = prepared.schema
    target = f"classes {', '.join(schema.classes)}" if schema.is_classification else "a numeric target (regression)"
    inputs = f"{len(schema.features)} features" if schema.features else \
        ", ".join(f"tensor {t.name} {list(t.shape)}" for t in schema.tensors)
    typer.echo(f"wrote {prepared.directory}: {counts} rows; {inputs}, label {schema.label!r} with {target}")
