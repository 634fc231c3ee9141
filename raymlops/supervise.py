"""Supervised background loops: a loop that raises is logged, counted and started again with
backoff, so a storage or database outage never silently ends detection, persistence or a
rollout. No Ray here; actors pass what to count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

log = logging.getLogger(__name__)

#: A run that lasted this long before failing starts the backoff again from its first step.
HEALTHY_RUN_S = 60.0


async def supervised(name: str, run: Callable[[], Awaitable[None]], on_failure: Callable[[str, BaseException], None],
                     first_delay_s: float = 0.5, max_delay_s: float = 30.0) -> None:
    """Run ``run()`` until it returns; each time it raises, call ``on_failure(name, error)``, wait
    (0.5 s, doubling up to ``max_delay_s``) and run it again. Cancellation ends it."""
    delay = first_delay_s
    while True:
        started = time.monotonic()
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the point: any failure restarts the loop
            log.exception("background loop %s failed; restarting in %.1f s", name, delay)
            try:
                on_failure(name, exc)
            except Exception:  # noqa: BLE001 - counting must never stop the supervisor
                log.exception("counting the failure of %s failed", name)
        if time.monotonic() - started >= HEALTHY_RUN_S:
            delay = first_delay_s
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)


class LoopFailures:
    """What the supervisor saw per loop: restarts and the last error, for status and metrics."""

    def __init__(self, counter: Callable[[str], None] | None = None) -> None:
        self.restarts: dict[str, int] = {}
        self.last_error: dict[str, str] = {}
        self.counter = counter

    def __call__(self, name: str, error: BaseException) -> None:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self.last_error[name] = f"{type(error).__name__}: {error}"
        if self.counter is not None:
            self.counter(name)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """Per loop that ever failed: its restarts and last error."""
        return {name: {"restarts": count, "last_error": self.last_error.get(name)}
                for name, count in sorted(self.restarts.items())}
