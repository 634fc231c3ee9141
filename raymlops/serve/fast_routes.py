"""Prediction requests ahead of FastAPI's middleware and router.

A one-row prediction spends about a sixth of a replica's CPU in FastAPI's and Starlette's layers
(five middlewares, route matching, dependency solving) before the model server's handler runs,
and that handler already does everything those layers would: it reads and bounds the body
itself, maps every error to its status and never lets an exception escape. So the model
server's app answers ``POST`` to the prediction routes (:data:`FAST_ROUTES`) by calling the
replica's handler directly; every other request, and any prediction path that does not match
exactly (a trailing slash, another method), goes through FastAPI as before, where the same
routes stay declared for the OpenAPI schema.
"""

from __future__ import annotations

import re
from typing import Any, MutableMapping, Optional

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.requests import Request

#: POST paths (below the app's route prefix) answered ahead of FastAPI → the model server's
#: method that answers them; the groups are its keyword arguments, as FastAPI's ``{...}`` would
#: match them (one path segment each).
FAST_ROUTES: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"/v2/models/(?P<name>[^/]+)/infer"), "infer"),
    (re.compile(r"/v2/models/(?P<name>[^/]+)/versions/(?P<version>[^/]+)/infer"), "infer_version"),
    (re.compile(r"/v1/models/(?P<name>[^/]+)/predict"), "predict"),
)


def fast_route(scope: MutableMapping[str, Any]) -> Optional[tuple[str, dict[str, str]]]:
    """The model server's method and its path arguments for a request answered ahead of FastAPI,
    or None for FastAPI to answer."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path = get_route_path(scope)
    for pattern, method in FAST_ROUTES:
        match = pattern.fullmatch(path)
        if match is not None:
            return method, match.groupdict()
    return None


class ServerApp(FastAPI):
    """The model server's FastAPI app: prediction requests go straight to the replica's handler.

    ``servable`` finds the object that answers (in a replica: the deployment's instance); when it
    finds none, FastAPI answers every request.
    """

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        found = fast_route(scope)
        server = servable() if found is not None else None
        if found is None or server is None:
            await super().__call__(scope, receive, send)
            return
        method, arguments = found
        scope["app"] = self
        response = await getattr(server, method)(request=Request(scope, receive), **arguments)
        await response(scope, receive, send)


def servable() -> Any:
    """The deployment instance of the replica this runs in, or None outside a replica."""
    from ray.serve.context import _get_internal_replica_context

    context = _get_internal_replica_context()
    return None if context is None else context.servable_object
