"""Unit tests exercise the pure core: any attempt to start or join Ray is a bug here."""

import pytest


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """Make ray.init fail loudly inside unit tests."""
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("unit tests must not call ray.init; move this test to tests/integration")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An isolated RAYMLOPS_HOME and Ray token path; returns a factory of paths inside it."""
    monkeypatch.setenv("RAYMLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "ray" / "auth_token"))
    for name in ("RAY_AUTH_TOKEN", "RAYMLOPS_ADMIN_TOKEN", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path
