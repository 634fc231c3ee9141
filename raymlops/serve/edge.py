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
    ConflictError,
    EnvironmentMismatchError,
    InvalidRequestError,
    LimitExceededError,
    ModelOutputError,
    NotFoundError,
    PermissionDeniedError,
    RaymlopsError,
    RolloutError,
)

#: The response header carrying the request id the server issued (labels refer to it).
REQUEST_ID_HEADER = "x-raymlops-request-id"

#: Error type → HTTP status; the first match wins, so subclasses come before their bases.
ERROR_STATUS: tuple[tuple[type[RaymlopsError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (RolloutError, 409),
    (EnvironmentMismatchError, 409),
    (AliasConflictError, 409),
    (ConflictError, 409),
    (LimitExceededError, 413),
    (InvalidRequestError, 422),
    (ClusterError, 503),
    (ModelOutputError, 500),
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
    if isinstance(error, ModelOutputError):
        return "model"
    if isinstance(error, ConflictError):
        return str(error.what)
    return "request"


def error_response(status: int, field: str, problem: str, request_id: str, headers: dict | None = None,
                   v2: bool = False) -> JSONResponse:
    """The one error body of the HTTP edge: the field and the problem (on v2 routes the Open
    Inference Protocol's ``{"error": "<field>: <problem>"}``; the request id is in a header)."""
    from raymlops.serve.exposure import v2_error

    body = v2_error(field, problem) if v2 else {"error": {"field": field, "problem": problem}, "request_id": request_id}
    return JSONResponse(body, status_code=status, headers={**(headers or {}), REQUEST_ID_HEADER: request_id})


def problem_for(error: RaymlopsError) -> str:
    """What is wrong, for the error body (a bad request's own problem; else the whole message)."""
    return error.problem if isinstance(error, InvalidRequestError) else str(error)


def response_for(error: RaymlopsError, request_id: str, v2: bool = False) -> JSONResponse:
    """The error response of a raymlops error (401s say which scheme to use)."""
    status = status_for(error)
    problem = problem_for(error)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return error_response(status, field_for(error), problem, request_id, headers, v2)


#: How deep JSON bodies may nest (a v2 tensor of images needs 5 levels).
MAX_JSON_DEPTH = 32


#: Every byte but JSON's brackets and quotes: deleted before the brackets are counted.
NOT_BRACKETS_OR_QUOTES = bytes(code for code in range(256) if code not in b'[]{}"')


def text_depth(raw: bytes) -> int:
    """The nesting depth of a JSON text without backslash escapes (brackets inside strings do
    not count: a bracket is inside a string when an odd number of quotes precede it)."""
    import numpy as np

    kept = np.frombuffer(raw.translate(None, NOT_BRACKETS_OR_QUOTES), dtype=np.uint8)
    quoted = np.cumsum(kept == ord('"')) % 2 == 1
    steps = ((kept == ord("[")) | (kept == ord("{"))).astype(np.int32) - ((kept == ord("]")) | (kept == ord("}")))
    return int(np.cumsum(np.where(quoted, 0, steps)).max()) if len(kept) else 0


def nesting_depth(value: Any) -> int:
    """The exact nesting depth of parsed JSON (iterative: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """JSON bytes → a value, nested at most ``max_depth`` levels.

    Raises:
        InvalidRequestError: not JSON, or nested deeper.
    """
    too_deep = InvalidRequestError(field="body", problem=f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise InvalidRequestError(field="body", problem=f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
    opened = raw.count(b"[") + raw.count(b"{")  # fewer brackets than the limit: nothing to look at
    if opened > max_depth and (nesting_depth(value) if b"\\" in raw else text_depth(raw)) > max_depth:
        raise too_deep
    return value


async def read_body(request: Request, max_bytes: int, allow_empty: bool = False) -> Any:
    """The request's JSON body, refused before it is read when its Content-Length is over
    ``max_bytes``, and while it is read when the stream runs over. An empty body is None when
    ``allow_empty``.

    Raises:
        LimitExceededError: the body is larger than ``max_bytes``.
        InvalidRequestError: it is not JSON, or nested deeper than :data:`MAX_JSON_DEPTH`.
    """
    raw = await read_bytes(request, max_bytes)
    if allow_empty and not raw:
        return None
    return parse_json(raw)


async def read_bytes(request: Request, max_bytes: int) -> bytes:
    """The request's body, refused before it is read when its Content-Length is over
    ``max_bytes``, and while it is read when the stream runs over.

    Raises:
        LimitExceededError: the body is larger than ``max_bytes``.
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
    return b"".join(chunks)


class Outcome:
    """What a request turned out to be, for its metrics and records."""

    __slots__ = ("version", "arm", "latency_ms", "recorded")

    def __init__(self) -> None:
        self.version: Optional[int] = None
        self.arm = "none"
        self.latency_ms = 0.0
        self.recorded = False
