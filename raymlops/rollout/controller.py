"""The rollout controller: one detached actor per model (``raymlops-rollout-{model}`` in namespace
``raymlops``) that applies :mod:`raymlops.serve.rollout` decisions — weights through the Serve
controller (user_config only), aliases by compare-and-set, one registry event per decision
with its inputs — and persists its state, so a restarted actor continues where it was.

Evidence comes from the model's drift monitor: per-version health stats and accuracy since
the current step began, and a chi-squared test of canary vs stable predicted classes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import replace
from typing import Any

from raymlops.serve.rollout import (FINAL_PHASES, ArmEvidence, Decision, Evidence, Gates, Plan, RolloutState, Step,
                                    command, decide)

log = logging.getLogger(__name__)
NAMESPACE = "raymlops"


def controller_name(model: str) -> str:
    """The actor name of a model's rollout controller."""
    return f"raymlops-rollout-{model}"


def plan_of(cfg) -> Plan:
    """The pure plan of a RolloutConfig."""
    g = cfg.gates
    gates = Gates(g.max_error_rate_delta, g.max_latency_ratio, g.max_accuracy_drop, g.min_labels,
                  g.block_on_output_drift, g.min_requests, g.latency_slack_ms)
    steps = tuple(Step(s.weight, s.min_duration_s, s.min_canary_requests) for s in cfg.steps)
    return Plan(steps, gates, cfg.deadline_s, cfg.on_deadline)


def predictions_differ(stable: dict[str, int], canary: dict[str, int], p_val: float, min_rows: int) -> bool:
    """Chi-squared test of the predicted-class counts of two arms (False until both have min_rows)."""
    if sum(stable.values()) < min_rows or sum(canary.values()) < min_rows:
        return False
    from scipy.stats import chi2_contingency

    classes = sorted(set(stable) | set(canary))
    if len(classes) < 2:
        return False
    table = [[stable.get(c, 0) for c in classes], [canary.get(c, 0) for c in classes]]
    return bool(chi2_contingency(table)[1] < p_val)


class RolloutController:
    """Runs one model's rollouts (wrap with ``ray.remote``)."""

    def __init__(self, model: str, registry: dict[str, Any]) -> None:
        from raymlops import filesystem
        from raymlops.config import RegistryConfig
        from raymlops.registry import Registry

        self.model = model
        registry_cfg = RegistryConfig.model_validate(registry)
        self.registry = Registry.from_config(registry_cfg)
        self.state_uri = filesystem.join(registry_cfg.artifact_root, "_rollout", model, "state.json")
        self.cfg = None
        self.state: RolloutState | None = None
        self.retire: dict[str, Any] | None = None
        self.last: dict[str, Any] = {}
        self._task: asyncio.Task | None = None
        self._metrics = None
        self._restore()

    # ------------------------------------------------------------------ persistence

    def _restore(self) -> None:
        from raymlops import filesystem
        from raymlops.config import RolloutConfig

        if filesystem.exists(self.state_uri):
            saved = json.loads(filesystem.read_bytes(self.state_uri))
            self.cfg = RolloutConfig.model_validate(saved["config"])
            self.state = RolloutState(**saved["state"])
            self.retire, self.last = saved.get("retire"), saved.get("last", {})

    def _persist(self) -> None:
        from raymlops.monitor.storage import write_atomically

        body = {"config": self.cfg.model_dump(mode="json"), "state": self.state.to_dict(), "retire": self.retire,
                "last": self.last}
        write_atomically(self.state_uri, json.dumps(body).encode())

    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    # ------------------------------------------------------------------ commands

    async def start(self, config: dict[str, Any]) -> dict[str, Any]:
        """Start a rollout of the `candidate` version against the `champion`.

        Raises:
            ValueError: a rollout is already active, or there is no distinct candidate.
        """
        from raymlops.config import RolloutConfig
        from raymlops.errors import NotFoundError

        if self.state is not None and self.state.phase not in FINAL_PHASES:
            raise ValueError(f"a rollout of v{self.state.canary_version} is already {self.state.phase}")
        cfg = RolloutConfig.model_validate(config)
        champion = await asyncio.to_thread(self.registry.resolve, self.model, "champion")
        try:
            candidate = await asyncio.to_thread(self.registry.resolve, self.model, "candidate")
        except NotFoundError:
            raise ValueError(f"{self.model} has no `candidate` version to roll out") from None
        if candidate == champion:
            raise ValueError(f"the candidate v{candidate} is already the champion")
        now = time.time()
        self.cfg, self.retire = cfg, None
        self.state = RolloutState(self.model, champion, candidate, step_started=now, started=now)
        first = Decision("advance", self.state, cfg.steps[0].weight, ("rollout started",))
        await self._apply(first, {"stable_version": champion, "canary_version": candidate,
                                  "canary_weight": cfg.steps[0].weight})
        self._ensure_loop()
        return await self.status()

    async def command(self, name: str) -> dict[str, Any]:
        """pause | resume | promote | abort | rollback.

        Raises:
            ValueError: no rollout, or the command does not apply now.
        """
        if self.state is None:
            raise ValueError(f"{self.model} has no rollout")
        if name == "rollback":
            return await self._rollback_command()
        decision = command(plan_of(self.cfg), self.state, name, time.time())
        await self._apply(decision)
        self._ensure_loop()
        return await self.status()

    async def _rollback_command(self) -> dict[str, Any]:
        if self.state.phase == "promoted" and self.retire is not None:
            old = self.retire["version"]
            await asyncio.to_thread(self.registry.set_alias, self.model, "champion", old, self.state.canary_version,
                                    "rollout-controller")
            await self._traffic({"stable_version": old, "canary_version": None, "canary_weight": 0.0})
            state = replace(self.state, phase="rolled_back", reason="rolled back after promotion by an operator")
            decision = Decision("rollback", state, 0.0, ("rolled back by an operator",),
                                {"champion_restored": old})
            self.retire = None
            await self._record(decision)
            return await self.status()
        if self.state.phase in FINAL_PHASES:
            raise ValueError(f"the rollout is {self.state.phase}"
                             + (" and its rollback window has passed" if self.state.phase == "promoted" else ""))
        state = replace(self.state, phase="rolled_back", finished=time.time(), reason="rolled back by an operator")
        await self._apply(Decision("rollback", state, 0.0, ("rolled back by an operator",)))
        return await self.status()

    async def run(self) -> None:
        """Keep the control loop running; never returns. Submitted with retries, so Ray calls it
        again on a restarted actor and the restored rollout continues."""
        self._ensure_loop()
        while True:
            await asyncio.sleep(3600)

    def pid(self) -> int:
        """The actor's process id (fault-injection tests kill it)."""
        import os

        return os.getpid()

    async def status(self) -> dict[str, Any]:
        """The rollout's state, its last decision and the retirement of the old champion."""
        return {"model": self.model, "state": self.state.to_dict() if self.state else None,
                "config": self.cfg.model_dump(mode="json") if self.cfg else None, "last_decision": self.last,
                "retire": self.retire}

    # ------------------------------------------------------------------ the control loop

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.poll_interval_s if self.cfg else 5)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - one failed tick is logged; the next one retries
                self.last = {"action": "error", "reasons": [f"{type(exc).__name__}: {exc}"], "time": time.time()}
                log.exception("rollout tick of %s failed", self.model)
            self._publish()

    def _publish(self) -> None:
        from raymlops.serve.metrics import RolloutMetrics

        if self._metrics is None:
            self._metrics = RolloutMetrics(self.model)
        state = self.state
        weight = self.last.get("weight") if isinstance(self.last.get("weight"), (int, float)) else 0.0
        self._metrics.publish(state.phase if state else None, state.step if state else None, float(weight),
                              state.canary_version if state else None)

    async def _tick(self) -> None:
        now = time.time()
        if self.retire is not None and now >= self.retire["at"]:
            await self._traffic({"canary_version": None, "canary_weight": 0.0})
            await asyncio.to_thread(self.registry.add_event, self.model, "rollout_retired", self.retire["version"],
                                    {"reason": "rollback window over"}, "rollout-controller")
            self.retire = None
            await asyncio.to_thread(self._persist)
        if self.state is None or self.state.phase != "running":
            return
        decision = decide(plan_of(self.cfg), self.state, await self._evidence(), now)
        if decision.action == "wait":
            self.last = {"action": "wait", "reasons": list(decision.reasons), "numbers": decision.numbers, "time": now}
            self.state = decision.state
            return
        await self._apply(decision)

    async def _evidence(self) -> Evidence:
        import ray

        from raymlops.monitor.actor import NAMESPACE as MONITOR_NAMESPACE, monitor_name

        monitor = ray.get_actor(monitor_name(self.model), namespace=MONITOR_NAMESPACE)
        since = self.state.step_started
        health, accuracy = await asyncio.gather(monitor.health.remote(since), monitor.accuracy.remote(since))

        def arm(version: int) -> ArmEvidence:
            stats, acc = health.get(str(version), {}), accuracy.get(str(version), {})
            return ArmEvidence(stats.get("requests", 0), stats.get("error_rate", 0.0), stats.get("latency_p99_ms"),
                               acc.get("labelled", 0), acc.get("accuracy"))

        gates = self.cfg.gates
        stable_pred = health.get(str(self.state.stable_version), {}).get("predictions", {})
        canary_pred = health.get(str(self.state.canary_version), {}).get("predictions", {})
        drift = gates.block_on_output_drift and predictions_differ(stable_pred, canary_pred, gates.output_drift_p_val,
                                                                   gates.output_drift_min_rows)
        return Evidence(arm(self.state.stable_version), arm(self.state.canary_version), drift)

    # ------------------------------------------------------------------ applying decisions

    async def _traffic(self, changes: dict[str, Any]) -> None:
        from raymlops.serve.control import apply_in_cluster

        await asyncio.to_thread(apply_in_cluster, self.cfg.app_name or self.model, changes)

    async def _apply(self, decision: Decision, traffic: dict[str, Any] | None = None) -> None:
        state = decision.state
        if decision.action == "promote":
            await asyncio.to_thread(self.registry.set_alias, self.model, "champion", state.canary_version,
                                    state.stable_version, "rollout-controller")
            await self._drop_candidate(state.canary_version)
            # the old champion stays loaded (weight 0) for the rollback window
            traffic = {"stable_version": state.canary_version, "canary_version": state.stable_version,
                       "canary_weight": 0.0}
            self.retire = {"version": state.stable_version, "at": time.time() + self.cfg.rollback_window_s}
        elif decision.action in ("rollback", "abort"):
            traffic = {"canary_version": None, "canary_weight": 0.0}
            await self._drop_candidate(state.canary_version)
        elif traffic is None and decision.action in ("advance", "wait", "hold"):
            traffic = {"canary_weight": decision.weight} if state.phase == "running" else None
        if traffic is not None:
            await self._traffic(traffic)
        self.state = state
        await self._record(decision)

    async def _drop_candidate(self, version: int) -> None:
        from raymlops.errors import AliasConflictError, NotFoundError

        try:
            await asyncio.to_thread(self.registry.delete_alias, self.model, "candidate", version, "rollout-controller")
        except (AliasConflictError, NotFoundError):
            pass  # the alias moved on meanwhile: leave the newer one alone

    async def _record(self, decision: Decision) -> None:
        self.last = {"action": decision.action, "reasons": list(decision.reasons), "numbers": decision.numbers,
                     "weight": decision.weight, "time": time.time()}
        payload = {**self.last, "state": decision.state.to_dict()}
        await asyncio.to_thread(self.registry.add_event, self.model, f"rollout_{decision.action}",
                                decision.state.canary_version, payload, "rollout-controller")
        await asyncio.to_thread(self._persist)
        self._publish()


def get_or_create_controller(model: str, registry: dict[str, Any], num_cpus: float = 0.05):
    """The model's rollout controller, created (detached, restartable) when missing. Needs a Ray driver."""
    import ray

    remote = ray.remote(RolloutController)
    handle = remote.options(name=controller_name(model), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                            max_restarts=-1, max_task_retries=0, num_cpus=num_cpus, max_concurrency=16)
    controller = handle.remote(model, registry)
    controller.run.options(max_task_retries=-1).remote()
    return controller
