"""The pipeline's pure parts: its file, stage configs, reuse of earlier results, outcomes."""

import pytest
from typer.testing import CliRunner

from raymlops.config import PipelineConfig, load_config
from raymlops.errors import ConfigError
from raymlops.pipeline.outcome import EXIT_CODES, add_stage, finish, job_link, new_summary, rollout_steps
from raymlops.pipeline.reuse import version_made_from
from raymlops.pipeline.runner import plan_pipeline
from raymlops.types import Event, ModelVersion


def version(number, config_hash="h", shas=("a", "b"), extra=None):
    lineage = {"config_hash": config_hash, "data": [{"uri": f"/d/{s}", "sha256": s} for s in shas],
               "extra": extra or {}}
    return ModelVersion("m", number, 0.0, "file:///x", {}, {"accuracy": 0.9}, lineage)


def test_the_newest_version_made_from_the_same_config_and_data_is_reused():
    versions = [version(1), version(2), version(3, config_hash="other"), version(4, shas=("a", "changed"))]
    assert version_made_from(versions, "h", {"a", "b"}).version == 2
    assert version_made_from(versions, "h", {"a"}) is None  # a file more or less is other data
    assert version_made_from(versions, "nope", {"a", "b"}) is None
    tuned = [version(5, config_hash="best-trial", extra={"tune_config_hash": "t"})]
    assert version_made_from(tuned, "t", {"a", "b"}, key="tune_config_hash").version == 5


@pytest.mark.parametrize("outcome, code", [("promoted", 0), ("gate_passed", 0), ("deployed", 0), ("error", 1),
                                           ("invalid", 2), ("gate_refused", 3), ("rolled_back", 4), ("held", 5)])
def test_each_outcome_has_its_exit_code(outcome, code):
    summary = new_summary("p", "m", "http://127.0.0.1:8265")
    add_stage(summary, "train", "reused", 0.0, version=3)
    done = finish(summary, outcome)
    assert EXIT_CODES[outcome] == code and done["exit_code"] == code and done["outcome"] == outcome
    assert done["stages"][0]["status"] == "reused" and done["finished"] >= done["started"]


def test_links_and_rollout_steps():
    assert job_link("http://h:8265/", "raysubmit_1") == {"id": "raysubmit_1", "logs": "http://h:8265/#/jobs/raysubmit_1"}
    assert job_link("http://h", None) is None
    events = [Event(1, "m", 2, "rollout_advance", 10.0, "rollout", {"weight": 0.5, "reasons": ["started"]}),
              Event(2, "m", 2, "traffic_changed", 11.0, "x", {}),
              Event(3, "m", 1, "rollout_promote", 12.0, "rollout", {}),
              Event(4, "m", 2, "rollout_promote", 13.0, "rollout", {"weight": 1.0, "numbers": {"canary": {}}})]
    assert [(s["action"], s["weight"]) for s in rollout_steps(events, 2)] == [("advance", 0.5), ("promote", 1.0)]


def test_the_pipeline_file_is_checked_like_every_config(tmp_path):
    bad = tmp_path / "pipeline.yaml"
    bad.write_text("model_name: m\ndata: {prepare: {dataset: iris}, path: /d}\n")
    with pytest.raises(ConfigError, match="give either data.prepare or data.path"):
        load_config(bad, PipelineConfig)
    with pytest.raises(ConfigError, match="rollout.enabled needs deploy.enabled"):
        load_config(None, PipelineConfig, ["deploy.enabled=false"])
    with pytest.raises(ConfigError, match="trian"):
        load_config(None, PipelineConfig, ["trian.set=[]"])


def test_every_stage_gets_the_pipelines_model_and_data(tmp_path):
    cfg = PipelineConfig(model_name="team-model", data={"path": "s3://b/d"},
                         train={"set": ["train.epochs=2"]}, deploy={"set": ["route_prefix=/tm"]})
    plan = plan_pipeline(cfg)
    assert (plan.train.model_name, plan.train.data.path, plan.train.train.epochs) == ("team-model", "s3://b/d", 2)
    assert plan.serve.model_name == "team-model" and plan.serve.prefix == "/tm"
    assert plan.rollout.model_name == "team-model" and plan.rollout.app_name == "team-model"
    tuned = plan_pipeline(cfg.model_copy(update={"train": cfg.train.model_copy(update={"tune": True, "set": []})}))
    assert tuned.kind == "tune" and tuned.train.base.model_name == "team-model" and tuned.train.base.data.path == "s3://b/d"
    with pytest.raises(ConfigError, match="train.epochs"):
        plan_pipeline(cfg.model_copy(update={"train": cfg.train.model_copy(update={"set": ["train.epochs=-1"]})}))


@pytest.mark.parametrize("args, message", [
    (["--until", "lunch"], "'lunch': use one of data, gate, deploy"),
    (["--set", "rollout.timeout_s=-1"], "rollout.timeout_s"),
])
def test_the_cli_refuses_a_bad_pipeline_before_anything_runs(tmp_path, args, message):
    from raymlops.cli import app

    result = CliRunner().invoke(app, ["pipeline", "run", "configs/pipeline.yaml", *args],
                                env={"RAY_ADDRESS": "http://127.0.0.1:9"})
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_stage_config_that_does_not_fit_the_data_is_invalid_before_anything_trains(home, tmp_path,
                                                                                      monkeypatch):
    from raymlops.config import PrepareConfig
    from raymlops.data import prepare_dataset
    from raymlops.pipeline.runner import PipelineRun

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")
    data = prepare_dataset(PrepareConfig(dataset="iris", output=str(tmp_path / "iris"))).directory
    said = []
    cfg = PipelineConfig(model_name="m", data={"path": data}, train={"set": ["model.params={bogus: 1}"]})
    summary = PipelineRun(cfg, until="gate", say=said.append).run()
    assert (summary["outcome"], summary["exit_code"]) == ("invalid", 2) and "model.params" in summary["error"]
    assert [(s["name"], s["status"]) for s in summary["stages"]] == [("data", "skipped"), ("train", "failed")]
    assert said[-1].startswith("==> pipeline pipeline: invalid")


class FakeRegistry:
    def __init__(self, aliases, events):
        self._aliases, self._events = aliases, events

    def aliases(self, model):
        return dict(self._aliases)

    def events(self, model, kinds=None, since=None, limit=None):
        return list(self._events)


@pytest.mark.parametrize("phases, timeout_s, outcome", [
    (["running", "running", "rolled_back"], 60.0, "rolled_back"),
    (["running", "promoted"], 60.0, "promoted"),
    (["running"] * 50, 0.05, "held"),  # not ended in time: the rollout goes on, the pipeline says held
])
def test_the_rollout_stage_starts_the_canary_and_follows_it_to_its_verdict(home, monkeypatch, phases, timeout_s,
                                                                           outcome):
    from raymlops.pipeline.runner import PipelineRun

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")
    cfg = PipelineConfig(model_name="m", rollout={"timeout_s": timeout_s, "poll_s": 0.01})
    run = PipelineRun(cfg, say=lambda text: None)
    run.registry = FakeRegistry({"champion": 1, "candidate": 2},
                                [Event(7, "m", 2, "rollout_advance", 1.0, "rollout", {"weight": 0.05}),
                                 Event(8, "m", 2, "rollout_rollback", 2.0, "rollout", {"reasons": ["errors"]})])
    calls, states = [], iter(phases)

    def rollout(action, config=None):
        calls.append((action, config is not None))
        if action == "start":
            return {"state": {"phase": "running", "step": 0, "canary_version": 2, "stable_version": 1}}
        if len(calls) == 1:
            return {"state": None}  # no rollout yet
        phase = next(states, phases[-1])
        return {"state": {"phase": phase, "step": 0, "canary_version": 2, "stable_version": 1, "reason": phase}}

    monkeypatch.setattr(run, "_rollout", rollout)
    assert run.rollout_stage(plan_pipeline(cfg), 2) == outcome
    assert calls[:2] == [("status", False), ("start", True)]
    assert [s["action"] for s in run.summary["rollout"]["steps"]] == ["advance", "rollback"]


def test_a_candidate_moved_by_someone_else_is_an_error(home, monkeypatch):
    from raymlops.errors import NotFoundError
    from raymlops.pipeline.runner import PipelineRun

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")
    run = PipelineRun(PipelineConfig(model_name="m"), say=lambda text: None)
    run.registry = FakeRegistry({"champion": 1, "candidate": 5}, [])
    with pytest.raises(NotFoundError, match="m@candidate is v5, not v2"):
        run.rollout_stage(plan_pipeline(run.cfg), 2)


def test_prepared_data_is_reused_until_its_preparation_changes_or_force(home, tmp_path, monkeypatch):
    from raymlops.pipeline.runner import PipelineRun

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")
    cfg = PipelineConfig(data={"prepare": {"dataset": "iris", "output": str(tmp_path / "iris")}})

    def data_stage(config, force=False):
        summary = PipelineRun(config, until="data", force=force, say=lambda text: None).run()
        assert (summary["outcome"], summary["exit_code"]) == ("data_ready", 0)
        return summary["stages"][0]["status"]

    assert data_stage(cfg) == "done" and (tmp_path / "iris" / "train.parquet").exists()
    assert data_stage(cfg) == "reused"
    assert data_stage(cfg, force=True) == "done"
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={
        "prepare": cfg.data.prepare.model_copy(update={"seed": 7})})})
    assert data_stage(other) == "done" and data_stage(other) == "reused"
