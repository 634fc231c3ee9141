"""Hyperparameter search with Ray Tune (``configs/tune.yaml``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel
from raymlops.config.train import TrainConfig


class SearchDimension(StrictModel):
    """One hyperparameter's distribution."""

    type: Literal["uniform", "loguniform", "choice", "randint"] = Field(description="Distribution.")
    low: float | None = Field(None, description="Lower bound (uniform, loguniform, randint).")
    high: float | None = Field(None, description="Upper bound (exclusive for randint).")
    values: list[Any] | None = Field(None, description="Options (choice).")

    @model_validator(mode="after")
    def _complete(self) -> "SearchDimension":
        if self.type == "choice":
            if not self.values:
                raise ValueError("choice needs a non-empty `values` list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"{self.type} needs `low` < `high`")
        elif self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs `low` > 0")
        return self


class TuneSettings(StrictModel):
    """The search itself."""

    metric: str | None = Field(None, description="Metric reported each epoch that trials are ranked by; unset = "
                               "`val_accuracy` for a classification, `val_loss` for a regression.")
    mode: Literal["max", "min"] | None = Field(None, description="Whether higher or lower `metric` is better; unset = "
                                               "`min` for losses and errors, `max` otherwise.")
    num_samples: int = Field(4, ge=1, description="Trials.")
    max_concurrent_trials: int = Field(1, ge=1, description="Trials running at once.")
    grace_period: int = Field(2, ge=1, description="ASHA: epochs every trial gets before it may be stopped.")
    reduction_factor: float = Field(2.0, gt=1, description="ASHA reduction factor.")
    seed: int = Field(0, description="Seed of the search algorithm.")
    cpus_per_trial_driver: float = Field(0.1, gt=0, description="CPU of each trial's driver (its workers come on top).")


class TuneConfig(StrictModel):
    """``configs/tune.yaml``: Ray Tune (ASHA) over the training loop; the best trial is registered."""

    base: TrainConfig = Field(default_factory=TrainConfig, description="The training run each trial varies.")
    search_space: dict[str, SearchDimension] = Field(
        default_factory=dict, description="Dotted training-config keys (e.g. `train.lr`) → distributions.",
    )
    tune: TuneSettings = Field(default_factory=TuneSettings, description="Search settings.")
