"""What the model server shows of itself: status bodies without storage paths, answers kept
briefly so that status calls do not each reach the monitor or Serve's controller, and the Open
Inference Protocol's error body. Pure: no Ray, no FastAPI.
"""

from __future__ import annotations

import re
import time
from typing import Any, Awaitable, Callable

#: Keys of a status body that name storage locations.
PATH_KEYS = frozenset({"prediction_log", "state_root", "artifact_uri", "artifact_root", "labels_root"})
#: URIs (``s3://…``, ``file:///…``) and absolute paths of two or more segments.
_PATH = re.compile(r"(?<![\w.])(?:[a-z][a-z0-9+.-]*://[^\s'\"()<>,]*[^\s'\"()<>,:.]|/(?:[\w.@=+~-]+/)+[\w.@=+~-]*)")


def redact(value: Any) -> Any:
    """A JSON value with storage locations left out: path-valued keys dropped, paths in strings
    replaced by ``<storage>``."""
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items() if k not in PATH_KEYS}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _PATH.sub("<storage>", value)
    return value


class TimedCache:
    """Answers kept for ``ttl_s`` seconds by key; concurrent misses of one key share one call."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._kept: dict[Any, tuple[float, Any]] = {}
        self.calls = 0

    async def get(self, key: Any, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The kept answer of ``key``, or ``await fetch()`` kept from now on (errors are not kept)."""
        import asyncio

        kept = self._kept.get(key)
        now = self.clock()
        if kept is not None and now - kept[0] < self.ttl_s:
            answer = kept[1]
            return await asyncio.shield(answer) if isinstance(answer, asyncio.Future) else answer
        future = asyncio.ensure_future(fetch())
        self._kept[key] = (now, future)
        self.calls += 1
        try:
            answer = await asyncio.shield(future)
        except BaseException:
            self._kept.pop(key, None)
            raise
        self._kept[key] = (now, answer)
        return answer


def v2_error(field: str, problem: str) -> dict[str, str]:
    """The Open Inference Protocol's error body: one ``error`` string (tritonclient prints it)."""
    return {"error": f"{field}: {problem}"}
