"""Typed configuration: one pydantic model per YAML file in ``configs/``.

Every model rejects unknown keys (a typo is an error, not a silent default) and
describes every field; the README's configuration reference is generated from
those descriptions. Environment variables are used only for secrets and addresses.

Load a file with :func:`load_config`, which also applies dotted overrides::

    cfg = load_config("configs/data.yaml", DataConfig, ["prepare.seed=7"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Sequence, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from raymlops.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are rejected, values re-validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


# --------------------------------------------------------------------------- local cluster


#: Ray Serve settings measured fastest here (benchmarks/serve_overhead.py) that bind nothing new beyond
#: ``host``: RAY_SERVE_THROUGHPUT_OPTIMIZED's choices, with direct ingress but without HAProxy. Serve's
#: proxy keeps its port; each ingress replica also answers on its own port in 30000-31000 on ``host``.
#: The drain period only serves external load balancers, which a local cluster does not have.
FAST_SERVE_SETTINGS: dict[str, str] = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000",
    "RAY_SERVE_LOG_TO_STDERR": "0",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "1",
    "RAY_SERVE_FREEZE_GC_ON_STARTUP": "1",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
}


class LocalClusterConfig(StrictModel):
    """``configs/local.yaml``: the single-machine Ray cluster that ``raymlops up`` manages."""

    host: str = Field(
        "127.0.0.1",
        description="Address every port binds to. Keep 127.0.0.1 unless the machine is on a "
        "trusted network: the Serve HTTP and metrics ports are not protected by Ray's token.",
    )
    gcs_port: int = Field(6379, ge=1, le=65535, description="Port of the Ray GCS (cluster address).")
    dashboard_port: int = Field(8265, ge=1, le=65535, description="Port of the Ray dashboard and Jobs API.")
    serve_http_port: int = Field(8000, ge=1, le=65535, description="Port of the Ray Serve HTTP proxy.")
    metrics_export_port: int = Field(
        8090, ge=1, le=65535, description="Port where the head node exports Prometheus metrics (/metrics)."
    )
    dashboard_agent_port: int = Field(
        52365, ge=1, le=65535, description="HTTP port of the head node's dashboard agent (two clusters on one machine need two)."
    )
    client_server_port: int = Field(10001, ge=1, le=65535, description="Port of the Ray Client server (ray://).")
    temp_dir: str | None = Field(
        None, description="Ray's temp root for this cluster; unset = /tmp/raymlops-<uid>. Keep it short: "
        "Ray's socket paths beneath it must stay under ~107 characters.",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs the head node offers; unset = all cores.")
    num_gpus: int | None = Field(None, ge=0, description="GPUs the head node offers; unset = autodetect.")
    object_store_memory_mb: int | None = Field(
        None, ge=75, description="Object store size in MiB; unset lets Ray choose."
    )
    start_serve: bool = Field(
        True, description="Start the Serve HTTP proxy on host:serve_http_port as part of `raymlops up`."
    )
    start_timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for the head node to come up.")
    serve_settings: dict[str, str] = Field(
        default_factory=lambda: dict(FAST_SERVE_SETTINGS),
        description="Environment settings of Ray Serve for the cluster's processes; the default is the fastest "
        "safe set measured by benchmarks/serve_overhead.py: RAY_SERVE_THROUGHPUT_OPTIMIZED's settings without "
        "HAProxy (whose stats and metrics ports bind every interface), so Serve's proxy keeps the usual port and "
        "each ingress replica also serves HTTP on its own port on `host` (direct ingress). `{}` = Serve's defaults.",
    )


# --------------------------------------------------------------------------- data


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

    dataset: Literal["penguins"] = Field(
        "penguins",
        description="Built-in data set used when no `source` is given: `penguins` is the Palmer "
        "Penguins table shipped inside the `palmerpenguins` package (works offline).",
    )
    source: str | None = Field(
        None, description="Your own CSV or parquet file (any pyarrow URI) instead of the built-in data set."
    )
    label: str | None = Field(
        None, description="Label column of `source`; the built-in data set knows its own."
    )
    categorical: list[str] | None = Field(
        None, description="Categorical feature columns of `source`; unset = every string column."
    )
    output: str = Field(
        "$RAYMLOPS_HOME/data/penguins", description="Directory (any pyarrow URI) the splits and schema go to; "
        "`$RAYMLOPS_HOME` (default ~/.raymlops) and `~` expand.",
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


# --------------------------------------------------------------------------- registry

#: The files every model version carries (see raymlops.registry.layout).
DEFAULT_REQUIRED_FILES = ["model.safetensors", "model.json", "preprocessing.json", "signature.json",
                          "reference.parquet", "detector.json"]


class S3Config(StrictModel):
    """Where an S3-compatible artifact store is; credentials come only from the environment."""

    endpoint: str | None = Field(
        None, description="Endpoint URL of an S3-compatible server (e.g. http://127.0.0.1:9000); unset = AWS, "
        "or $RAYMLOPS_S3_ENDPOINT / $AWS_ENDPOINT_URL.",
    )
    region: str | None = Field(None, description="Bucket region; unset = $AWS_DEFAULT_REGION.")


class RegistryConfig(StrictModel):
    """``configs/registry.yaml``: where model metadata and artifacts live."""

    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database (sqlite:///path or postgresql+psycopg://...). "
        "$RAYMLOPS_REGISTRY_URL wins when set; unset = sqlite:///$RAYMLOPS_HOME/registry/registry.db.",
    )
    artifact_root: str | None = Field(
        None, description="Root URI of version artifacts (local path, s3://bucket/prefix, ...). "
        "$RAYMLOPS_ARTIFACT_ROOT wins when set; unset = $RAYMLOPS_HOME/registry/artifacts.",
    )
    s3: S3Config = Field(default_factory=S3Config, description="S3 settings for s3:// artifact roots.")
    required_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_FILES),
        description="Files a version must contain to be registered (weights, preprocessing, signature, "
        "reference sample, detector config).",
    )
    sqlite_timeout_s: float = Field(60.0, gt=0, description="How long SQLite waits for a concurrent writer's lock.")


# --------------------------------------------------------------------------- training


class TrainDataConfig(StrictModel):
    """Where the prepared data set is."""

    path: str = Field(
        "$RAYMLOPS_HOME/data/penguins",
        description="Directory written by `raymlops data prepare` (schema.json + train/valid/test parquet), any "
        "pyarrow URI. `$RAYMLOPS_HOME` and `~` expand, so jobs running in a working-dir copy find it; "
        "use s3:// on multi-node clusters.",
    )
    extra_train: list[str] = Field(
        default_factory=list, description="More parquet files/directories appended to the training split "
        "(e.g. the labelled prediction log for retraining).",
    )
    cache: bool = Field(
        True, description="Materialize the preprocessed training split in Ray's object store once, instead of "
        "streaming it from storage every epoch (turn off when it does not fit in memory).",
    )


class ModelConfig(StrictModel):
    """Which network to build."""

    builder: str = Field("raymlops.models:mlp", description="Import path `package.module:function` of the builder.")
    params: dict[str, Any] = Field(
        default_factory=lambda: {"hidden": [64, 64], "dropout": 0.0}, description="Keyword arguments of the builder."
    )


class LoopConfig(StrictModel):
    """The per-worker training loop."""

    epochs: int = Field(20, ge=1, description="Passes over the training split.")
    batch_size: int = Field(32, ge=1, description="Rows per batch on each worker.")
    lr: float = Field(0.01, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    seed: int = Field(0, description="Seed of initialization and shuffling; same seed, same metrics on CPU.")
    shuffle_buffer: int = Field(1000, ge=0, description="Rows in each worker's local shuffle buffer (0 = no shuffle).")


class ScalingSettings(StrictModel):
    """Workers and their resources."""

    num_workers: int = Field(2, ge=1, description="Ray Train workers (PyTorch DDP processes).")
    use_gpu: Literal["auto", True, False] = Field(
        "auto", description="`auto` uses GPUs when the cluster has them; true requires them; false never."
    )
    cpus_per_worker: float = Field(0.5, gt=0, description="CPUs reserved per worker; fractional on small machines "
                                   "leaves room for Ray Data's read tasks.")
    gpus_per_worker: float = Field(1.0, gt=0, description="GPUs per worker when GPUs are used.")
    max_failures: int = Field(2, ge=-1, description="Worker-group restarts from the last checkpoint (-1 = forever).")
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How the workers' placement group spreads over nodes: `PACK` fills few nodes "
        "(fast DDP), `SPREAD`/`STRICT_SPREAD` one worker per node where possible/always.")


class RunStorageConfig(StrictModel):
    """Where checkpoints go."""

    path: str = Field("$RAYMLOPS_HOME/runs", description="storage_path of runs (any pyarrow URI).")
    checkpoints_to_keep: int = Field(2, ge=1, description="Checkpoints kept per run (one is written every epoch).")


class DetectorSettings(StrictModel):
    """Drift detector settings saved with each version for the monitor."""

    backend: Literal["alibi", "scipy"] = Field("alibi", description="Detector backend.")
    p_val: float = Field(0.05, gt=0, lt=1, description="Significance level of the feature-wise tests.")
    correction: Literal["bonferroni", "fdr"] = Field("bonferroni", description="Multiple-testing correction.")
    reference_rows: int = Field(5000, ge=10, description="Rows of the stratified reference sample (capped by the "
                                "training split; more rows keep false alarms nearer the significance level).")


class GateConfig(StrictModel):
    """The offline gate against the champion."""

    metric: Literal["accuracy", "macro_f1", "log_loss"] = Field("accuracy", description="Test-split metric compared.")
    margin: float = Field(0.0, description="How much better than the champion a new version must be.")
    bootstrap_champion: bool = Field(
        True, description="When the model has no champion yet, the first passing version also becomes champion."
    )


class LineageSettings(StrictModel):
    """Why this run happens; set by the retrain trigger, `manual` otherwise."""

    trigger: Literal["manual", "tune", "drift", "performance", "schedule"] = Field("manual", description="Trigger kind.")
    parent_version: int | None = Field(None, ge=1, description="Version this run derives from (unset = champion).")
    drift_event_id: int | None = Field(None, description="Registry event that triggered this run.")


class TrainConfig(StrictModel):
    """``configs/train.yaml``: one Ray Train run, evaluated, registered and gated."""

    model_name: str = Field("penguins", description="Registry name of the model.")
    data: TrainDataConfig = Field(default_factory=TrainDataConfig, description="Input data.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Network.")
    train: LoopConfig = Field(default_factory=LoopConfig, description="Training loop.")
    scaling: ScalingSettings = Field(default_factory=ScalingSettings, description="Workers.")
    storage: RunStorageConfig = Field(default_factory=RunStorageConfig, description="Checkpoints.")
    detector: DetectorSettings = Field(default_factory=DetectorSettings, description="Drift detector for the version.")
    gate: GateConfig = Field(default_factory=GateConfig, description="Offline gate.")
    lineage: LineageSettings = Field(default_factory=LineageSettings, description="Trigger and parent.")
    registry: str | None = Field(
        "configs/registry.yaml", description="Registry config file (relative to the job's working directory); "
        "unset = defaults.",
    )


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

    metric: str = Field("val_accuracy", description="Metric reported each epoch that trials are ranked by.")
    mode: Literal["max", "min"] = Field("max", description="Whether higher or lower `metric` is better.")
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


# --------------------------------------------------------------------------- serving


class TrafficSettings(StrictModel):
    """How requests are shared between the live versions (changed live with `raymlops traffic set`)."""

    canary_weight: float = Field(0.0, ge=0, le=1, description="Share of requests the canary (`candidate`) answers.")
    shadow_version: int | None = Field(None, ge=1, description="A version that also receives a share of requests in "
                                       "the background; its answers are logged, never returned.")
    shadow_share: float = Field(0.0, ge=0, le=1, description="Share of requests copied to the shadow version.")
    sticky_field: str | None = Field(
        None, description="Request field whose value keeps a caller on one version (the `x-raymlops-key` header "
        "always works).",
    )
    shadow_max_in_flight: int = Field(64, ge=1, description="Shadow predictions a replica runs at once; beyond "
                                      "this, shadow copies are skipped and counted, never queued.")


class ReplicaSettings(StrictModel):
    """Replicas of the model server deployment."""

    min_replicas: int = Field(1, ge=1, description="Autoscaling lower bound.")
    max_replicas: int = Field(2, ge=1, description="Autoscaling upper bound.")
    target_ongoing_requests: float = Field(2.0, gt=0, description="Autoscaling target per replica.")
    upscale_delay_s: float = Field(30.0, ge=0, description="How long load must stay high before adding a replica.")
    downscale_delay_s: float = Field(600.0, ge=0, description="How long load must stay low before removing one.")
    max_ongoing_requests: int = Field(32, ge=1, description="Requests a replica works on at once.")
    num_cpus: float = Field(0.25, gt=0, description="CPUs reserved per replica (fractional on small machines).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per model replica (`separate` layout only).")
    health_check_period_s: float = Field(10.0, gt=0, description="How often Serve checks that each replica "
                                         "can still predict.")
    graceful_shutdown_timeout_s: float = Field(20.0, ge=0, description="How long a stopping replica may finish "
                                               "its requests and flush its records.")
    max_replicas_per_node: int | None = Field(None, ge=1, description="Model replicas one node may hold (1 spreads "
                                              "them over nodes for availability); unset = no limit.")


class RouterSettings(StrictModel):
    """Replicas of the router in the `separate` layout (it holds no model)."""

    min_replicas: int = Field(1, ge=1, description="Autoscaling lower bound.")
    max_replicas: int = Field(2, ge=1, description="Autoscaling upper bound.")
    num_cpus: float = Field(0.1, gt=0, description="CPUs reserved per router replica.")


class BatchSettings(StrictModel):
    """Dynamic batching of prediction calls with `@serve.batch`."""

    enabled: bool = Field(False, description="Group concurrent requests into one model call.")
    max_batch_size: int = Field(16, ge=1, description="Most requests in one model call.")
    batch_wait_timeout_s: float = Field(0.002, ge=0, description="How long the first request waits for others.")


class RecordSettings(StrictModel):
    """The prediction stream every replica sends to its sink."""

    sink: str = Field("none", description="`monitor` (the model's drift monitor actor, started by `raymlops deploy`), "
                      "`none`, `actor` (fire-and-forget `ingest(batch)` calls to the named Ray actor in `options`) or "
                      "`package.module:Class` implementing RecordSink.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments of the sink, e.g. "
                                    "`{actor_name: raymlops-monitor-penguins}` for `actor`.")
    capacity: int = Field(10_000, ge=1, description="Rows a replica buffers at most; beyond, rows are dropped "
                          "and counted.")
    flush_rows: int = Field(64, ge=1, description="Flush when this many rows are buffered...")
    flush_ms: float = Field(100.0, gt=0, description="...or when the oldest buffered row is this old.")


class AccessSettings(StrictModel):
    """Who may call the model server (admin endpoints always need the admin bearer token)."""

    require_api_key: bool = Field(False, description="Inference endpoints need an API key (`x-api-key` header or "
                                  "`Authorization: Bearer`).")
    api_key_sha256: list[str] = Field(default_factory=list, description="SHA-256 digests of accepted API keys "
                                      "(`raymlops apikey create` prints one); keys in `$RAYMLOPS_API_KEYS` at "
                                      "deploy time are added. Never put keys themselves in YAML.")

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, value: list[str]) -> list[str]:
        for digest in value:
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"{digest[:12]}... is not a SHA-256 hex digest (64 lowercase hex characters)")
        return value


class RequestLimits(StrictModel):
    """Bounds on a single request."""

    max_rows: int = Field(1000, ge=1, description="Rows per request; more is a 413.")
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Bytes per request body; more is a 413.")


class ServeConfig(StrictModel):
    """``configs/serve.yaml``: one model behind the raymlops router on Ray Serve."""

    model_name: str = Field("penguins", description="Registry name of the model to serve.")
    app_name: str | None = Field(None, description="Serve application name; unset = the model name.")
    route_prefix: str = Field("/", description="HTTP route prefix of the application.")
    layout: Literal["colocated", "separate"] = Field(
        "colocated", description="`colocated`: every live version in the same replicas, split decided in-process "
        "(no extra hop per request; for models that fit together). `separate`: one deployment per version "
        "behind a router, each autoscaling on its own (for large or GPU models).",
    )
    registry: str | None = Field("configs/registry.yaml", description="Registry config file; unset = defaults.")
    monitor: str | None = Field("configs/monitor.yaml", description="Drift monitor config, used when "
                                "`records.sink` is `monitor`; unset = defaults.")
    traffic: TrafficSettings = Field(default_factory=TrafficSettings, description="Traffic split.")
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings, description="Replicas and autoscaling.")
    router: RouterSettings = Field(default_factory=RouterSettings, description="Router replicas (`separate`).")
    batching: BatchSettings = Field(default_factory=BatchSettings, description="Dynamic batching.")
    records: RecordSettings = Field(default_factory=RecordSettings, description="Prediction stream.")
    access: AccessSettings = Field(default_factory=AccessSettings, description="API keys.")
    limits: RequestLimits = Field(default_factory=RequestLimits, description="Request limits.")


class WindowSettings(StrictModel):
    """How the monitor cuts each version's stream into test windows."""

    size: int = Field(500, ge=10, description="Rows per window; a full window is checked at once.")
    min_samples: int = Field(100, ge=5, description="A partial window is checked after `max_wait_s` only when it "
                             "has at least this many rows.")
    max_wait_s: float = Field(60.0, gt=0, description="Check a partial window after this long.")
    sample_rate: float = Field(1.0, gt=0, le=1, description="Share of ingested rows that enter the windows.")


class MMDSettings(StrictModel):
    """The multivariate MMD test (alibi-detect, PyTorch backend, permutation test)."""

    enabled: bool = Field(True, description="Run it.")
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

    enabled: bool = Field(False, description="Submit jobs/train.py when the policy fires.")
    detectors: list[Literal["feature", "output", "mmd", "online"]] = Field(
        default_factory=lambda: ["feature", "mmd"], description="Detectors whose reports count.")
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
    auto_rollout: bool = Field(True, description="Start a rollout when the new version becomes `candidate`.")
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


class RolloutStep(StrictModel):
    """One canary weight of a rollout."""

    weight: float = Field(gt=0, le=1, description="Canary share during this step.")
    min_duration_s: float = Field(60.0, ge=0, description="Least time the step lasts.")
    min_canary_requests: int = Field(100, ge=1, description="Least canary requests before the step can pass.")


class RolloutGates(StrictModel):
    """What the canary must show against the stable version at every step."""

    max_error_rate_delta: float = Field(0.01, ge=0, description="Canary 5xx rate ≤ stable's + this.")
    max_latency_ratio: float = Field(1.5, gt=0, description="Canary p99 latency ≤ stable's × this + the slack.")
    latency_slack_ms: float = Field(5.0, ge=0, description="Absolute slack of the latency gate (sub-millisecond "
                                    "p99s are noise).")
    min_requests: int = Field(20, ge=1, description="Canary requests in a step before any gate is judged.")
    max_accuracy_drop: float = Field(0.02, ge=0, description="With feedback labels: canary accuracy ≥ stable's − this.")
    min_labels: int = Field(30, ge=1, description="Labelled rows per arm before accuracy is judged.")
    block_on_output_drift: bool = Field(True, description="Roll back when the canary's predicted classes differ "
                                        "significantly from the stable version's (chi-squared).")
    output_drift_p_val: float = Field(0.01, gt=0, lt=1, description="Significance of that test.")
    output_drift_min_rows: int = Field(100, ge=10, description="Rows per arm before that test is run.")


class RolloutConfig(StrictModel):
    """``configs/rollout.yaml``: a progressive rollout of the `candidate` version."""

    model_name: str = Field("penguins", description="Registry name of the model.")
    app_name: str | None = Field(None, description="Serve application; unset = the model name.")
    registry: str | None = Field("configs/registry.yaml", description="Registry config file; unset = defaults.")
    steps: list[RolloutStep] = Field(
        default_factory=lambda: [RolloutStep(weight=w) for w in (0.05, 0.25, 0.5, 1.0)],
        description="Canary weights in order, each with its minimum duration and canary requests.")
    gates: RolloutGates = Field(default_factory=RolloutGates, description="Gates judged at every step.")
    deadline_s: float = Field(3600.0, gt=0, description="How long a step may wait for its evidence.")
    on_deadline: Literal["hold", "abort"] = Field("hold", description="What happens at the deadline.")
    poll_interval_s: float = Field(5.0, gt=0, description="How often the controller decides.")
    rollback_window_s: float = Field(600.0, ge=0, description="After promotion the old champion stays loaded "
                                     "this long, so `raymlops rollout rollback` is instant.")
    num_cpus: float = Field(0.05, gt=0, description="CPUs reserved for the controller actor.")

    @model_validator(mode="after")
    def _rising_steps(self) -> "RolloutConfig":
        weights = [step.weight for step in self.steps]
        if not weights or weights != sorted(weights):
            raise ValueError(f"steps: weights must be given in rising order, got {weights}")
        return self


# --------------------------------------------------------------------------- loading

#: The model for each file name in ``configs/`` (``raymlops config validate`` uses it).
CONFIG_MODELS: dict[str, type[StrictModel]] = {
    "local": LocalClusterConfig,
    "data": DataConfig,
    "registry": RegistryConfig,
    "train": TrainConfig,
    "tune": TuneConfig,
    "serve": ServeConfig,
    "monitor": MonitorConfig,
    "rollout": RolloutConfig,
}


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into a key path and a YAML-typed value.

    Raises:
        ConfigError: when the text has no ``=`` or an empty key.
    """
    key, sep, raw = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(file="<overrides>", problems=[(text, "expected KEY.PATH=VALUE, e.g. train.epochs=3")])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each dotted override set (intermediate tables created)."""
    result = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for index, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                dotted = ".".join(path[: index + 1])
                raise ConfigError(file="<overrides>", problems=[(dotted, "is a value, not a table; cannot set a key in it")])
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _deep_copy(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_deep_copy(value) for value in data]
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping.

    Raises:
        ConfigError: missing file, YAML syntax error (with line), or a top level that is not a mapping.
    """
    file = str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(file=file, problems=[("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(file=file, problems=[("", f"cannot read: {exc.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file=file, problems=[("", f"{where}invalid YAML: {problem}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(file=file, problems=[("", f"top level must be a mapping, got {type(data).__name__}")])
    return data


def validate_data(data: dict[str, Any], model: type[ModelT], file: str = "<config>") -> ModelT:
    """Validate a mapping against ``model``, turning pydantic's errors into one ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            path = ".".join(str(part) for part in error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            problems.append((path, message))
        raise ConfigError(file=file, problems=problems) from None


def load_config(
    path: str | Path | None, model: type[ModelT], overrides: Sequence[str] = ()
) -> ModelT:
    """Load a YAML file into ``model`` after applying dotted ``overrides``.

    Args:
        path: the YAML file; ``None`` starts from the model's defaults.
        model: the pydantic model class of that file.
        overrides: ``"key.path=value"`` strings; values are parsed as YAML scalars.

    Raises:
        ConfigError: naming the file, the field path and the problem for each error.
    """
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return validate_data(data, model, file=str(path) if path is not None else "<defaults>")


def model_for_file(path: str | Path, kind: str | None = None) -> type[StrictModel]:
    """Pick the config model for a file by ``kind`` or by its name (``configs/data.yaml`` → data).

    Raises:
        ConfigError: when neither names a known kind.
    """
    name = kind or Path(path).stem
    try:
        return CONFIG_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(CONFIG_MODELS))
        raise ConfigError(
            file=str(path), problems=[("", f"unknown config kind {name!r}; pass --kind with one of: {known}")]
        ) from None
