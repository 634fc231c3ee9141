"""The drift monitor: windows, detectors, prediction log and retraining (``configs/monitor.yaml``)."""

from __future__ import annotations

import math
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
    min_interval_s: float = Field(60.0, ge=0, description="And at most once per this many seconds per version: one "
                                  "test costs seconds of CPU (about 3 s on one core at 1,000 reference rows and 200 "
                                  "permutations), so under heavy traffic `every` alone lets it take the monitor's "
                                  "node. Fewer tests than `every` implies only lower its false alarms.")
    reference_rows: int = Field(1000, ge=50, description="Reference rows used (subsampled: cost grows fast).")
    n_permutations: int = Field(100, ge=10, description="Permutations of the test (p-value resolution 1/N); raised "
                                "to resolve the test's share of the budget (at least 5/α).")


class OnlineSettings(StrictModel):
    """The online detector, updated per sampled row, calibrated once per version."""

    enabled: bool = Field(False, description="Run it (off by default: calibrating it costs up to a minute per "
                          "version, and its share of a small budget asks for a large ERT).")
    kind: Literal["mmd", "cvm"] = Field("mmd", description="alibi-detect MMDDriftOnline or CVMDriftOnline.")
    ert: float | None = Field(None, gt=1, description="Expected run time (sampled rows) between false alarms; "
                              "unset = derived from its share of the budget. Set, it spends what it implies and "
                              "the window detectors share the rest.")
    window_size: int = Field(20, ge=2, description="Test window of the online detector.")
    n_bootstraps: int = Field(5000, ge=100, description="Bootstrap streams for calibration.")
    reference_rows: int = Field(1000, ge=50, description="Reference rows used.")
    sample_rate: float = Field(0.01, gt=0, le=1, description="Share of window rows fed to it (it costs ~0.5 ms a row).")


class BudgetSettings(StrictModel):
    """One false-alarm budget for the version's drift verdict (any detector), split across the
    enabled detectors: each window test's threshold and the online detector's ERT derive from it."""

    false_alarms: float = Field(1.0, gt=0, description="Expected false drift alarms of the verdict...")
    per_rows: int = Field(20_000, ge=100, description="...per this many rows of a version that does not drift.")
    shares: dict[Literal["feature", "output", "mmd", "online"], float] = Field(
        default_factory=lambda: {"feature": 0.4, "output": 0.4, "mmd": 0.2, "online": 0.2},  # type: ignore[arg-type]
        description="Relative shares of the budget (renormalised over the enabled detectors).")

    @model_validator(mode="after")
    def _shares(self) -> "BudgetSettings":
        if any(v < 0 for v in self.shares.values()):
            raise ValueError("shares must not be negative")
        return self


class EffectSettings(StrictModel):
    """Least effect sizes for an alarm: below them a significant shift is reported, not alarmed."""

    wasserstein: float = Field(0.1, ge=0, description="Numeric features and regression outputs: Wasserstein "
                               "distance in reference standard deviations.")
    psi: float = Field(0.02, ge=0, description="Categorical features and predicted classes: population "
                       "stability index.")


class CalibrationSettings(StrictModel):
    """Calibration of the window tests' thresholds on the version's out-of-sample reference."""

    windows: int = Field(400, ge=50, description="Null pseudo-windows simulated per version and test.")
    tail: float = Field(0.1, gt=0, lt=0.5, description="Null quantile the effective number of tests is read at.")


class DetectorCadence(StrictModel):
    """Which detectors run and how often, and the false-alarm budget they share."""

    backend: Literal["alibi", "scipy"] | None = Field(None, description="Feature-wise backend; unset = the one saved "
                                                      "with each version.")
    feature_wise: bool = Field(True, description="KS (numeric) / Chi-squared (categorical) per feature.")
    output: bool = Field(True, description="Predicted-class distribution vs the reference predictions.")
    mmd: MMDSettings = Field(default_factory=MMDSettings, description="Multivariate MMD.")
    online: OnlineSettings = Field(default_factory=OnlineSettings, description="Online detector.")
    budget: BudgetSettings = Field(default_factory=BudgetSettings, description="The false-alarm budget.")
    min_effect: EffectSettings = Field(default_factory=EffectSettings, description="Least effect sizes for an alarm.")
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings,
                                             description="Threshold calibration.")
    estimate_accuracy: bool = Field(True, description="Classifiers: estimate accuracy without labels from the "
                                    "model's confidence, calibrated on the reference (needs a reference with labels).")


class PredictionLogSettings(StrictModel):
    """Parquet prediction log on the artifact store (what retraining reads)."""

    enabled: bool = Field(True, description="Write it.")
    root: str | None = Field(None, description="URI of the log; unset = `<artifact_root>/_predictions`.")
    flush_every_s: float = Field(30.0, gt=0, description="Write buffered records this often.")
    max_buffered_rows: int = Field(50_000, ge=100, description="Flush early at this many rows.")


class RetentionSettings(StrictModel):
    """How long the monitor keeps what it stores; one pass runs every ``every_s`` (null = keep forever)."""

    events_days: float | None = Field(90.0, gt=0, description="Delete the model's registry events older than this, "
                                      "except those lineage refers to (registered, offline_gate, drift_detected, "
                                      "retrain_submitted, retrain_finished).")
    prediction_log_days: float | None = Field(30.0, gt=0, description="Delete prediction-log days older than this.")
    version_idle_s: float | None = Field(86_400.0, gt=0, description="Forget a version's windows, health rows, "
                                         "detectors and reports once it has had no traffic for this long and is "
                                         "neither champion nor candidate.")
    every_s: float = Field(3600.0, gt=0, description="How often the retention pass runs.")


class RetrainSettings(StrictModel):
    """When drift reports start a retraining job (protections against retrain storms)."""

    enabled: bool = Field(False, description="Submit the training job (python -m raymlops.jobs.train) when the policy fires.")
    detectors: list[Literal["feature", "output", "mmd", "online"]] = Field(
        default=["feature", "mmd"], description="Detectors whose reports count.")
    k: int = Field(2, ge=1, description="Fire when k of the last n checks of the champion drifted...")
    n: int = Field(3, ge=1, description="...out of n.")
    cooldown_s: float = Field(3600.0, ge=0, description="Least time between two retraining jobs.")
    max_per_day: int = Field(3, ge=1, description="Retraining jobs per UTC day at most.")
    start_timeout_s: float = Field(1800.0, gt=0, description="A retraining job whose first epoch has not been "
                                   "reported this long after its submission (waiting for CPUs, workers or data) is "
                                   "stopped and recorded as STALLED, with the reason in `drift status`.")
    train_config: str = Field("configs/train.yaml", description="Training config of the job.")
    train_overrides: list[str] = Field(default_factory=list, description="`--set` overrides for the job.")
    include_labelled_log: bool = Field(True, description="Add the labelled prediction log to the training data.")
    min_accuracy: float | None = Field(None, gt=0, le=1, description="Performance drift: also retrain when the "
                                       "champion's accuracy on feedback labels falls below this (unset = off).")
    min_labels: int = Field(50, ge=1, description="Labelled rows of the champion needed before its accuracy counts.")
    min_estimated_accuracy: float | None = Field(None, gt=0, le=1, description="Also retrain when the champion's "
                                                 "estimated accuracy (no labels needed) falls below this (unset = off).")
    min_estimated_rows: int = Field(500, ge=1, description="Rows of the champion behind that estimate before it counts.")
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
    checks: Literal["thread", "actor"] = Field("thread", description="Where each shard tests its windows: `thread` "
                                               "(one thread of the shard's own process, at the lowest CPU priority) "
                                               "or `actor` (in a Ray actor of their own "
                                               "beside the shard, at the lowest CPU priority, so ingest never waits "
                                               "for a test; for models whose traffic keeps the checks busy: one more "
                                               "process per shard).")
    snapshot_every_s: float = Field(10.0, gt=0, description="Save windows, online state and counters this often.")
    state_root: str | None = Field(None, description="URI for snapshots and calibrated detectors; unset = "
                                   "`<artifact_root>/_monitor`.")
    prediction_log: PredictionLogSettings = Field(default_factory=PredictionLogSettings, description="Prediction log.")
    num_cpus: float = Field(0.25, gt=0, description="CPUs reserved for the actor (for each shard).")
    shards: int = Field(1, ge=1, le=16, description="Monitor actors sharing the model's stream, for traffic one "
                        "actor cannot ingest: replicas send each row to the shard its request id hashes to; the "
                        "first shard merges their verdicts, writes the events and starts retraining.")
    retrain: RetrainSettings = Field(default_factory=RetrainSettings, description="Drift-triggered "
                                       "retraining.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings, description="Retention of events, "
                                         "the prediction log and the state of versions no longer served.")

    @model_validator(mode="after")
    def _online_within_budget(self) -> "MonitorConfig":
        online, budget = self.detectors.online, self.detectors.budget
        if online.enabled and online.ert is not None \
                and budget.per_rows * online.sample_rate / online.ert >= budget.false_alarms:
            raise ValueError(online_overspend(online.ert, online.sample_rate, budget.false_alarms, budget.per_rows))
        return self


def online_overspend(ert: float, sample_rate: float, false_alarms: float, per_rows: int) -> str:
    """Why an explicit online ERT does not fit the budget, with the settings that fix it."""
    sampled = per_rows * sample_rate
    least = math.ceil(sampled / (false_alarms * 0.5))
    return (f"detectors.online.ert: an online detector with ERT {ert:g} over {sampled:g} sampled rows per {per_rows} "
            f"rows raises {sampled / ert:.3g} false alarms, the whole budget of {false_alarms:g}; raise ert to at least "
            f"{least} (half the budget), lower detectors.online.sample_rate, or raise detectors.budget.false_alarms")
