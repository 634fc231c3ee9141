"""The drift monitor's read-only answers — status, health, accuracy, the drift report, what a
sharded monitor's shards ask of each other — kept apart from the actor's ingest and detection
(:class:`~raymlops.monitor.actor.DriftMonitor` inherits them)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from raymlops.monitor import shard_link

if TYPE_CHECKING:
    from raymlops.registry import Registry
from raymlops.monitor.status import assemble_status, reports_by_version, version_detail, with_estimates


class MonitorQueries:
    """Answers over a :class:`~raymlops.monitor.actor.DriftMonitor`'s state (a mixin: the actor
    holds the state)."""

    # the state the actor holds (see DriftMonitor.__init__)
    cfg: Any
    model: str
    shard: int
    checkers: dict
    health_stats: Any
    feedback_join: Any
    counters: Any
    history: Any
    last_error: str | None
    last_reports: dict
    ledger: Any
    log_root: str
    loop_failures: Any
    online: Any
    outbox: Any
    plan: Any
    queue: Any
    recent: dict
    registry: Registry
    restored_snapshot_age_s: float | None
    retrainer: Any
    started_at: float
    states: Any
    windows: Any

    async def _checker(self, version: int) -> Any:  # the actor's
        raise NotImplementedError

    def shards(self) -> int:
        """How many shards the model's monitor has (replicas' sinks ask shard 0)."""
        return self.cfg.shards

    def known_requests(self, request_ids: list[str]) -> list[str]:
        """The ids among ``request_ids`` whose answers this shard remembers."""
        return [rid for rid in request_ids if rid in self.feedback_join.answers]

    def outcomes(self) -> dict[int, list]:
        """This shard's labelled outcomes per version, ``(time, outcome)`` pairs."""
        return {version: list(pairs) for version, pairs in self.feedback_join.outcomes.items()}

    def health_state(self) -> dict[str, Any]:
        """This shard's recent health rows (:meth:`HealthStats.state`)."""
        return self.health_stats.state()

    async def accuracy(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        """Per version since a UNIX time: labelled rows and accuracy measured from feedback (or
        MAE/RMSE of a regression), and for a classifier whose reference has labels the accuracy
        estimated from its confidence without labels (``estimated_accuracy``, ``estimated_rows``);
        of every shard."""
        if self.cfg.shards > 1 and not self.shard:
            join, health = await asyncio.gather(shard_link.merged_feedback(self), shard_link.merged_health_stats(self))
            return with_estimates(join.accuracy(since), self.checkers, health, since)
        return self._accuracy(since)

    def _accuracy(self, since: float | None = None) -> dict[str, dict[str, Any]]:
        return with_estimates(self.feedback_join.accuracy(since), self.checkers, self.health_stats, since)

    async def status(self) -> dict[str, Any]:
        """Drift state and latest reports per version, counters, calibration and restart information."""
        versions = sorted({*self.checkers, *self.windows.open, *self.health_stats.rows})
        status = {**assemble_status(
            self.model, versions, {v: self.states.drifting(v) for v in versions}, dict(self.last_reports),
            {v: w.rows for v, w in self.windows.open.items()}, {v: self.online.state_of(v) for v in versions},
            len(self.queue), {**self.counters, **self.online.calibration()}, time.time() - self.started_at,
            self.restored_snapshot_age_s, self.log_root,
            self.last_error or self.outbox.last_error or self.retrainer.last_error,
            {"enabled": self.cfg.retrain.enabled, **self.retrainer.trigger.state()},
            self._version_details(versions)), "loops": self.loop_failures.to_dict(), "shard": self.shard}
        if self.cfg.shards > 1 and not self.shard:
            status["shards"] = await shard_link.shard_summaries(self, status)
        return status

    def _version_details(self, versions: list[int]) -> dict[int, dict[str, Any]]:
        measured = self.feedback_join.accuracy()  # once for every version
        side = self.health_stats.side
        return {v: version_detail(self.checkers.get(v), self.ledger.of(v, self.plan), measured.get(str(v), {}),
                                  {arm: side[f"{v}/{arm}"] for arm in ("pinned", "shadow") if side[f"{v}/{arm}"]})
                for v in versions}

    async def report(self, version: int | None = None) -> dict[str, Any]:
        """The drift report of ``version`` (unset: the champion, else the newest version seen): per
        feature the reference against the last checked window, p-values over time, and the
        timeline of drift, retraining and rollout events.

        Raises:
            NotFoundError: no such version of the model.
        """
        from raymlops.errors import NotFoundError
        from raymlops.monitor.report import version_report

        if version is None:
            try:
                version = int(await asyncio.to_thread(self.registry.resolve, self.model, "champion"))
            except NotFoundError:
                seen = sorted({*self.checkers, *self.health_stats.rows})
                if not seen:
                    raise
                version = int(seen[-1])
        assert version is not None
        checker = await self._checker(version)
        events = await asyncio.to_thread(self.registry.events, self.model, None, None, None, 2000)
        return version_report(self.model, version, checker, self.recent.get(version), list(self.history), events,
                              self.states.drifting(version), self._version_details([version])[version],
                              reports_by_version(dict(self.last_reports)).get(str(version), {}))

    async def health(self, since: float | None = None) -> dict[str, dict]:
        """Per-version health stats (count, error rate, latency percentiles, predictions) since a
        UNIX time, of every shard."""
        health = self.health_stats
        if self.cfg.shards > 1 and not self.shard:
            health = await shard_link.merged_health_stats(self)
        return {str(v): stats.to_dict() for v, stats in health.all(since).items()}

    def config(self) -> dict[str, Any]:
        """The settings this monitor runs with (those of the start that created it)."""
        return self.cfg.model_dump(mode="json")

    def ping(self) -> bool:
        """Liveness."""
        return True

    def pid(self) -> int:
        """The actor's process id (fault-injection tests kill it)."""
        import os

        return os.getpid()
