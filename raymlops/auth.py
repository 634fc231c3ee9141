"""Secrets on disk: Ray's cluster token and the raymlops admin token.

Ray (2.52+) protects its dashboard, Jobs API and GCS with a static bearer token, but
its clients only send it when ``RAY_AUTH_MODE=token`` is in their own environment.
:func:`client_environment` is what every raymlops entry point and ``raymlops env``
put there, so that nobody meets "Missing authentication token".

Token files are created with mode 0600 and never printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from raymlops.errors import ClusterError

RAY_TOKEN_ENV = "RAY_AUTH_TOKEN"
RAY_TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
ADMIN_TOKEN_ENV = "RAYMLOPS_ADMIN_TOKEN"
HOME_ENV = "RAYMLOPS_HOME"


def home_dir() -> Path:
    """Where raymlops keeps its local state: ``$RAYMLOPS_HOME`` or ``~/.raymlops``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".raymlops").expanduser()


def ray_token_path() -> Path:
    """The file Ray reads its token from: ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``."""
    return Path(os.environ.get(RAY_TOKEN_PATH_ENV) or Path.home() / ".ray" / "auth_token").expanduser()


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)


def _read_or_create(path: Path) -> str:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    except OSError as exc:
        raise ClusterError(problem=f"cannot read token file {path}: {exc.strerror}", fix="check its permissions") from None
    if value:
        return value
    value = secrets.token_hex(32)
    try:
        if path.exists():
            path.unlink()
        _write_secret(path, value)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    return value


def _token(env_name: str, path: Path, create: bool) -> str | None:
    """A token from ``$env_name``, else from ``path`` (created with a fresh secret when ``create``)."""
    from_env = os.environ.get(env_name, "").strip()
    if from_env:
        return from_env
    if create:
        return _read_or_create(path)
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def ensure_ray_token() -> str:
    """Return Ray's auth token, creating the token file (0600) when there is none."""
    token = _token(RAY_TOKEN_ENV, ray_token_path(), create=True)
    assert token is not None  # created when missing
    return token


def read_ray_token() -> str | None:
    """Return Ray's auth token if one is configured, without creating it."""
    return _token(RAY_TOKEN_ENV, ray_token_path(), create=False)


def admin_token_path() -> Path:
    """The admin token file that ``raymlops up`` creates when RAYMLOPS_ADMIN_TOKEN is unset."""
    return home_dir() / "admin_token"


def ensure_admin_token() -> str:
    """Return the admin token: ``$RAYMLOPS_ADMIN_TOKEN`` or the 0600 file (created when missing)."""
    token = _token(ADMIN_TOKEN_ENV, admin_token_path(), create=True)
    assert token is not None  # created when missing
    return token


def read_admin_token() -> str | None:
    """Return the admin token if one is configured, without creating it."""
    return _token(ADMIN_TOKEN_ENV, admin_token_path(), create=False)


def client_environment(loopback: bool) -> dict[str, str]:
    """Environment a Ray client on this machine needs to talk to a raymlops cluster.

    ``RAY_AUTH_MODE=token`` makes Ray's clients send the token. For a cluster bound to
    loopback, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray use 127.0.0.1 as this
    node's address (on Linux it would otherwise pick the external interface, bind its
    servers there, and a local driver could not find its raylet on 127.0.0.1).
    """
    env = {"RAY_AUTH_MODE": "token"}
    if loopback:
        env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    return env


def auth_headers() -> dict[str, str]:
    """HTTP headers that authenticate against Ray's dashboard (empty when no token exists)."""
    token = read_ray_token()
    return {"Authorization": f"Bearer {token}"} if token else {}
