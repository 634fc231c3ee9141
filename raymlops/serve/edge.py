"""The model server's HTTP edge: reading a body within its limits, the one table that turns
raymlops errors into HTTP statuses, the error body, and what a request turned out to be.

Domain errors carry no HTTP status; only :data:`ERROR_STATUS` decides it, here.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from fastapi import Request
from fastapi.responses import JSONResponse

from raymlops.errors import (
    AliasConflictError,
    AuthenticationError,
    ClusterError,
    EnvironmentMismatchError,
    InvalidRequestError,
    LimitExceededError,
    NotFoundError,
    PermissionDeniedError,
    RaymlopsError,
    RolloutError,
)

#: Error type → HTTP status; the first match wins, so subclasses come before their bases.
ERROR_STATUS: tuple[tuple[type[RaymlopsError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (RolloutError, 409),
    (EnvironmentMismatchError, 409),
    (AliasConflictError, 409),
    (LimitExceededError, 413),
    (InvalidRequestError, 422),
    (ClusterError, 503),
    (RaymlopsError, 400),
)


def status_for(error: RaymlopsError) -> int:
    """The HTTP status of a raymlops error."""
    return next(status for kind, status in ERROR_STATUS if isinstance(error, kind))


def field_for(error: RaymlopsError) -> str:
    """The part of the request an error is about, for the error body."""
    if isinstance(error, (AuthenticationError, PermissionDeniedError)):
        return "authorization"
    if isinstance(error, InvalidRequestError):
        return str(error.field)
    if isinstance(error, NotFoundError):
        return str(error.what)
    if isinstance(error, ClusterError):
        return "cluster"
    if isinstance(error, RolloutError):
        return "rollout"
    if isinstance(error, EnvironmentMismatchError):
        return "version"
    return "request"


def error_response(status: int, field: str, problem: str, request_id: str, headers: dict | None = None) -> JSONResponse:
    """The one error body of the HTTP edge: the field and the problem."""
    return JSONResponse({"error": {"field": field, "problem": problem}, "request_id": request_id},
                        status_code=status, headers=headers)


def response_for(error: RaymlopsError, request_id: str) -> JSONResponse:
    """The error response of a raymlops error (401s say which scheme to use)."""
    status = status_for(error)
    problem = error.problem if isinstance(error, InvalidRequestError) else str(error)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return error_response(status, field_for(error), problem, request_id, headers)


async def read_body(request: Request, max_bytes: int, allow_empty: bool = False) -> Any:
    """The request's JSON body, refused before it is read when its Content-Length is over
    ``max_bytes``, and while it is read when the stream runs over. An empty body is None when
    ``allow_empty``.

    Raises:
        LimitExceededError: the body is larger than ``max_bytes``.
        InvalidRequestError: it is not JSON.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise LimitExceededError(field="body", size=int(declared), limit=max_bytes, unit="bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise LimitExceededError(field="body", size=f"more than {max_bytes}", limit=max_bytes, unit="bytes")
        chunks.append(chunk)
    if allow_empty and not size:
        return None
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise InvalidRequestError(field="body", problem=f"not valid JSON ({getattr(exc, 'msg', exc)})") from None


class Outcome:
    """What a request turned out to be, for its metrics and records."""

    __slots__ = ("version", "arm", "latency_ms", "recorded")

    def __init__(self) -> None:
        self.version: Optional[int] = None
        self.arm = "none"
        self.latency_ms = 0.0
        self.recorded = False
