"""A monitor restarted while a retraining job was in flight follows that job again; a job the
cluster no longer knows (submitted to an earlier cluster) ends as LOST, so retraining can fire
again instead of waiting forever."""

import asyncio
from collections import Counter

from raymlops.config import RegistryConfig, RetrainSettings
from raymlops.monitor.retrain import Retrainer
from raymlops.registry import Registry


class ForgetfulJobs:
    def get_job_status(self, job_id):
        raise RuntimeError(f"Request failed with status code 404: Job {job_id} does not exist.")


class FinishedJobs:
    def get_job_status(self, job_id):
        return "JobStatus.FAILED"


def retrainer(tmp_path, jobs, snapshots):
    registry = Registry.from_config(RegistryConfig(database_url=f"sqlite:///{tmp_path}/r.db",
                                                   artifact_root=str(tmp_path / "artifacts")))

    async def snapshot():
        snapshots.append(1)

    r = Retrainer("m", RetrainSettings(enabled=True, auto_rollout=False), registry, {}, None, Counter(),
                  lambda: 0, str(tmp_path / "labels"), snapshot)
    r._client = lambda: jobs
    return r, registry


def run_resumed(r, monkeypatch):
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda s: real_sleep(0))

    async def scenario():
        r.resume()
        for _ in range(50):
            await real_sleep(0.01)
            if r.trigger.in_flight is None:
                return

    asyncio.run(scenario())


def test_a_restored_job_the_cluster_no_longer_knows_ends_as_lost(tmp_path, monkeypatch):
    snapshots = []
    r, registry = retrainer(tmp_path, ForgetfulJobs(), snapshots)
    submitted = registry.add_event("m", "retrain_submitted", 1, {"job_id": "raysubmit_old"}, actor="drift-monitor")
    r.trigger.restore({"in_flight": "raysubmit_old", "last_fired": 1.0, "fired_on": [1.0]})
    run_resumed(r, monkeypatch)
    assert r.trigger.in_flight is None and r.counters["retrain_lost"] == 1 and snapshots
    finished = registry.events("m", kinds=["retrain_finished"])
    assert [e.payload for e in finished] == [{"job_id": "raysubmit_old", "status": "LOST",
                                              "submitted_event_id": submitted.id}]


def test_a_restored_job_that_ended_meanwhile_is_recorded_once(tmp_path, monkeypatch):
    r, registry = retrainer(tmp_path, FinishedJobs(), [])
    r.trigger.restore({"in_flight": "raysubmit_x"})
    run_resumed(r, monkeypatch)
    assert r.trigger.in_flight is None and r.counters["retrain_failed"] == 1
    assert len(registry.events("m", kinds=["retrain_finished"])) == 1


def test_nothing_in_flight_nothing_to_follow(tmp_path, monkeypatch):
    r, registry = retrainer(tmp_path, FinishedJobs(), [])
    run_resumed(r, monkeypatch)
    assert registry.events("m", kinds=["retrain_finished"]) == []
