import multiprocessing
from pathlib import Path

import pytest

from raymlops.errors import (
    ArtifactIntegrityError,
    InvalidNameError,
    NotFoundError,
    RegistryError,
    SchemaVersionError,
    StorageError,
)
from raymlops.registry import Registry
from raymlops.registry.artifacts import ArtifactStore
from raymlops.registry.sql import SqlMetadata


def test_versions_count_up_per_model(registry, artifact_dir):
    assert [registry.register("iris", artifact_dir()).version for _ in range(3)] == [1, 2, 3]
    assert registry.register("penguins", artifact_dir()).version == 1
    assert registry.get("iris").version == 3
    assert registry.get("iris:2").version == 2
    models = {m["name"]: m for m in registry.list_models()}
    assert models["iris"]["versions"] == 3 and models["penguins"]["latest_version"] == 1


def test_registered_version_keeps_metrics_lineage_and_manifest(registry, artifact_dir):
    version = registry.register("iris", artifact_dir(), metrics={"accuracy": 0.93}, lineage={"seed": 7},
                                description="first", actor="alice")
    again = registry.get("iris:1")
    assert again == version
    assert again.metrics == {"accuracy": 0.93}
    assert again.lineage == {"seed": 7}
    assert again.created_by == "alice"
    assert set(again.manifest) == {"model.safetensors", "model.json", "preprocessing.json", "signature.json",
                                   "reference.parquet", "detector.json"}
    assert all(len(digest) == 64 for digest in again.manifest.values())


def test_download_verifies_and_returns_identical_files(registry, artifact_dir, tmp_path):
    source = artifact_dir()
    registry.register("iris", source)
    local = registry.download("iris:1", tmp_path / "copy")
    for path in source.iterdir():
        assert (local / path.name).read_bytes() == path.read_bytes()


def stored_file(version, name):
    return Path(version.artifact_uri) / name


def test_corrupted_file_is_named(registry, artifact_dir, tmp_path):
    version = registry.register("iris", artifact_dir())
    stored_file(version, "preprocessing.json").write_bytes(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="preprocessing.json: sha256 differs"):
        registry.download("iris:1", tmp_path / "copy")
    with pytest.raises(ArtifactIntegrityError, match="preprocessing.json"):
        registry.verify("iris:1")


def test_missing_file_is_named(registry, artifact_dir, tmp_path):
    version = registry.register("iris", artifact_dir())
    stored_file(version, "detector.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match="detector.json: missing"):
        registry.download("iris", tmp_path / "copy")


def test_required_files_are_enforced(registry, artifact_dir):
    with pytest.raises(RegistryError, match="missing required artifact file\\(s\\) reference.parquet"):
        registry.register("iris", artifact_dir(**{"reference.parquet": None}))
    assert registry.list_versions("iris") == []


def test_crash_mid_upload_leaves_no_version(registry, artifact_dir, monkeypatch, registry_config):
    original = ArtifactStore._copy_file
    calls = {"n": 0}

    def flaky(self, source, destination):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("connection reset while uploading")
        return original(self, source, destination)

    monkeypatch.setattr(ArtifactStore, "_copy_file", flaky)
    with pytest.raises(StorageError, match="upload failed"):
        registry.register("iris", artifact_dir())
    monkeypatch.setattr(ArtifactStore, "_copy_file", original)
    assert registry.list_versions("iris") == []
    assert registry.events("iris") == []
    with pytest.raises(NotFoundError):
        registry.get("iris")
    staging = Path(registry_config.artifact_root) / "_staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert registry.register("iris", artifact_dir()).version == 1


def test_crash_before_commit_leaves_no_version(registry, artifact_dir, monkeypatch):
    def boom(self, conn, *args, **kwargs):
        raise RuntimeError("process killed mid-transaction")

    monkeypatch.setattr(SqlMetadata, "_event", boom)
    with pytest.raises(RuntimeError):
        registry.register("iris", artifact_dir())
    monkeypatch.undo()
    assert registry.list_versions("iris") == []
    assert registry.list_models() == []
    assert registry.register("iris", artifact_dir()).version == 1


def _register_in_process(config_json, artifact, queue):
    from raymlops.config import RegistryConfig

    registry = Registry.from_config(RegistryConfig.model_validate_json(config_json))
    queue.put(registry.register("racy", artifact).version)


def test_eight_processes_get_eight_consecutive_versions(registry_config, artifact_dir):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    artifact = artifact_dir()
    workers = [context.Process(target=_register_in_process, args=(registry_config.model_dump_json(), artifact, queue))
               for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert all(worker.exitcode == 0 for worker in workers)
    numbers = sorted(queue.get(timeout=5) for _ in workers)
    assert numbers == list(range(1, 9))
    registry = Registry.from_config(registry_config)
    assert [v.version for v in registry.list_versions("racy")] == list(range(1, 9))
    assert len(registry.events("racy", kinds=["registered"])) == 8


@pytest.mark.parametrize("bad", ["../escape", "Upper", "", "a" * 65, "a/b", "-lead", "dot.ted", "x\n"])
def test_bad_model_names_never_touch_storage(registry, artifact_dir, bad, registry_config):
    with pytest.raises(InvalidNameError, match="invalid model name"):
        registry.register(bad, artifact_dir())
    root = Path(registry_config.artifact_root)
    assert not root.exists() or not any(p.name != "_staging" for p in root.iterdir())


def test_unknown_references(registry, artifact_dir):
    with pytest.raises(NotFoundError, match="model not found: ghost"):
        registry.get("ghost")
    registry.register("iris", artifact_dir())
    with pytest.raises(NotFoundError, match="version not found: iris:9"):
        registry.get("iris:9")
    with pytest.raises(NotFoundError, match="alias not found: iris@champion"):
        registry.get("iris@champion")


def test_newer_schema_is_refused(registry_config):
    from sqlalchemy import update

    from raymlops.registry import schema

    registry = Registry.from_config(registry_config)
    with registry.metadata.engine.begin() as conn:
        conn.execute(update(schema.meta).where(schema.meta.c.key == "schema_version").values(value="99"))
    registry.close()
    with pytest.raises(SchemaVersionError, match="schema version 99; this raymlops reads up to 1"):
        Registry.from_config(registry_config)


def test_uploads_a_killed_process_left_in_staging_are_swept(registry, artifact_dir):
    import os
    import time

    if not registry.artifacts.local:
        return
    staging = os.path.join(registry.artifacts.root_path, "_staging")
    os.makedirs(os.path.join(staging, "dead"), exist_ok=True)
    os.makedirs(os.path.join(staging, "fresh"), exist_ok=True)
    old = time.time() - 2 * 3600
    os.utime(os.path.join(staging, "dead"), (old, old))
    registry.register("swept", artifact_dir())
    assert sorted(os.listdir(staging)) == ["fresh"]
