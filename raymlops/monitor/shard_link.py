"""How the shards of one model's monitor talk (see :mod:`raymlops.monitor.shards`): the other
shards send shard 0 their reports; shard 0 gathers their health rows, labelled outcomes and
statuses, and routes feedback labels to the shard that holds each answer. Every call has a
timeout; a shard that does not answer is named in the error or the status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from raymlops.actors import NAMESPACE, monitor_name
from raymlops.errors import NotFoundError, RaymlopsError
from raymlops.types import DriftReport

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0


def _handle(model: str, shard: int) -> Any:
    import ray

    try:
        return ray.get_actor(monitor_name(model, shard), namespace=NAMESPACE)
    except ValueError:
        raise NotFoundError(what=f"monitor shard {shard} of model", name=model) from None


async def _call(model: str, shard: int, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> Any:
    """``method(*args)`` on shard ``shard``; a raymlops error raised there is raised here."""
    import ray

    try:
        return await asyncio.wait_for(getattr(_handle(model, shard), method).remote(*args), timeout=timeout_s)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RaymlopsError):
            raise exc.cause from None
        raise


async def forward_reports(monitor: Any, version: int, rows: int, reports: list[DriftReport]) -> None:
    """Send one checked window's reports to shard 0 (counted in ``reports_unsent`` when it cannot
    be reached: its merged verdict then waits for the next window)."""
    try:
        await _call(monitor.model, 0, "merge_reports", version, rows, [r.to_dict() for r in reports], monitor.shard)
    except Exception as exc:  # noqa: BLE001 - counted and logged; the shard lives on
        monitor.counters["reports_unsent"] += len(reports)
        monitor.last_error = f"reports not sent to shard 0: {type(exc).__name__}: {exc}"
        log.warning("monitor shard %s of %s: %s", monitor.shard, monitor.model, monitor.last_error)


async def from_others(monitor: Any, method: str, *args: Any, timeout_s: float = CALL_TIMEOUT_S) -> list[Any]:
    """``method(*args)`` of every other shard (1 … shards-1), in shard order.

    Raises:
        NotFoundError: a shard is not running.
    """
    return list(await asyncio.gather(*(_call(monitor.model, k, method, *args, timeout_s=timeout_s)
                                       for k in range(1, monitor.cfg.shards))))


async def merged_health_stats(monitor: Any) -> Any:
    """Health stats holding the recent rows of every shard."""
    from raymlops.monitor.shards import merged_health

    parts = [monitor.health_state(), *await from_others(monitor, "health_state")]
    return merged_health(parts, monitor.health_stats.max_rows)


async def merged_feedback(monitor: Any) -> Any:
    """A feedback join holding the labelled outcomes of every shard."""
    from raymlops.monitor.feedback import FeedbackJoin
    from raymlops.monitor.shards import merged_outcomes

    parts = [monitor.outcomes(), *await from_others(monitor, "outcomes")]
    return FeedbackJoin(outcomes=merged_outcomes(parts, monitor.feedback_join.window))


async def route_feedback(monitor: Any, items: list[dict[str, Any]], label_column: str, now: float) -> int:
    """Label each request on the shard that remembers it; all or nothing across shards (every
    shard checks its share before any records it). Returns the rows labelled.

    Raises:
        NotFoundError: request ids no shard remembers (nothing recorded).
        ConflictError, InvalidRequestError: as :meth:`FeedbackJoin.label` (nothing recorded).
    """
    ids = [item["request_id"] for item in items]
    known = [set(monitor.known_requests(ids)), *map(set, await from_others(monitor, "known_requests", ids))]
    unknown = [rid for rid in ids if not any(rid in shard_ids for shard_ids in known)]
    if unknown:
        raise NotFoundError(what="answered request ids (nothing was recorded)", name=", ".join(unknown[:20]))
    shares: dict[int, list[tuple[str, list]]] = {}
    for item in items:
        shard = next(k for k, shard_ids in enumerate(known) if item["request_id"] in shard_ids)
        shares.setdefault(shard, []).append((item["request_id"], item["labels"]))
    for dry_run in (True, False):
        for shard, share in sorted(shares.items()):
            if shard == 0:
                rows = monitor.feedback_join.label(share, now, label_column, dry_run)
                if not dry_run:
                    monitor.counters["labels"] += rows
            else:
                await _call(monitor.model, shard, "feedback", [{"request_id": r, "labels": labels}
                                                               for r, labels in share], label_column, dry_run)
    return sum(len(labels) for share in shares.values() for _, labels in share)


async def shard_summaries(monitor: Any, own: dict[str, Any]) -> list[dict[str, Any]]:
    """Each shard's rows, windows and errors for ``drift status`` (an unreachable one says so)."""
    from raymlops.monitor.shards import shard_summary

    summaries = [shard_summary(0, own)]
    for shard in range(1, monitor.cfg.shards):
        try:
            summaries.append(shard_summary(shard, await _call(monitor.model, shard, "status")))
        except Exception as exc:  # noqa: BLE001 - shown, not raised: the status of the rest still answers
            summaries.append(shard_summary(shard, None, f"{type(exc).__name__}: {exc}"))
    return summaries
