"""A CI/CD pipeline file (``raymlops pipeline run FILE``): data, train or tune, the offline gate,
deploy, the gated rollout."""

from __future__ import annotations

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel
from raymlops.config.data import PrepareConfig


class PipelineData(StrictModel):
    """Where the data comes from: prepared by the pipeline, or already there."""

    prepare: PrepareConfig | None = Field(None, description="Prepare the splits first (`raymlops data prepare` "
                                          "fields); the training config's `data.path` is set to its output.")
    path: str | None = Field(None, description="Use the prepared splits at this path or URI (sets the training "
                             "config's `data.path`); unset with no `prepare` = the training config's own.")

    @model_validator(mode="after")
    def _one_source(self) -> "PipelineData":
        if self.prepare is not None and self.path is not None:
            raise ValueError("give either data.prepare or data.path, not both")
        return self


class StageConfig(StrictModel):
    """A stage that runs with a config file of its kind and overrides."""

    config: str | None = Field(None, description="Its config file; unset = `configs/<kind>.yaml` when it is there, "
                               "else the packaged default.")
    set: list[str] = Field(default_factory=list, description="`KEY.PATH=VALUE` overrides, as with `--set`.")


class TrainStage(StageConfig):
    """Training (``train.yaml``) or tuning (``tune.yaml``) of the candidate."""

    tune: bool = Field(False, description="Run Ray Tune (a `tune.yaml` config) instead of one training run.")


class DeployStage(StageConfig):
    """Serving the model (``serve.yaml``): deployed when not running, updated when its settings changed."""

    enabled: bool = Field(True, description="Deploy (or update) the model's application.")


class RolloutStage(StageConfig):
    """The gated rollout of the new candidate (``rollout.yaml``)."""

    enabled: bool = Field(True, description="Roll the candidate out (needs `deploy`).")
    timeout_s: float = Field(3600.0, gt=0, description="Longest wait for the rollout to end; past it the pipeline "
                             "ends as `held` (the rollout goes on).")
    poll_s: float = Field(2.0, gt=0, description="How often the rollout's state is read.")


class PipelineConfig(StrictModel):
    """``pipeline.yaml``: what `raymlops pipeline run` does, stage by stage."""

    name: str = Field("pipeline", description="Name of the pipeline (in the summary).")
    model_name: str = Field("penguins", description="Registry name of the model; set in every stage's config.")
    data: PipelineData = Field(default_factory=PipelineData, description="Data stage.")
    train: TrainStage = Field(default_factory=TrainStage, description="Train (or tune) stage, with the offline gate.")
    deploy: DeployStage = Field(default_factory=DeployStage, description="Deploy stage.")
    rollout: RolloutStage = Field(default_factory=RolloutStage, description="Rollout stage.")
    summary: str = Field("pipeline-summary.json", description="Where the JSON summary is written (relative to "
                         "where the command runs; `--summary` overrides).")

    @model_validator(mode="after")
    def _rollout_needs_deploy(self) -> "PipelineConfig":
        if self.rollout.enabled and not self.deploy.enabled:
            raise ValueError("rollout.enabled needs deploy.enabled (a rollout splits the deployed model's traffic)")
        return self
