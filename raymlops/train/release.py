"""After training: package the version, evaluate it on the test split, register it with
its lineage, and apply the offline gate against the champion (recorded either way)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from raymlops.config import RegistryConfig, TrainConfig, load_config
from raymlops.data.tables import read_table
from raymlops.errors import NotFoundError
from raymlops.models import Model, build_model, load_model
from raymlops.models.environment import environment_of
from raymlops.models.tasks import DEFAULT_GATE_METRIC, higher_is_better
from raymlops.models.torch_tabular import ModelSpec, TorchTabularModel
from raymlops.models.torch_tensor import TorchTensorModel
from raymlops.registry import ANY, Registry, Trigger, collect_lineage
from raymlops.train.gate import GateDecision, decide
from raymlops.train.package import evaluate, held_out, reference_sample, write_artifact
from raymlops.train.trainer import PreparedInputs
from raymlops.types import ModelVersion


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

    from raymlops.train.context import CHECKPOINT_INFO, CHECKPOINT_STATE

    state = torch.load(os.path.join(directory, CHECKPOINT_STATE), map_location="cpu", weights_only=True)
    info = json.loads(Path(directory, CHECKPOINT_INFO).read_text())
    return state["model"], info["history"]


def champion_score(registry: Registry, name: str, metric: str, test: pa.Table) -> tuple[int | None, float | None]:
    """The champion's number and its ``metric`` on ``test`` (None, None without a champion)."""
    try:
        champion = registry.resolve(name, "champion")
    except NotFoundError:
        return None, None
    version = registry.get(f"{name}:{champion}")
    with tempfile.TemporaryDirectory() as directory:
        model = load_model(registry.download(f"{name}:{champion}", Path(directory) / "champion"), version.manifest)
        return champion, evaluate(model, test).get(metric)


def gate_metric(configured: str | None, task: str) -> str:
    """The offline gate's metric: the configured one, or the task's default."""
    return configured or DEFAULT_GATE_METRIC[task]


def apply_gate(registry: Registry, name: str, version: ModelVersion, metric: str, margin: float,
               champion: int | None, champion_value: float | None, bootstrap_champion: bool,
               move_aliases: bool = True) -> GateDecision:
    """Record the offline gate's decision; a passing version becomes `candidate` (and the first
    one also `champion` with ``bootstrap_champion``) unless ``move_aliases`` is off (a reproduction
    is a check, not a release) or a rollout is in progress: then the event says which rollout it
    waits for (``queued_behind``) and no alias moves under that rollout."""
    decision = decide(metric, version.metrics[metric], champion, champion_value, margin,
                      higher_is_better=higher_is_better(metric))
    rollout = registry.active_rollout(name) if decision.passed and move_aliases else None
    payload = decision.to_payload()
    if rollout is not None:  # no alias moves under a running rollout: the controller starts this one after it
        payload["queued_behind"] = rollout
    registry.add_event(name, "offline_gate", version.version, payload)
    if decision.passed and move_aliases and rollout is None:
        registry.set_alias(name, "candidate", version.version, expected=ANY)
        if champion is None and bootstrap_champion:
            registry.set_alias(name, "champion", version.version, expected=None)
    return decision


def torch_model(cfg: TrainConfig, inputs: PreparedInputs, state: dict) -> Model:
    """The trained network with its preprocessing, in its torch flavor (tabular or tensor inputs)."""
    flavor = "torch-tensor" if inputs.schema.tensors else "torch-tabular"
    spec = ModelSpec(cfg.model.builder, inputs.model_params(cfg.model.params), inputs.preprocessor.output_dim,
                     inputs.output_dim, flavor)
    network = build_model(spec.builder, spec.params, spec.input_dim, spec.output_dim)
    network.load_state_dict(state)
    return (TorchTensorModel if inputs.schema.tensors else TorchTabularModel)(
        network, inputs.preprocessor, inputs.schema, spec)  # type: ignore[arg-type]


def release(cfg: TrainConfig, inputs: PreparedInputs, state: dict, history: list[dict[str, float]],
            extra_lineage: dict[str, Any] | None = None, trigger: Trigger | None = None) -> TrainOutcome:
    """Package, evaluate, register and gate one trained network."""
    return release_model(cfg, inputs, torch_model(cfg, inputs, state), history, extra_lineage, trigger)


def release_model(cfg: TrainConfig, inputs: PreparedInputs, model: Model, history: list[dict[str, float]],
                  extra_lineage: dict[str, Any] | None = None, trigger: Trigger | None = None) -> TrainOutcome:
    """Package, evaluate, register and gate one trained model of any flavor."""
    registry = open_registry(cfg)
    test = read_table(inputs.test_uri)
    # out of sample: the monitor calibrates thresholds and the accuracy estimate on it
    reference = reference_sample(held_out(read_table(inputs.valid_uri), test), model, cfg.detector.reference_rows,
                                 cfg.train.seed)
    metric = gate_metric(cfg.gate.metric, inputs.schema.task)
    with tempfile.TemporaryDirectory() as directory:
        artifact = write_artifact(Path(directory) / "model", model, reference, cfg.detector.model_dump())
        metrics = evaluate(load_model(artifact), test)  # exactly what a serving replica will load
        if history:
            metrics.update({f"final_{k}": v for k, v in history[-1].items() if k != "epoch"})
            metrics["epochs"] = float(history[-1]["epoch"])
        champion, champion_value = champion_score(registry, cfg.model_name, metric, test)
        parent = cfg.lineage.parent_version or champion
        trigger = trigger or Trigger(kind=cfg.lineage.trigger, drift_event_id=cfg.lineage.drift_event_id)
        lineage = collect_lineage(cfg.model_dump(mode="json"), [*inputs.train_uris, inputs.valid_uri, inputs.test_uri],
                                  seed=cfg.train.seed, parent_version=parent, trigger=trigger,
                                  extra={"history": history, **(extra_lineage or {})},
                                  environment=environment_of(model))
        version = registry.register(cfg.model_name, artifact, metrics=metrics, lineage=lineage,
                                    description=f"{cfg.model.estimator or cfg.model.builder} {cfg.model.params}")
    decision = apply_gate(registry, cfg.model_name, version, metric, cfg.gate.margin, champion, champion_value,
                          cfg.gate.bootstrap_champion, move_aliases=cfg.lineage.trigger != "reproduce")
    return TrainOutcome(version, metrics, decision, registry.aliases(cfg.model_name))
