"""Feedback labels at the model server: only for answers this cluster's servers issued, and only
once their records reached the monitor. Every answer's request id is made by the server
(:func:`raymlops.signing.issue_request_id`), so a label for an id nobody was given is refused at
once, and a label for a genuine id that is still on its way to the monitor (in some replica's
buffer) waits for it briefly instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from raymlops.errors import NotFoundError
from raymlops.serve import operations
from raymlops.signing import is_issued

#: Pause between attempts while a genuine answer's records are still on their way.
RETRY_S = 0.05


def check_issued(items: list[dict[str, Any]], key: bytes) -> None:
    """Refuse items whose request id no model server of this cluster issued.

    Raises:
        NotFoundError: naming the foreign ids (up to 20); nothing is recorded.
    """
    foreign = [item["request_id"] for item in items if not is_issued(item["request_id"], key)]
    if foreign:
        raise NotFoundError(what="request ids issued by this server (labels only fit answers it gave; nothing was "
                            "recorded)", name=", ".join(foreign[:20]))


async def submit_labels(model: str, items: list[dict[str, Any]], label_column: str, stream: Any, key: bytes,
                        wait_s: float) -> int:
    """Label answered requests through the monitor; returns the rows labelled.

    This replica's buffered records go first; answers given by other replicas arrive within their
    flush interval, so ids the monitor does not know yet are retried for up to ``wait_s``.

    Raises:
        NotFoundError: foreign ids, or ids the monitor still does not know after ``wait_s``
            (answers older than it remembers).
        ConflictError: a request already labelled.
        InvalidRequestError: labels that do not fit their requests.
    """
    check_issued(items, key)
    await stream.settle()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return await operations.submit_feedback(model, items, label_column)
        except NotFoundError:
            if time.monotonic() >= deadline:
                raise
            await asyncio.sleep(RETRY_S)
