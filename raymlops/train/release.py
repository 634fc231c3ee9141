"""After training: package the version, evaluate it on the test split, register it with
its lineage, and apply the offline gate against the champion (recorded either way)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from raymlops.config import RegistryConfig, TrainConfig, load_config
from raymlops.data.tables import read_table
from raymlops.errors import NotFoundError
from raymlops.models import build_model
from raymlops.registry import ANY, Registry, Trigger, collect_lineage
from raymlops.train.evaluate import classification_metrics, majority_baseline, stratified_sample
from raymlops.train.gate import GateDecision, decide
from raymlops.train.package import ModelSpec, Predictor, write_artifact
from raymlops.train.trainer import PreparedInputs
from raymlops.types import ModelVersion

PREDICTION_COLUMN = "__prediction__"
CONFIDENCE_COLUMN = "__confidence__"


@dataclass(frozen=True)
class TrainOutcome:
    """What a training or tuning run produced."""

    version: ModelVersion
    metrics: dict[str, float]
    gate: GateDecision
    aliases: dict[str, int]


def open_registry(cfg: TrainConfig) -> Registry:
    """The registry named by ``cfg.registry`` (defaults when unset or absent)."""
    path = cfg.registry if cfg.registry and Path(cfg.registry).exists() else None
    return Registry.from_config(load_config(path, RegistryConfig))


def load_state_from_checkpoint(directory: str) -> tuple[dict, list[dict[str, float]]]:
    """Model weights and epoch history from a loop checkpoint directory."""
    import torch

    from raymlops.train.loop import CHECKPOINT_INFO, CHECKPOINT_STATE

    state = torch.load(os.path.join(directory, CHECKPOINT_STATE), map_location="cpu", weights_only=True)
    info = json.loads(Path(directory, CHECKPOINT_INFO).read_text())
    return state["model"], info["history"]


def evaluate(predictor: Predictor, table: pa.Table) -> dict[str, float]:
    """Test-split metrics of a predictor, through the serving code path."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    labels = predictor.preprocessor.encode_labels(table.column(predictor.schema.label).to_pylist())
    metrics = classification_metrics(labels, predictor.predict_proba(columns))
    metrics["majority_baseline"] = majority_baseline(labels)
    return metrics


def reference_sample(inputs: PreparedInputs, predictor: Predictor, rows: int, seed: int) -> pa.Table:
    """Stratified training features with the model's own predictions (for output drift)."""
    sample = stratified_sample(inputs.train_table, inputs.schema.label, rows, seed)
    features = sample.select(inputs.schema.feature_names)
    proba = predictor.predict_proba({n: features.column(n).to_numpy(zero_copy_only=False) for n in features.column_names})
    return features.append_column(PREDICTION_COLUMN, pa.array(proba.argmax(axis=1).astype(np.int64))) \
                   .append_column(CONFIDENCE_COLUMN, pa.array(proba.max(axis=1).astype(np.float64)))


def _champion_score(registry: Registry, name: str, metric: str, test: pa.Table) -> tuple[int | None, float | None]:
    try:
        champion = registry.resolve(name, "champion")
    except NotFoundError:
        return None, None
    with tempfile.TemporaryDirectory() as directory:
        predictor = Predictor.load(registry.download(f"{name}:{champion}", Path(directory) / "champion"))
        return champion, evaluate(predictor, test)[metric]


def release(cfg: TrainConfig, inputs: PreparedInputs, state: dict, history: list[dict[str, float]],
            extra_lineage: dict[str, Any] | None = None, trigger: Trigger | None = None) -> TrainOutcome:
    """Package, evaluate, register and gate one trained model."""
    registry = open_registry(cfg)
    spec = ModelSpec(cfg.model.builder, dict(cfg.model.params), inputs.preprocessor.output_dim, len(inputs.schema.classes))
    test = read_table(inputs.test_uri)
    detector = cfg.detector.model_dump()
    model = build_model(spec.builder, spec.params, spec.input_dim, spec.output_dim)
    model.load_state_dict(state)
    in_memory = Predictor(model, inputs.preprocessor, inputs.schema, spec)
    reference = reference_sample(inputs, in_memory, cfg.detector.reference_rows, cfg.train.seed)
    with tempfile.TemporaryDirectory() as directory:
        artifact = write_artifact(Path(directory) / "model", state, spec, inputs.preprocessor, inputs.schema,
                                  reference, detector)
        metrics = evaluate(Predictor.load(artifact), test)  # exactly what a serving replica will load
        if history:
            metrics.update({f"final_{k}": v for k, v in history[-1].items() if k != "epoch"})
            metrics["epochs"] = float(history[-1]["epoch"])
        champion, champion_value = _champion_score(registry, cfg.model_name, cfg.gate.metric, test)
        parent = cfg.lineage.parent_version or champion
        trigger = trigger or Trigger(kind=cfg.lineage.trigger, drift_event_id=cfg.lineage.drift_event_id)
        lineage = collect_lineage(cfg.model_dump(mode="json"), [*inputs.train_uris, inputs.valid_uri, inputs.test_uri],
                                  seed=cfg.train.seed, parent_version=parent, trigger=trigger,
                                  extra={"history": history, **(extra_lineage or {})})
        version = registry.register(cfg.model_name, artifact, metrics=metrics, lineage=lineage,
                                    description=f"{cfg.model.builder} {cfg.model.params}")
    decision = decide(cfg.gate.metric, metrics[cfg.gate.metric], champion, champion_value, cfg.gate.margin,
                      higher_is_better=cfg.gate.metric != "log_loss")
    registry.add_event(cfg.model_name, "offline_gate", version.version, decision.to_payload())
    if decision.passed:
        registry.set_alias(cfg.model_name, "candidate", version.version, expected=ANY)
        if champion is None and cfg.gate.bootstrap_champion:
            registry.set_alias(cfg.model_name, "champion", version.version, expected=None)
    return TrainOutcome(version, metrics, decision, registry.aliases(cfg.model_name))
