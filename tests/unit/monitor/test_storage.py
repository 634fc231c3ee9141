"""The monitor's files on the artifact store: JSON snapshots and sealed detectors, never a pickle
opened unchecked."""

import pickle

import numpy as np
import pytest

from raymlops import filesystem
from raymlops.errors import ArtifactIntegrityError
from raymlops.monitor.health import HealthStats
from raymlops.monitor.storage import MonitorStore

KEY = b"cluster-secret-32-bytes-long-xxx"
SETTINGS = {"kind": "mmd", "ert": 150.0, "window_size": 20, "n_bootstraps": 100, "reference_rows": 200}


class Exploit:
    """Unpickling this runs code: it must never be unpickled."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['RMO_PWNED']).write_text('x')",))


def state():
    health = HealthStats()
    health.add({"request_id": ["a", "a", "b"], "time": [1.0, 1.0, 2.0], "version": [1] * 3, "arm": ["stable"] * 3,
                "latency_ms": [2.0] * 3, "status": [200] * 3, "prediction": ["x", "y", "x"], "confidence": [0.5] * 3})
    return {"time": 5.0, "windows": {"open": {1: {"started": 1.0, "columns": {"f.x": [1.0, np.nan]}, "rows": 2}},
                                     "sampled_out": 0},
            "health": health.state(), "counters": {"rows": np.int64(3)}, "last_reports": {}, "history": [],
            "trigger": {}, "budget": {"rows": {"1": 3}}, "online": {1: {"t": [0.5, 0.7]}}}


def test_a_snapshot_round_trips_as_json_with_the_online_state_sealed(tmp_path):
    store = MonitorStore(str(tmp_path), "m", KEY)
    assert store.read_snapshot() is None
    store.write_snapshot(state())
    assert store.snapshot_uri.endswith(".json")
    back = store.read_snapshot()
    assert back["counters"] == {"rows": 3} and back["online"] == {1: {"t": [0.5, 0.7]}}
    health = HealthStats()
    health.restore(back["health"])
    assert health.stats(1).requests == 2  # one request of two rows, one of one


def test_a_tampered_snapshot_is_refused(tmp_path):
    store = MonitorStore(str(tmp_path), "m", KEY)
    store.write_snapshot(state())
    blob = filesystem.read_bytes(store.snapshot_uri)
    filesystem.write_atomically(store.snapshot_uri, blob.replace(b'"rows": 3', b'"rows": 9'))
    with pytest.raises(ArtifactIntegrityError, match="signature does not match"):
        store.read_snapshot()
    with pytest.raises(ArtifactIntegrityError):
        MonitorStore(str(tmp_path), "m", b"another cluster's secret").read_snapshot()


def test_a_planted_pickle_is_never_run(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("RMO_PWNED", str(marker))
    store = MonitorStore(str(tmp_path / "store"), "m", KEY)
    store.write_snapshot(state())
    planted = pickle.dumps(Exploit())
    for uri in (store.snapshot_uri, store.snapshot_online_uri, store.online_uri(1, SETTINGS)):
        filesystem.write_atomically(uri, planted)
    with pytest.raises(ArtifactIntegrityError):
        store.read_snapshot()
    with pytest.raises(ArtifactIntegrityError):
        store.load_online(1, SETTINGS)
    assert not marker.exists()


def test_the_online_part_alone_being_refused_keeps_the_rest(tmp_path):
    store = MonitorStore(str(tmp_path), "m", KEY)
    store.write_snapshot(state())
    filesystem.write_atomically(store.snapshot_online_uri, b"garbage")
    back = store.read_snapshot()
    assert back["online"] == {} and back["counters"] == {"rows": 3}


def test_calibrated_detectors_are_sealed_per_version(tmp_path):
    store = MonitorStore(str(tmp_path), "m", KEY)
    assert store.load_online(1, SETTINGS) is None
    store.save_online(1, SETTINGS, {"detector": [1, 2]})
    assert store.load_online(1, SETTINGS) == {"detector": [1, 2]}
    assert filesystem.read_bytes(store.online_uri(1, SETTINGS)).startswith(b"raymlops-sealed-v1\n")
