"""Who may call the HTTP endpoints. Pure: no Ray, no FastAPI.

Secrets never travel in configs: the admin token and the API keys are compared by their
SHA-256 digests, which are all a replica is given. Ray's token protects the dashboard and
the Jobs API but not Serve's HTTP routes, so these checks are the ingress's own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from raymlops.errors import AuthenticationError, PermissionDeniedError

API_KEYS_ENV = "RAYMLOPS_API_KEYS"
FEEDBACK_KEYS_ENV = "RAYMLOPS_FEEDBACK_KEYS"


def digest(secret: str) -> str:
    """The SHA-256 hex digest a replica stores in place of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh random API key (``rmo_`` + 32 url-safe random bytes)."""
    return "rmo_" + secrets.token_urlsafe(32)


def api_key_digests_from_env(variable: str = API_KEYS_ENV) -> list[str]:
    """Digests of the comma-separated keys in ``$RAYMLOPS_API_KEYS`` (or another ``variable``;
    empty when unset)."""
    raw = os.environ.get(variable, "")
    return [digest(key.strip()) for key in raw.split(",") if key.strip()]


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise AuthenticationError(scheme="Bearer", problem="no Authorization header")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise AuthenticationError(scheme="Bearer", problem="the Authorization header is not `Bearer <token>`")
    return credential.strip()


def _matches(secret: str, digests: frozenset[str]) -> bool:
    presented = digest(secret)
    # compare_digest against every entry: no early exit that would time which one matched
    return any([hmac.compare_digest(presented, known) for known in digests])


@dataclass(frozen=True)
class AccessPolicy:
    """The credentials a model server accepts.

    Attributes:
        admin_token_sha256: digest of the admin bearer token; ``None`` disables admin endpoints.
        api_key_sha256: digests of the API keys accepted on inference endpoints.
        require_api_key: whether inference endpoints (and every other model endpoint but v2
            health) need one of those keys.
        feedback_key_sha256: digests of the keys that may post feedback labels (the admin token
            always may); feedback is authorized apart from inference, always.
    """

    admin_token_sha256: str | None = None
    api_key_sha256: frozenset[str] = field(default_factory=frozenset)
    require_api_key: bool = False
    feedback_key_sha256: frozenset[str] = field(default_factory=frozenset)

    def is_admin(self, authorization: str | None) -> bool:
        """Whether the request carries the admin bearer token."""
        if self.admin_token_sha256 is None or not authorization:
            return False
        scheme, _, credential = authorization.partition(" ")
        return scheme.lower() == "bearer" and _matches(credential.strip(), frozenset({self.admin_token_sha256}))

    def check(self, scope: str, api_key: str | None, authorization: str | None) -> None:
        """Allow a call of ``scope``: ``inference``, ``feedback`` or ``pinned`` (``admin`` calls
        check the admin token themselves, with :meth:`check_admin`).

        Raises:
            AuthenticationError: no credential where one is needed (401).
            PermissionDeniedError: a credential that does not allow the call (403).
        """
        if scope == "feedback":
            self.check_feedback(api_key, authorization)
        elif scope == "pinned":
            self.check_pinned(api_key, authorization)
        elif scope != "admin":
            self.check_inference(api_key, authorization)

    def check_feedback(self, api_key: str | None, authorization: str | None) -> None:
        """Allow posting feedback labels: a feedback key (``x-api-key`` or bearer) or the admin token.

        Raises:
            AuthenticationError: no credential (401).
            PermissionDeniedError: a credential that may not label answers (403).
        """
        self._require_key(api_key, authorization, self.feedback_key_sha256,
                          "x-api-key header (a feedback key) or Authorization: Bearer <admin token>",
                          "feedback labels steer rollouts and retraining: they need a feedback key or the admin token",
                          "post feedback labels", "this key has no feedback scope (`raymlops apikey create --scope "
                          "feedback`)")

    def check_pinned(self, api_key: str | None, authorization: str | None) -> None:
        """Allow a call pinned to one version: an API key or the admin token, whatever
        ``require_api_key`` says (pinned calls bypass the traffic split).

        Raises:
            AuthenticationError: no credential (401).
            PermissionDeniedError: an unknown key (403).
        """
        self._require_key(api_key, authorization, self.api_key_sha256,
                          "x-api-key header or Authorization: Bearer <key or admin token>",
                          "calls pinned to a version need an API key or the admin token", "call a pinned version",
                          "unknown API key")

    def check_admin(self, authorization: str | None) -> None:
        """Allow an admin call or raise.

        Raises:
            AuthenticationError: no bearer token (401).
            PermissionDeniedError: a wrong token, or admin endpoints disabled (403).
        """
        token = _bearer(authorization)
        if self.admin_token_sha256 is None:
            raise PermissionDeniedError(action="use admin endpoints",
                                        problem="no admin token was configured when this model was deployed")
        if not _matches(token, frozenset({self.admin_token_sha256})):
            raise PermissionDeniedError(action="use admin endpoints", problem="the bearer token is not the admin token")

    def check_inference(self, api_key: str | None, authorization: str | None) -> None:
        """Allow an inference call or raise (a no-op unless ``require_api_key``).

        The key comes from the ``x-api-key`` header or ``Authorization: Bearer <key>``.

        Raises:
            AuthenticationError: no key (401).
            PermissionDeniedError: an unknown key (403).
        """
        if self.require_api_key:
            self._require_key(api_key, authorization, self.api_key_sha256,
                              "x-api-key header or Authorization: Bearer <key>", "this model requires an API key",
                              "call this model", "unknown API key")

    def _require_key(self, api_key: str | None, authorization: str | None, digests: frozenset[str], scheme: str,
                     missing: str, action: str, unknown: str) -> None:
        """Pass the admin token, or a key (``x-api-key``, else bearer) among ``digests``; else raise
        AuthenticationError (``missing``: no credential) or PermissionDeniedError (``unknown``)."""
        if self.is_admin(authorization):
            return
        if api_key is None:
            if authorization is None:
                raise AuthenticationError(scheme=scheme, problem=missing)
            api_key = _bearer(authorization)
        if not _matches(api_key, digests):
            raise PermissionDeniedError(action=action, problem=unknown)
