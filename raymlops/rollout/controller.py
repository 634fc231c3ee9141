"""The rollout controller: one detached actor per model (``raymlops-rollout-{model}`` in namespace
``raymlops``), a thin shell over :mod:`raymlops.rollout.policy`. It applies decisions — weights
through the Serve controller (user_config only), aliases by compare-and-set, one registry event
per decision with its inputs — and persists its state, so a restarted actor continues where
it was.

Evidence comes from the model's drift monitor (per-version health and accuracy since the
step began). With ``watch``, the controller also reads the registry's events: each
``retrain_finished`` that registered a new `candidate` starts a rollout (queued while
another runs) — the monitor records, the controller reacts, neither calls the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from raymlops.actors import NAMESPACE, controller_name, find_actor, monitor_name, schedule_own
from raymlops.config import RolloutConfig
from raymlops.rollout.evidence import evidence_of, plan_of
from raymlops.rollout.policy import (
    FINAL_PHASES,
    RETIRE_TRAFFIC,
    Decision,
    Retirement,
    RolloutState,
    alias_moves,
    command,
    decide,
    decision_from_dict,
    decision_to_dict,
    retirement_after,
    retrained_versions,
    rollback_after_promotion,
    rollback_now,
    start,
    traffic_for,
)
from raymlops.supervise import LoopFailures

if TYPE_CHECKING:
    from raymlops.rollout.metrics import RolloutMetrics

log = logging.getLogger(__name__)
ACTOR = "rollout-controller"
CALL_TIMEOUT_S = 30.0


class RolloutController:
    """Runs one model's rollouts (wrap with ``ray.remote``)."""

    def __init__(self, model: str, registry: dict[str, Any]) -> None:
        from raymlops import filesystem
        from raymlops.config import RegistryConfig
        from raymlops.registry import Registry

        self.model = model
        registry_cfg = RegistryConfig.model_validate(registry)
        self.registry = Registry.from_config(registry_cfg)
        self.state_uri = filesystem.join(str(registry_cfg.artifact_root), "_rollout", model, "state.json")
        self.cfg: RolloutConfig | None = None
        self.state: RolloutState | None = None
        self.retire: Retirement | None = None
        self.last: dict[str, Any] = {}
        self.watching: dict[str, Any] | None = None  # the rollout config for retrained versions
        self.event_cursor = 0
        self._task: asyncio.Task | None = None
        self._metrics: RolloutMetrics | None = None
        self.intent: dict[str, Any] | None = None  # a decision persisted before its side effects, until applied
        self.loop_failures = LoopFailures(self._loop_failed)
        self._restore()
        schedule_own("run")

    # ------------------------------------------------------------------ persistence

    def _restore(self) -> None:
        from raymlops import filesystem
        if filesystem.exists(self.state_uri):
            saved = json.loads(filesystem.read_bytes(self.state_uri))
            self.cfg = RolloutConfig.model_validate(saved["config"]) if saved.get("config") else None
            self.state = RolloutState(**saved["state"]) if saved.get("state") else None
            self.retire = Retirement(**saved["retire"]) if saved.get("retire") else None
            self.last = saved.get("last", {})
            self.watching, self.event_cursor = saved.get("watching"), saved.get("event_cursor", 0)
            self.intent = saved.get("intent")

    def _persist(self) -> None:
        from raymlops import filesystem

        body = {"config": self.cfg.model_dump(mode="json") if self.cfg else None,
                "state": self.state.to_dict() if self.state else None,
                "retire": dict(self.retire.__dict__) if self.retire else None, "last": self.last,
                "watching": self.watching, "event_cursor": self.event_cursor, "intent": self.intent}
        filesystem.write_atomically(self.state_uri, json.dumps(body).encode())

    def _ensure_loop(self) -> None:
        if self._task is None or self._task.done():
            from raymlops.supervise import supervised

            self._task = asyncio.get_running_loop().create_task(supervised("control", self._loop, self.loop_failures))

    def _loop_failed(self, loop: str) -> None:
        self._metrics_now().loop_restarted(loop)

    # ------------------------------------------------------------------ commands

    async def start(self, config: dict[str, Any]) -> dict[str, Any]:
        """Start a rollout of the `candidate` version against the `champion`.

        Raises:
            RolloutError: a rollout is already active, or there is no distinct candidate.
        """
        cfg = RolloutConfig.model_validate(config)
        aliases = await asyncio.to_thread(self.registry.aliases, self.model)
        decision = start(plan_of(cfg), self.state, self.model, aliases.get("champion"), aliases.get("candidate"),
                         time.time())
        self.cfg, self.retire = cfg, None
        await self._apply(decision)
        self._ensure_loop()
        return await self.status()

    async def watch(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """Roll out every version a retraining registers as `candidate`, with ``config`` (a
        RolloutConfig's fields); ``None`` stops watching. Only events after this call count."""
        self.watching = RolloutConfig.model_validate(config).model_dump(mode="json") if config is not None else None
        if self.watching is not None and not self.event_cursor:
            latest = await asyncio.to_thread(self.registry.events, self.model, limit=1)
            self.event_cursor = latest[-1].id if latest else 0
        await asyncio.to_thread(self._persist)
        self._ensure_loop()
        return await self.status()

    async def command(self, name: str) -> dict[str, Any]:
        """pause | resume | promote | abort | rollback.

        Raises:
            NotFoundError: the model has no rollout.
            RolloutError: the command does not apply now.
        """
        from raymlops.errors import NotFoundError

        if self.state is None or self.cfg is None:
            raise NotFoundError(what="rollout of model", name=self.model)
        now = time.time()
        if name == "rollback" and self.state.phase == "promoted":
            decision = rollback_after_promotion(self.state, self.retire, now)
            self.retire = None
        elif name == "rollback":
            decision = rollback_now(self.state, now)
        else:
            decision = command(plan_of(self.cfg), self.state, name, now)
        await self._apply(decision)
        self._ensure_loop()
        return await self.status()

    async def run(self) -> None:
        """Start the control loop if it is not running. The actor calls it on itself when it
        starts (a restarted actor too), so a restored rollout continues without a caller."""
        self._ensure_loop()

    def pid(self) -> int:
        """The actor's process id (fault-injection tests kill it)."""
        import os

        return os.getpid()

    async def status(self) -> dict[str, Any]:
        """The rollout's state, its last decision and the retirement of the old champion."""
        return {"model": self.model, "state": self.state.to_dict() if self.state else None,
                "config": self.cfg.model_dump(mode="json") if self.cfg else None, "last_decision": self.last,
                "retire": dict(self.retire.__dict__) if self.retire else None,
                "watching": self.watching is not None, "event_cursor": self.event_cursor,
                "pending_decision": self.intent, "loops": self.loop_failures.to_dict()}

    # ------------------------------------------------------------------ the control loop

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.poll_interval_s if self.cfg else 5)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - one failed tick is logged and counted; the next one retries
                self.last = {"action": "error", "reasons": [f"{type(exc).__name__}: {exc}"], "time": time.time()}
                self.loop_failures("tick", exc)
                log.exception("rollout tick of %s failed", self.model)
            self._publish()

    def _metrics_now(self) -> RolloutMetrics:
        from raymlops.rollout.metrics import RolloutMetrics

        if self._metrics is None:
            self._metrics = RolloutMetrics(self.model)
        return self._metrics

    def _publish(self) -> None:
        metrics = self._metrics_now()
        state = self.state
        weight = self.last.get("weight")
        weight = weight if isinstance(weight, (int, float)) else 0.0
        metrics.publish(state.phase if state else None, state.step if state else None, float(weight),
                              state.canary_version if state else None)

    async def _tick(self) -> None:
        if self.intent is not None:  # a decision cut short (a crash between its side effects): finish it first
            await self._apply(decision_from_dict(self.intent))
        now = time.time()
        if self.retire is not None and self.retire.due(now):
            await self._traffic(dict(RETIRE_TRAFFIC))
            await asyncio.to_thread(self.registry.add_event, self.model, "rollout_retired", self.retire.version,
                                    {"reason": "rollback window over"}, ACTOR)
            self.retire = None
            await asyncio.to_thread(self._persist)
        if self.state is not None and self.state.phase == "running":
            decision = decide(plan_of(self.cfg), self.state, await self._evidence(), now)
            if decision.action == "wait":
                self.last = {"action": "wait", "reasons": list(decision.reasons), "numbers": decision.numbers,
                             "time": now}
                self.state = decision.state
                return
            await self._apply(decision)
        if self.watching is not None and (self.state is None or self.state.phase in FINAL_PHASES):
            await self._start_retrained()

    async def _start_retrained(self) -> None:
        """Start a rollout of the oldest retrained candidate not rolled out yet (if it is still the candidate)."""
        watching = self.watching
        if watching is None:
            return
        events = await asyncio.to_thread(self.registry.events, self.model, kinds=["retrain_finished"], limit=None)
        pending = retrained_versions(events, self.event_cursor)
        if not pending:
            return
        event_id, version = pending[0]
        self.event_cursor = event_id
        aliases = await asyncio.to_thread(self.registry.aliases, self.model)
        current = aliases.get("candidate")
        superseded = len(pending) > 1 or version <= aliases.get("champion", 0) or (current or 0) > version
        if current != version and superseded:
            await asyncio.to_thread(self._persist)  # superseded meanwhile: the newer event starts its own
            return
        if aliases.get("candidate") != version:  # queued behind the rollout that just ended: its turn now
            await asyncio.to_thread(self.registry.set_alias, self.model, "candidate", version, current, ACTOR)
        await self.start(watching)

    async def _evidence(self):
        monitor = find_actor(monitor_name(self.model), f"drift monitor of model {self.model}")
        since = self.state.step_started
        health, accuracy = await asyncio.wait_for(
            asyncio.gather(monitor.health.remote(since), monitor.accuracy.remote(since)), timeout=CALL_TIMEOUT_S)
        return evidence_of(self.state, health, accuracy, self.cfg.gates)

    # ------------------------------------------------------------------ applying decisions

    async def _traffic(self, changes: dict[str, Any]) -> None:
        from raymlops.serve.writer import change_traffic_in_cluster

        app_name = self.cfg.app_name if self.cfg is not None else None
        await asyncio.to_thread(change_traffic_in_cluster, app_name or self.model, changes)

    async def _apply(self, decision: Decision) -> None:
        """Apply a decision idempotently: it is persisted as the intent first, an alias already at its
        target counts as moved, traffic is set to what the decision names, and the intent is cleared
        with the new state — so a controller restarted anywhere in between finishes it."""
        from raymlops.errors import AliasConflictError, NotFoundError

        self.intent = decision_to_dict(decision)
        await asyncio.to_thread(self._persist)
        for alias, version, expected in alias_moves(decision):
            if version is not None:  # the champion moves strictly: a conflict stops the decision
                try:
                    await asyncio.to_thread(self.registry.set_alias, self.model, alias, version, expected, ACTOR)
                except AliasConflictError:
                    if (await asyncio.to_thread(self.registry.aliases, self.model)).get(alias) != version:
                        raise
                continue
            try:
                await asyncio.to_thread(self.registry.delete_alias, self.model, alias, expected, ACTOR)
            except (AliasConflictError, NotFoundError):
                pass  # the alias moved on meanwhile: leave the newer one alone
        traffic = traffic_for(decision)
        if traffic is not None:
            await self._traffic(traffic)
        window_s = self.cfg.rollback_window_s if self.cfg is not None else 0.0
        self.retire = retirement_after(decision, window_s, time.time()) or self.retire
        self.state, self.intent = decision.state, None
        await self._record(decision)

    async def _record(self, decision: Decision) -> None:
        self.last = {"action": decision.action, "reasons": list(decision.reasons), "numbers": decision.numbers,
                     "weight": decision.weight, "time": time.time()}
        payload = {**self.last, "state": decision.state.to_dict()}
        kind = "advance" if decision.action == "start" else decision.action
        await asyncio.to_thread(self.registry.add_event, self.model, f"rollout_{kind}",
                                decision.state.canary_version, payload, ACTOR)
        await asyncio.to_thread(self._persist)
        self._publish()


def get_or_create_controller(model: str, registry: dict[str, Any], num_cpus: float = 0.05):
    """The model's rollout controller, created (detached, restartable) when missing. Needs a Ray driver."""
    import ray

    remote: Any = ray.remote(RolloutController)
    handle = remote.options(name=controller_name(model), namespace=NAMESPACE, lifetime="detached", get_if_exists=True,
                            max_restarts=-1, max_task_retries=0, num_cpus=num_cpus, max_concurrency=16)
    return handle.remote(model, registry)
