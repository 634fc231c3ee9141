"""Data preparation and the synthetic drift generator (``configs/data.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel


class SplitFractions(StrictModel):
    """Fractions of the rows that go to each split; they must add up to 1."""

    train: float = Field(0.7, gt=0, lt=1, description="Share of rows in the training split.")
    valid: float = Field(0.15, ge=0, lt=1, description="Share of rows in the validation split.")
    test: float = Field(0.15, gt=0, lt=1, description="Share of rows in the test split.")

    @model_validator(mode="after")
    def _adds_up(self) -> "SplitFractions":
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + valid + test must be 1, got {total:g}")
        return self


class PrepareConfig(StrictModel):
    """How ``raymlops data prepare`` builds the train/valid/test parquet splits."""

    dataset: Literal["penguins", "diabetes", "wine", "breast_cancer", "iris", "digits"] = Field(
        "penguins",
        description="Built-in data set used when no `source` is given, all shipped inside installed packages "
        "(offline): `penguins` (Palmer Penguins, `palmerpenguins`), and scikit-learn's `diabetes` (a "
        "regression), `wine`, `breast_cancer`, `iris` and `digits` (8×8 images as an `image` tensor input of shape [1, 8, 8]).",
    )
    source: str | None = Field(
        None, description="Your own CSV or parquet file (any pyarrow URI) instead of the built-in data set."
    )
    label: str | None = Field(
        None, description="Label column of `source`; the built-in data set knows its own."
    )
    task: Literal["classification", "regression"] | None = Field(
        None, description="Task of `source`: `classification` (the label's values are classes) or `regression` "
        "(a numeric label); unset = classification. The built-in data sets know their own (`digits` can also be "
        "a regression of the digit's value).",
    )
    categorical: list[str] | None = Field(
        None, description="Categorical feature columns of `source`; unset = every string column."
    )
    output: str | None = Field(
        None, description="Directory (any pyarrow URI) the splits and schema go to; unset = "
        "`$RAYMLOPS_HOME/data/<data set name>`. `$RAYMLOPS_HOME` (default ~/.raymlops) and `~` expand.",
    )
    seed: int = Field(0, description="Seed of the stratified split; same seed, same rows.")
    splits: SplitFractions = Field(default_factory=SplitFractions, description="Split fractions.")


class ShiftConfig(StrictModel):
    """A controllable distribution shift applied by ``raymlops data synth``."""

    features: list[int] = Field(
        default_factory=list, description="Indices of the numeric features whose mean is shifted."
    )
    magnitude: float = Field(0.0, description="Covariate shift: mean offset in standard deviations.")
    categorical_features: list[int] = Field(
        default_factory=list, description="Indices of the categorical features whose category mix changes."
    )
    label_prior: float | None = Field(
        None, gt=0, lt=1, description="Label shift: share of the positive class after resampling; unset = none."
    )


class SynthConfig(StrictModel):
    """How ``raymlops data synth`` builds a synthetic tabular classification set."""

    rows: int = Field(10_000, ge=10, description="Number of rows.")
    numeric_features: int = Field(18, ge=1, description="Number of numeric features (`x0`, `x1`, ...).")
    categorical_features: int = Field(2, ge=0, description="Number of categorical features (`c0`, ...).")
    categories: int = Field(4, ge=2, description="Distinct values of each categorical feature.")
    seed: int = Field(0, description="Seed; same seed and settings, same rows.")
    output: str = Field("$RAYMLOPS_HOME/data/synth", description="Directory (any pyarrow URI) the data and schema go to.")
    shift: ShiftConfig = Field(default_factory=ShiftConfig, description="Optional shift of the data.")
    splits: SplitFractions = Field(default_factory=SplitFractions, description="Split fractions.")


class DataConfig(StrictModel):
    """``configs/data.yaml``: data preparation and synthetic data."""

    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="`raymlops data prepare`.")
    synth: SynthConfig = Field(default_factory=SynthConfig, description="`raymlops data synth`.")
