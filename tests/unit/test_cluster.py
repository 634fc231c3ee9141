import pytest
from typer.testing import CliRunner

from raymlops.cli import app
from raymlops.cluster import (
    ClusterAddresses,
    ClusterState,
    addresses_from_config,
    resolve_addresses,
    state_path,
)
from raymlops.config import LocalClusterConfig
from raymlops.local_head import down, select_cluster_processes


class FakeProcess:
    def __init__(self, pid, args):
        self.pid, self._args = pid, args

    def cmdline(self):
        if self._args is None:
            raise PermissionError("gone")
        return self._args


def test_only_processes_of_our_temp_dir_are_selected():
    processes = [
        FakeProcess(1, ["gcs_server", "--log_dir=/tmp/raymlops-0/session_1/logs"]),
        FakeProcess(2, ["python", "dashboard.py", "--temp-dir=/tmp/raymlops-0"]),
        FakeProcess(3, ["gcs_server", "--log_dir=/tmp/ray/session_9/logs"]),  # another cluster
        FakeProcess(4, ["raylet", "--session_dir=/tmp/raymlops-01/session_2"]),  # a prefix, not ours
        FakeProcess(5, None),  # vanished while we looked
        FakeProcess(6, ["raylet", "/tmp/raymlops-0/session_1/sockets/raylet"]),
        FakeProcess(7, ["python", "-m", "ray.util.client.server", "--address=127.0.0.1:6379"]),
        FakeProcess(8, ["python", "-m", "ray.util.client.server", "--address=127.0.0.1:6380"]),
    ]
    chosen = select_cluster_processes(processes, "/tmp/raymlops-0/", "127.0.0.1:6379")
    assert [p.pid for p in chosen] == [1, 2, 6, 7]


def test_addresses_default_to_the_config(home):
    addresses = resolve_addresses(LocalClusterConfig(dashboard_port=9265))
    assert addresses.dashboard == "http://127.0.0.1:9265"
    assert addresses.gcs == "127.0.0.1:6379"
    assert addresses.metrics == "http://127.0.0.1:8090/metrics"
    assert addresses.loopback


@pytest.mark.parametrize(
    "value, dashboard, gcs",
    [
        ("http://10.0.0.5:8265", "http://10.0.0.5:8265", None),
        ("10.0.0.5:6379", "http://10.0.0.5:8265", "10.0.0.5:6379"),
    ],
)
def test_ray_address_names_an_existing_cluster(home, monkeypatch, value, dashboard, gcs):
    monkeypatch.setenv("RAY_ADDRESS", value)
    addresses = resolve_addresses()
    assert (addresses.dashboard, addresses.gcs, addresses.managed) == (dashboard, gcs, False)
    assert not addresses.loopback


def test_recorded_state_is_used_and_round_trips(home):
    state = ClusterState(addresses=addresses_from_config(LocalClusterConfig(gcs_port=7000)), temp_dir="/tmp/x", started_at=1.0)
    state_path().parent.mkdir(parents=True)
    state_path().write_text(state.to_json())
    assert ClusterState.from_json(state.to_json()) == state
    assert resolve_addresses().gcs == "127.0.0.1:7000"


def test_down_without_a_cluster_changes_nothing(home):
    assert "nothing to stop" in down()


def test_down_refuses_a_foreign_cluster(home, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 2
    assert "not a cluster that `raymlops up` started" in result.output


def test_status_without_a_cluster_is_one_clear_line(home):
    result = CliRunner().invoke(app, ["status"], env={"RAY_ADDRESS": "http://127.0.0.1:9"})
    assert result.exit_code == 2
    assert result.output.startswith("error: no Ray dashboard answers at http://127.0.0.1:9")


def test_env_prints_what_the_ray_cli_needs(home):
    result = CliRunner().invoke(app, ["env"])
    assert result.exit_code == 0
    assert "export RAY_AUTH_MODE=token" in result.output
    assert "export RAY_ADDRESS=127.0.0.1:6379" in result.output  # `ray status` needs the GCS
    assert "export RAY_API_SERVER_ADDRESS=http://127.0.0.1:8265" in result.output  # `ray job` reads this
    assert "export RAYMLOPS_SERVE_URL=http://127.0.0.1:8000" in result.output


def test_loopback_detection():
    assert ClusterAddresses(dashboard="http://localhost:8265").loopback
    assert not ClusterAddresses(dashboard="http://192.0.2.1:8265").loopback


def test_up_with_ray_address_starts_nothing(home, monkeypatch):
    from raymlops.local_head import up

    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.5:8265")
    result = up(LocalClusterConfig())
    assert not result.started
    assert result.addresses.dashboard == "http://10.0.0.5:8265"
    assert "names an existing cluster" in result.message
    assert not state_path().exists()


def test_actor_alive_asks_the_state_api(monkeypatch):
    from raymlops import cluster

    asked = []

    def fake_get(_addresses, path, timeout=5.0):
        asked.append(path)
        states = {"raymlops-monitor-a": ["DEAD", "ALIVE"], "raymlops-monitor-b": ["DEAD"]}
        name = path.split("filter_values=")[1].split("&")[0]
        return {"data": {"result": {"result": [{"state": s} for s in states.get(name, [])]}}}

    monkeypatch.setattr(cluster, "dashboard_get", fake_get)
    addresses = cluster.ClusterAddresses(dashboard="http://h:8265")
    assert cluster.actor_alive(addresses, "raymlops-monitor-a")
    assert not cluster.actor_alive(addresses, "raymlops-monitor-b")
    assert not cluster.actor_alive(addresses, "raymlops-monitor-c")
    assert asked[0].startswith("/api/v0/actors?filter_keys=name&filter_predicates=%3D")
