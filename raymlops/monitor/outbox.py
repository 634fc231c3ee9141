"""Registry events the monitor could not write (the database briefly unreachable): kept in order
and written when it is back, so a drift verdict never loses its event. Bounded; an event dropped
for lack of room is counted."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from typing import Any

log = logging.getLogger(__name__)


class EventOutbox:
    """Write a model's registry events now, or later in order when the database refuses.

    Args:
        registry: the registry.
        model: the model the events are about.
        counters: the monitor's counters (``events_pending``, ``events_dropped``, ``events_late``).
        capacity: events kept at most while the database is away.
    """

    def __init__(self, registry: Any, model: str, counters: Counter, capacity: int = 10_000) -> None:
        self.registry, self.model, self.counters = registry, model, counters
        self.pending: deque[tuple[str, int | None, dict[str, Any]]] = deque()
        self.capacity = capacity
        self.last_error: str | None = None

    async def add(self, kind: str, version: int | None, payload: dict[str, Any]) -> Any:
        """Write the event now (returns it), or keep it for :meth:`drain` (returns None)."""
        if not self.pending:
            try:
                return await asyncio.to_thread(self.registry.add_event, self.model, kind, version, payload)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                self.last_error = f"registry unreachable; {kind} event kept to be written later: {exc}"
                log.warning("%s: %s", self.model, self.last_error)
        if len(self.pending) >= self.capacity:
            self.pending.popleft()
            self.counters["events_dropped"] += 1
        self.pending.append((kind, version, payload))
        self.counters["events_pending"] = len(self.pending)
        return None

    async def drain(self) -> int:
        """Write the kept events in order until one fails; returns how many were written."""
        written = 0
        while self.pending:
            kind, version, payload = self.pending[0]
            try:
                await asyncio.to_thread(self.registry.add_event, self.model, kind, version, payload)
            except Exception as exc:  # noqa: BLE001 - still away: try again later
                self.last_error = f"registry unreachable; {len(self.pending)} events kept: {exc}"
                break
            self.pending.popleft()
            written += 1
            self.counters["events_late"] += 1
        self.counters["events_pending"] = len(self.pending)
        if not self.pending:
            self.last_error = None
        return written
