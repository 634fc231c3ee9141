"""Registry fixtures: every test runs against SQLite, and against PostgreSQL when
RAYMLOPS_TEST_PG_URL is set (`.ci/run` starts a server and sets it)."""

import os

import pytest

from raymlops.config import RegistryConfig
from raymlops.registry import Registry

PG_URL = os.environ.get("RAYMLOPS_TEST_PG_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def reset_postgres(url):
    from raymlops.registry import schema
    from raymlops.registry.sql import build_engine

    engine = build_engine(url)
    schema.metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def registry_config(request, tmp_path, monkeypatch):
    """A RegistryConfig on a fresh database of each backend, artifacts under tmp_path."""
    for name in ("RAYMLOPS_REGISTRY_URL", "RAYMLOPS_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "postgresql":
        reset_postgres(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'registry.db'}"
    return RegistryConfig(database_url=url, artifact_root=str(tmp_path / "artifacts"))


@pytest.fixture
def registry(registry_config):
    reg = Registry.from_config(registry_config)
    yield reg
    reg.close()


@pytest.fixture
def artifact_dir(tmp_path):
    """A factory of complete artifact directories with distinct content."""
    counter = {"n": 0}

    def make(**overrides):
        counter["n"] += 1
        directory = tmp_path / f"artifact-{counter['n']}"
        directory.mkdir()
        files = {
            "model.safetensors": b"weights-%d" % counter["n"],
            "model.json": b'{"builder": "raymlops.models:mlp"}',
            "preprocessing.json": b"{}",
            "signature.json": b'{"inputs": []}',
            "reference.parquet": b"PAR1-not-really",
            "detector.json": b'{"backend": "alibi"}',
        }
        files.update(overrides)
        for name, content in files.items():
            if content is not None:
                (directory / name).write_bytes(content)
        return directory

    return make
