"""Cluster profiles: the addresses and tokens of a cluster you reach only through them.

``~/.raymlops/profiles.yaml`` (``$RAYMLOPS_HOME/profiles.yaml``, or ``$RAYMLOPS_PROFILES``)::

    profiles:
      prod:
        dashboard: https://ray.example.com:8265     # Jobs API and Serve's REST API
        serve: https://models.example.com            # the Serve HTTP proxy, as this machine reaches it
        gcs: 10.0.0.5:6379                           # optional: only `ray status` and drivers need it
        ray_token_env: PROD_RAY_TOKEN                # or ray_token: ... (the file must then be 0600)
        admin_token_env: PROD_RAYMLOPS_ADMIN_TOKEN   # or admin_token: ...

``raymlops --profile prod COMMAND`` (or ``RAYMLOPS_PROFILE=prod``) puts them into the environment
every raymlops and Ray client reads: ``RAY_ADDRESS``, ``RAY_API_SERVER_ADDRESS``,
``RAYMLOPS_SERVE_URL``, ``RAY_AUTH_TOKEN`` and ``RAYMLOPS_ADMIN_TOKEN``. The same variables set
by hand (in CI, from its secrets) work without a profile file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pydantic import Field

from raymlops import auth
from raymlops.config.base import StrictModel
from raymlops.errors import ConfigError

PROFILES_ENV = "RAYMLOPS_PROFILES"
PROFILE_ENV = "RAYMLOPS_PROFILE"
SERVE_URL_ENV = "RAYMLOPS_SERVE_URL"


class Profile(StrictModel):
    """One cluster as a client reaches it."""

    dashboard: str = Field(..., pattern=r"^https?://", description="Dashboard URL (Jobs and Serve REST APIs).")
    serve: str = Field(..., pattern=r"^https?://", description="Serve HTTP proxy URL as this machine reaches it.")
    gcs: str | None = Field(None, description="GCS host:port, for `ray status` and Ray drivers; optional.")
    ray_token: str | None = Field(None, description="Ray's auth token (prefer ray_token_env).")
    ray_token_env: str | None = Field(None, description="Variable holding Ray's auth token.")
    admin_token: str | None = Field(None, description="raymlops admin token (prefer admin_token_env).")
    admin_token_env: str | None = Field(None, description="Variable holding the raymlops admin token.")


class ProfilesFile(StrictModel):
    """``profiles.yaml``: named cluster profiles."""

    profiles: dict[str, Profile] = Field(default_factory=dict)


def profiles_path() -> Path:
    """Where profiles are read from."""
    return Path(os.environ.get(PROFILES_ENV) or auth.home_dir() / "profiles.yaml").expanduser()


def load_profile(name: str) -> Profile:
    """The named profile.

    Raises:
        ConfigError: no profiles file, no such profile (naming those there), a token in clear in a
            file others can read, or a token variable that is not set.
    """
    from raymlops.config import load_config

    path = profiles_path()
    if not path.exists():
        raise ConfigError(file=str(path), problems=[("", f"no profiles file; create it with a `profiles: {{{name}: "
                                                          "{dashboard: ..., serve: ...}}` entry")])
    profiles = load_config(path, ProfilesFile).profiles
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(file=str(path), problems=[(f"profiles.{name}", f"no such profile (known: {known})")])
    profile = profiles[name]
    if (profile.ray_token or profile.admin_token) and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(file=str(path), problems=[(f"profiles.{name}", "holds a token but others can read the "
                                                     f"file: chmod 600 {path} (or use ray_token_env/admin_token_env)")])
    for field in ("ray_token_env", "admin_token_env"):
        variable = getattr(profile, field)
        if variable and not os.environ.get(variable):
            raise ConfigError(file=str(path), problems=[(f"profiles.{name}.{field}", f"${variable} is not set")])
    return profile


def profile_environment(profile: Profile) -> dict[str, str]:
    """The environment variables a profile stands for."""
    env = {"RAY_ADDRESS": profile.gcs or profile.dashboard, "RAY_API_SERVER_ADDRESS": profile.dashboard,
           SERVE_URL_ENV: profile.serve.rstrip("/"), "RAY_AUTH_MODE": "token"}
    ray_token = profile.ray_token or (os.environ[profile.ray_token_env] if profile.ray_token_env else None)
    admin_token = profile.admin_token or (os.environ[profile.admin_token_env] if profile.admin_token_env else None)
    if ray_token:
        env[auth.RAY_TOKEN_ENV] = ray_token
    if admin_token:
        env[auth.ADMIN_TOKEN_ENV] = admin_token
    return env


def apply_profile(name: str) -> None:
    """Put the named profile's variables into this process's environment (they win over what is set)."""
    os.environ.update(profile_environment(load_profile(name)))
