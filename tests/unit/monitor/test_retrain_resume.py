"""A monitor restarted while a retraining job was in flight follows that job again; a job the
cluster no longer knows (submitted to an earlier cluster) ends as LOST, so retraining can fire
again instead of waiting forever."""

import asyncio
from collections import Counter

from raymlops.config import RegistryConfig, RetrainSettings
from raymlops.monitor.retrain import Retrainer
from raymlops.registry import Registry


class FakeJobs:
    """A JobClient whose jobs end as told (a list of answers, the last one repeated)."""

    def __init__(self, *answers):
        self.answers, self.submitted = list(answers), []

    def submit(self, entrypoint, runtime_env):
        self.submitted.append(entrypoint)
        return f"raysubmit_{len(self.submitted)}"

    def status(self, job_id):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def stop(self, job_id):
        self.answers = ["STOPPED"]
        self.stopped = job_id


def ForgetfulJobs():
    return FakeJobs("LOST")


def FinishedJobs():
    return FakeJobs("FAILED")


def retrainer(tmp_path, jobs, snapshots, **settings):
    registry = Registry.from_config(RegistryConfig(database_url=f"sqlite:///{tmp_path}/r.db",
                                                   artifact_root=str(tmp_path / "artifacts")))

    async def snapshot():
        snapshots.append(1)

    r = Retrainer("m", RetrainSettings(enabled=True, auto_rollout=False, **settings), registry, jobs, Counter(),
                  lambda: 0, str(tmp_path / "labels"), snapshot)
    return r, registry


def run_resumed(r, monkeypatch):
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda s: real_sleep(0))

    async def scenario():
        if r.trigger.in_flight is None:
            r.resume()  # nothing to follow: returns at once
            await real_sleep(0.05)
            return
        r.resume()
        for _ in range(500):  # bounded: 5 s
            await real_sleep(0.01)
            # done once the follower ended and saved its state (not merely cleared "in flight")
            if r.trigger.in_flight is None and r.registry.events("m", kinds=["retrain_finished"]):
                await real_sleep(0.05)
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


def test_a_failing_status_poll_is_retried_and_a_success_names_the_new_version(tmp_path, monkeypatch):
    jobs = FakeJobs(ConnectionError("dashboard restarting"), "RUNNING", "SUCCEEDED")
    r, registry = retrainer(tmp_path, jobs, [])
    r.trigger.restore({"in_flight": "raysubmit_new"})
    r._registered_by = lambda job_id: (7, True, False)
    run_resumed(r, monkeypatch)
    assert r.trigger.in_flight is None and r.counters["retrain_status_errors"] == 1
    finished = registry.events("m", kinds=["retrain_finished"])
    assert [(e.version, e.payload["new_version"], e.payload["candidate"]) for e in finished] == [(7, 7, True)]


def test_a_job_that_never_reports_an_epoch_is_stopped_as_stalled_with_its_reason(tmp_path, monkeypatch):
    jobs = FakeJobs("RUNNING")
    r, registry = retrainer(tmp_path, jobs, [], start_timeout_s=0.001)
    submitted = registry.add_event("m", "retrain_submitted", 1, {"job_id": "raysubmit_slow"}, actor="drift-monitor")
    r.trigger.restore({"in_flight": "raysubmit_slow"})
    monkeypatch.setattr(r, "_submitted_at", lambda event_id: submitted.time - 10)
    run_resumed(r, monkeypatch)
    (finished,) = registry.events("m", kinds=["retrain_finished"])
    assert jobs.stopped == "raysubmit_slow" and finished.payload["status"] == "STALLED"
    assert "no training epoch reported" in finished.payload["reason"]
    assert r.counters["retrain_stalled"] == 1 and "raysubmit_slow" in r.last_error and r.trigger.in_flight is None


def test_a_job_whose_training_started_is_left_to_run(tmp_path, monkeypatch):
    jobs = FakeJobs("RUNNING", "RUNNING", "SUCCEEDED")
    r, registry = retrainer(tmp_path, jobs, [], start_timeout_s=0.001)
    registry.add_event("m", "training_started", payload={"job_id": "raysubmit_ok"}, actor="trainer")
    r.trigger.restore({"in_flight": "raysubmit_ok"})
    r._registered_by = lambda job_id: (3, True, False)
    run_resumed(r, monkeypatch)
    (finished,) = registry.events("m", kinds=["retrain_finished"])
    assert finished.payload["status"] == "SUCCEEDED" and not hasattr(jobs, "stopped")


def test_drift_does_not_retrain_again_while_a_candidate_waits_for_or_runs_its_rollout(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from raymlops.types import DriftReport

    jobs = FakeJobs("RUNNING")
    r, registry = retrainer(tmp_path, jobs, [], k=2, n=2, cooldown_s=0, detectors=["feature"])
    aliases = {"champion": 3, "candidate": 4}
    made_by = {4: {"trigger": {"kind": "drift", "drift_event_id": 1}}, 5: {"trigger": {"kind": "manual"}}}
    rollout: list[int] = []
    monkeypatch.setattr(registry, "aliases", lambda name: dict(aliases))
    monkeypatch.setattr(registry, "resolve", lambda name, alias: aliases[alias])
    monkeypatch.setattr(registry, "get", lambda ref: SimpleNamespace(lineage=made_by[int(ref.split(":")[1])]))
    monkeypatch.setattr(registry, "active_rollout", lambda name: rollout[0] if rollout else None)
    monkeypatch.setattr(r, "_follow", lambda job_id, event_id: asyncio.sleep(0))
    drifted = DriftReport("m", 3, "feature", "scipy", {}, {}, 0.05, True, 100, 0.0)

    async def reports(count):
        for _ in range(count):
            await r.on_report(drifted, None)

    asyncio.run(reports(4))  # a retrained candidate waits for its rollout
    assert jobs.submitted == [] and r.counters["retrain_deferred"] == 2  # k reached twice, deferred twice
    assert len(r.trigger.history) == 0  # fresh evidence is asked for after each deferral
    del aliases["candidate"]
    rollout.append(4)  # ... and is in it
    asyncio.run(reports(2))
    assert jobs.submitted == [] and r.counters["retrain_deferred"] == 3
    rollout.clear()  # the rollout promoted or rolled back
    aliases["candidate"] = 5  # a version no retraining made (canaried by hand) does not hold retraining back
    asyncio.run(reports(1))
    assert jobs.submitted == []  # one new drifted check of k = 2
    asyncio.run(reports(1))
    assert len(jobs.submitted) == 1 and r.counters["retrain_submitted"] == 1
    assert [e.payload["reason"] for e in registry.events("m", kinds=["retrain_submitted"])] == \
        ["2 of the last 2 feature checks of v3 drifted"]
