"""The drift monitor: windows, detectors, prediction log and retraining (``configs/monitor.yaml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from raymlops.config.base import StrictModel


class WindowSettings(StrictModel):
    """How the monitor cuts each version's stream into test windows."""

    size: int = Field(500, ge=10, description="Rows per window; a full window is checked at once.")
    min_samples: int = Field(100, ge=5, description="A partial window is checked after `max_wait_s` only when it "
                             "has at least this many rows.")
    max_wait_s: float = Field(60.0, gt=0, description="Check a partial window after this long.")
    sample_rate: float = Field(1.0, gt=0, le=1, description="Share of ingested rows that enter the windows.")


class MMDSettings(StrictModel):
    """The multivariate test (alibi-detect, PyTorch backend, permutation test) over all watched
    columns together — the features, or the embedding of a model with tensor inputs."""

    enabled: bool = Field(True, description="Run it.")
    method: Literal["mmd", "lsdd"] = Field("mmd", description="alibi-detect's MMDDrift (maximum mean discrepancy) "
                                           "or LSDDDrift (least-squares density difference; cheaper on many rows).")
    every: int = Field(5, ge=1, description="Run on every N-th window of a version (it is slower).")
    reference_rows: int = Field(1000, ge=50, description="Reference rows used (subsampled: cost grows fast).")
    n_permutations: int = Field(100, ge=10, description="Permutations of the test (p-value resolution 1/N).")


class OnlineSettings(StrictModel):
    """The online detector, updated per sampled row, calibrated once per version."""

    enabled: bool = Field(True, description="Run it.")
    kind: Literal["mmd", "cvm"] = Field("mmd", description="alibi-detect MMDDriftOnline or CVMDriftOnline.")
    ert: float = Field(1000.0, gt=1, description="Expected run time (rows) between false alarms.")
    window_size: int = Field(20, ge=2, description="Test window of the online detector.")
    n_bootstraps: int = Field(5000, ge=100, description="Bootstrap streams for calibration.")
    reference_rows: int = Field(1000, ge=50, description="Reference rows used.")
    sample_rate: float = Field(0.2, gt=0, le=1, description="Share of window rows fed to it (it costs ~0.5 ms a row).")


class DetectorCadence(StrictModel):
    """Which detectors run and how often."""

    backend: Literal["alibi", "scipy"] | None = Field(None, description="Feature-wise backend; unset = the one saved "
                                                      "with each version.")
    feature_wise: bool = Field(True, description="KS (numeric) / Chi-squared (categorical) per feature.")
    output: bool = Field(True, description="Predicted-class distribution vs the reference predictions.")
    mmd: MMDSettings = Field(default_factory=MMDSettings, description="Multivariate MMD.")
    online: OnlineSettings = Field(default_factory=OnlineSettings, description="Online detector.")


class PredictionLogSettings(StrictModel):
    """Parquet prediction log on the artifact store (what retraining reads)."""

    enabled: bool = Field(True, description="Write it.")
    root: str | None = Field(None, description="URI of the log; unset = `<artifact_root>/_predictions`.")
    flush_every_s: float = Field(30.0, gt=0, description="Write buffered records this often.")
    max_buffered_rows: int = Field(50_000, ge=100, description="Flush early at this many rows.")


class RetrainSettings(StrictModel):
    """When drift reports start a retraining job (protections against retrain storms)."""

    enabled: bool = Field(False, description="Submit the training job (python -m raymlops.jobs.train) when the policy fires.")
    detectors: list[Literal["feature", "output", "mmd", "online"]] = Field(
        default=["feature", "mmd"], description="Detectors whose reports count.")
    k: int = Field(2, ge=1, description="Fire when k of the last n checks of the champion drifted...")
    n: int = Field(3, ge=1, description="...out of n.")
    cooldown_s: float = Field(3600.0, ge=0, description="Least time between two retraining jobs.")
    max_per_day: int = Field(3, ge=1, description="Retraining jobs per UTC day at most.")
    train_config: str = Field("configs/train.yaml", description="Training config of the job.")
    train_overrides: list[str] = Field(default_factory=list, description="`--set` overrides for the job.")
    include_labelled_log: bool = Field(True, description="Add the labelled prediction log to the training data.")
    min_accuracy: float | None = Field(None, gt=0, le=1, description="Performance drift: also retrain when the "
                                       "champion's accuracy on feedback labels falls below this (unset = off).")
    min_labels: int = Field(50, ge=1, description="Labelled rows of the champion needed before its accuracy counts.")
    auto_rollout: bool = Field(True, description="Have the model's rollout controller roll out each version a retraining "
                              "registers as `candidate` (it reads the registry's `retrain_finished` events).")
    rollout_config: str = Field("configs/rollout.yaml", description="Rollout config used then.")
    rollout_overrides: list[str] = Field(default_factory=list, description="`--set` style overrides of it.")

    @model_validator(mode="after")
    def _k_of_n(self) -> "RetrainSettings":
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) cannot exceed n ({self.n})")
        return self


class MonitorConfig(StrictModel):
    """``configs/monitor.yaml``: the drift monitor actor of one served model."""

    model_name: str = Field("penguins", description="Registry name of the monitored model.")
    registry: str | None = Field("configs/registry.yaml", description="Registry config file; unset = defaults.")
    window: WindowSettings = Field(default_factory=WindowSettings, description="Windows.")
    detectors: DetectorCadence = Field(default_factory=DetectorCadence, description="Detectors.")
    queue_windows: int = Field(64, ge=1, description="Full windows waiting for detection at most; beyond, the "
                               "oldest is dropped and counted (ingest never waits for a test).")
    snapshot_every_s: float = Field(10.0, gt=0, description="Save windows, online state and counters this often.")
    state_root: str | None = Field(None, description="URI for snapshots and calibrated detectors; unset = "
                                   "`<artifact_root>/_monitor`.")
    prediction_log: PredictionLogSettings = Field(default_factory=PredictionLogSettings, description="Prediction log.")
    num_cpus: float = Field(0.25, gt=0, description="CPUs reserved for the actor.")
    retrain: RetrainSettings = Field(default_factory=RetrainSettings, description="Drift-triggered "
                                       "retraining.")
