"""Registry artifacts on a real S3-protocol server (moto in server mode on 127.0.0.1)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow.fs as pafs
import pytest

from raymlops.config import RegistryConfig, S3Config
from raymlops.errors import ArtifactIntegrityError
from raymlops.registry import Registry


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield endpoint
    server.terminate()
    server.wait(10)


@pytest.fixture
def s3_registry(s3_endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("RAYMLOPS_REGISTRY_URL", "RAYMLOPS_ARTIFACT_ROOT", "AWS_ENDPOINT_URL", "RAYMLOPS_S3_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"models-{tmp_path.name.replace('_', '-').lower()[:40]}"
    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint.split("://")[1], scheme="http",
                           access_key="testing", secret_key="testing", region="us-east-1",
                           allow_bucket_creation=True)
    fs.create_dir(bucket)
    cfg = RegistryConfig(database_url=f"sqlite:///{tmp_path / 'r.db'}", artifact_root=f"s3://{bucket}/registry",
                         s3=S3Config(endpoint=s3_endpoint, region="us-east-1"))
    registry = Registry.from_config(cfg)
    yield registry, fs, bucket
    registry.close()


def make_artifact(directory, marker):
    directory.mkdir()
    for name in RegistryConfig().required_files:
        (directory / name).write_bytes(f"{name}-{marker}".encode())
    return directory


def test_register_and_download_through_s3(s3_registry, tmp_path):
    registry, fs, bucket = s3_registry
    first = registry.register("iris", make_artifact(tmp_path / "a", 1))
    second = registry.register("iris", make_artifact(tmp_path / "b", 2))
    assert (first.version, second.version) == (1, 2)
    assert first.artifact_uri.startswith(f"s3://{bucket}/registry/iris/")
    local = registry.download("iris:2", tmp_path / "copy")
    assert (local / "model.json").read_bytes() == b"model.json-2"
    listed = fs.get_file_info(pafs.FileSelector(f"{bucket}/registry", recursive=True))
    staging = [info.path for info in listed if "/_staging/" in info.path and info.type == pafs.FileType.File]
    assert staging == []


def test_corruption_on_s3_is_detected(s3_registry, tmp_path):
    registry, fs, _ = s3_registry
    version = registry.register("iris", make_artifact(tmp_path / "a", 1))
    path = version.artifact_uri.split("://", 1)[1] + "/signature.json"
    with fs.open_output_stream(path) as stream:
        stream.write(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="signature.json: sha256 differs"):
        registry.download("iris:1", tmp_path / "copy")
