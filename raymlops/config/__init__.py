"""Typed configuration: one pydantic model per YAML file in ``configs/``, one module each.

Every model rejects unknown keys (a typo is an error, not a silent default) and
describes every field; the configuration reference is generated from those
descriptions. Environment variables are used only for secrets and addresses.

Load a file with :func:`load_config`, which also applies dotted overrides::

    cfg = load_config("configs/data.yaml", DataConfig, ["prepare.seed=7"])
"""

from raymlops.config.base import StrictModel
from raymlops.config.cluster import FAST_SERVE_SETTINGS, LocalClusterConfig
from raymlops.config.data import DataConfig, PrepareConfig, ShiftConfig, SplitFractions, SynthConfig
from raymlops.config.loader import (
    CONFIG_MODELS,
    ModelT,
    apply_overrides,
    find_config,
    load_config,
    model_for_file,
    packaged_default,
    parse_override,
    read_yaml,
    validate_data,
)
from raymlops.config.monitor import (
    DetectorCadence,
    MMDSettings,
    MonitorConfig,
    OnlineSettings,
    PredictionLogSettings,
    RetrainSettings,
    WindowSettings,
)
from raymlops.config.pipeline import PipelineConfig, PipelineData
from raymlops.config.registry import DEFAULT_REQUIRED_FILES, RegistryConfig, S3Config
from raymlops.config.rollout import RolloutConfig, RolloutGates, RolloutStep
from raymlops.config.serve import (
    AccessSettings,
    BatchSettings,
    EnvironmentSettings,
    RecordSettings,
    ReplicaSettings,
    RequestLimits,
    RouterSettings,
    ServeConfig,
    TrafficSettings,
)
from raymlops.config.train import (
    DetectorSettings,
    GateConfig,
    LineageSettings,
    LoopConfig,
    ModelConfig,
    RunStorageConfig,
    ScalingSettings,
    TrainConfig,
    TrainDataConfig,
)
from raymlops.config.tune import SearchDimension, TuneConfig, TuneSettings

__all__ = [
    "AccessSettings",
    "BatchSettings",
    "CONFIG_MODELS",
    "DEFAULT_REQUIRED_FILES",
    "DataConfig",
    "find_config",
    "packaged_default",
    "DetectorCadence",
    "DetectorSettings",
    "EnvironmentSettings",
    "FAST_SERVE_SETTINGS",
    "GateConfig",
    "LineageSettings",
    "LocalClusterConfig",
    "LoopConfig",
    "MMDSettings",
    "ModelConfig",
    "ModelT",
    "MonitorConfig",
    "OnlineSettings",
    "PipelineConfig",
    "PipelineData",
    "PredictionLogSettings",
    "PrepareConfig",
    "RecordSettings",
    "RegistryConfig",
    "ReplicaSettings",
    "RequestLimits",
    "RetrainSettings",
    "RolloutConfig",
    "RolloutGates",
    "RolloutStep",
    "RouterSettings",
    "RunStorageConfig",
    "S3Config",
    "ScalingSettings",
    "SearchDimension",
    "ServeConfig",
    "ShiftConfig",
    "SplitFractions",
    "StrictModel",
    "SynthConfig",
    "TrafficSettings",
    "TrainConfig",
    "TrainDataConfig",
    "TuneConfig",
    "TuneSettings",
    "WindowSettings",
    "apply_overrides",
    "load_config",
    "model_for_file",
    "parse_override",
    "read_yaml",
    "validate_data",
]
