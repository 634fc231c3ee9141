"""Running a pipeline where the cluster is (inside the command job a client submits, or on a
managed local cluster): every stage's config is loaded and checked before anything runs, then
data → train/tune (with its offline gate) → deploy → rollout, each reused when its result
already exists. Progress goes to ``say`` as plain lines; the summary is returned."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from raymlops.config import (
    CONFIG_MODELS,
    PipelineConfig,
    PrepareConfig,
    RolloutConfig,
    ServeConfig,
    find_config,
    load_config,
)
from raymlops.errors import ConfigError, DataError, NotFoundError, RaymlopsError
from raymlops.pipeline.outcome import ROLLOUT_OUTCOMES, add_stage, finish, job_link, new_summary, rollout_steps
from raymlops.pipeline.reuse import data_hashes, version_made_from

#: Written next to prepared splits: the preparation config's hash, so a re-run can reuse them.
PREPARED_MARK = ".raymlops-prepared.json"


@dataclass(frozen=True)
class Plan:
    """A pipeline's stage configs, loaded and validated before anything runs."""

    cfg: PipelineConfig
    train: Any  # TrainConfig or TuneConfig
    serve: ServeConfig | None
    rollout: RolloutConfig | None

    @property
    def kind(self) -> str:
        """``train`` or ``tune``."""
        return "tune" if self.cfg.train.tune else "train"

    @property
    def train_config(self) -> Any:
        """The TrainConfig a run trains with (a tuning config's ``base``)."""
        return self.train.base if self.kind == "tune" else self.train


def _stage_config(kind: str, stage, overrides: list[str]):
    return load_config(find_config(stage.config, kind), CONFIG_MODELS[kind], [*stage.set, *overrides])


def plan_pipeline(cfg: PipelineConfig, data_path: str | None = None) -> Plan:
    """Load every stage's config with the pipeline's model name (and data path).

    Raises:
        ConfigError: a stage's config does not validate (naming file and field).
    """
    prefix = "base." if cfg.train.tune else ""
    data = data_path or cfg.data.path or (cfg.data.prepare.output if cfg.data.prepare else None)
    train = _stage_config("tune" if cfg.train.tune else "train", cfg.train,
                          [f"{prefix}model_name={cfg.model_name}", *([f"{prefix}data.path={data}"] if data else [])])
    serve = _stage_config("serve", cfg.deploy, [f"model_name={cfg.model_name}"]) if cfg.deploy.enabled else None
    rollout = _stage_config("rollout", cfg.rollout, [f"model_name={cfg.model_name}"]) \
        if cfg.rollout.enabled and serve is not None else None
    if rollout is not None and serve is not None:
        rollout = rollout.model_copy(update={"app_name": serve.application})
    return Plan(cfg, train, serve, rollout)


def _digest(model: Any) -> str:
    return hashlib.sha256(json.dumps(model.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class PipelineRun:
    """One run of a pipeline: its stages in order, recorded in ``summary``."""

    def __init__(self, cfg: PipelineConfig, until: str | None = None, force: bool = False,
                 say: Callable[[str], None] = print) -> None:
        from raymlops.cluster import resolve_addresses
        from raymlops.registry.lineage import current_job_id

        self.cfg, self.until, self.force, self.say = cfg, until, force, say
        self.addresses = resolve_addresses()
        self.summary = new_summary(cfg.name, cfg.model_name, self.addresses.dashboard)
        link = job_link(self.addresses.dashboard, current_job_id())
        if link:
            self.summary["links"]["jobs"].append(link)
        self.registry: Any = None
        self.running: tuple[str, float] | None = None

    # ------------------------------------------------------------------ the run

    def run(self) -> dict[str, Any]:
        """Every stage up to ``until``; returns the finished summary (never raises raymlops errors)."""
        try:
            plan = plan_pipeline(self.cfg)  # every config checked before anything runs
        except (ConfigError, DataError) as exc:
            return self._end("invalid", str(exc))
        try:
            return self._stages(plan)
        except ConfigError as exc:  # a stage's settings do not fit (e.g. the model's parameters, a taken route)
            return self._end("invalid", str(exc))
        except RaymlopsError as exc:
            return self._end("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a CI job gets its summary and exit code, never only a traceback
            return self._end("error", f"{type(exc).__name__}: {exc}")
        finally:
            if self.registry is not None:
                self.registry.close()

    def _stages(self, plan: Plan) -> dict[str, Any]:
        data_path = self.data_stage()
        if data_path:
            plan = plan_pipeline(self.cfg, data_path)
        if self.until == "data":
            return self._end("data_ready")
        version, gate = self.train_stage(plan)
        if not gate.get("passed"):
            return self._end("gate_refused")
        if self.until == "gate" or plan.serve is None:
            self._skip("deploy", "rollout")
            return self._end("gate_passed")
        self.deploy_stage(plan)
        if self.until == "deploy" or plan.rollout is None:
            self._skip("rollout")
            return self._end("deployed")
        return self._end(self.rollout_stage(plan, version))

    def _begin(self, name: str) -> float:
        """Mark a stage as under way (recorded as ``failed`` if the run ends inside it)."""
        self.running = (name, time.time())
        return self.running[1]

    def _end(self, outcome: str, error: str | None = None) -> dict[str, Any]:
        if error and self.running and self.running[0] not in {s["name"] for s in self.summary["stages"]}:
            add_stage(self.summary, self.running[0], "failed", self.running[1])
        summary = finish(self.summary, outcome, error)
        self.say(f"==> pipeline {self.cfg.name}: {outcome} (exit {summary['exit_code']})" +
                 (f" — {error}" if error else ""))
        return summary

    def _skip(self, *stages: str) -> None:
        for name in stages:
            add_stage(self.summary, name, "skipped", time.time())
            self.say(f"==> {name}: skipped")

    def _open_registry(self, registry_file: str | None):
        if self.registry is None:
            from raymlops.config import RegistryConfig
            from raymlops.registry import Registry

            path = registry_file if registry_file and Path(registry_file).exists() else None
            self.registry = Registry.from_config(load_config(path, RegistryConfig))
        return self.registry

    # ------------------------------------------------------------------ stages

    def data_stage(self) -> str | None:
        """Prepare the splits (reused when the same preparation already wrote them)."""
        prepare: PrepareConfig | None = self.cfg.data.prepare
        if prepare is None:
            add_stage(self.summary, "data", "skipped", time.time(), path=self.cfg.data.path)
            return self.cfg.data.path
        from raymlops import filesystem
        from raymlops.data import prepare_dataset

        started = self._begin("data")
        self.say("==> data: preparing")
        digest = _digest(prepare)
        output = prepare.output or f"$RAYMLOPS_HOME/data/{prepare.dataset}"
        # a local output keeps the preparation's hash beside the splits (a URI is prepared again:
        # the same config writes the same bytes)
        mark = Path(filesystem.expand(output)) / PREPARED_MARK if filesystem.is_local(output) else None
        if not self.force and mark is not None and mark.exists() \
                and json.loads(mark.read_text()).get("config_sha256") == digest:
            add_stage(self.summary, "data", "reused", started, path=output)
            self.say(f"==> data: reused {output}")
            return output
        prepared = prepare_dataset(prepare.model_copy(update={"output": output}))
        if mark is not None:
            mark.write_text(json.dumps({"config_sha256": digest}))
        add_stage(self.summary, "data", "done", started, path=output, rows=prepared.rows)
        self.say(f"==> data: done {output}")
        return output

    def train_stage(self, plan: Plan) -> tuple[int, dict[str, Any]]:
        """Train (or tune) and gate; reused when a version was made from the same config and data.
        Returns the version and the gate's record."""
        from raymlops.registry.lineage import config_hash, fingerprint
        from raymlops.train.trainer import prepare_inputs

        started = self._begin(plan.kind)
        train_cfg = plan.train_config
        self.say(f"==> {plan.kind}: checking inputs")
        inputs = prepare_inputs(train_cfg)
        registry = self._open_registry(train_cfg.registry)
        hashes = data_hashes(fp for uri in [*inputs.train_uris, inputs.valid_uri, inputs.test_uri]
                             for fp in fingerprint(uri))
        key = "tune_config_hash" if plan.kind == "tune" else "config_hash"
        wanted = config_hash(plan.train.model_dump(mode="json"))
        try:
            versions = registry.list_versions(self.cfg.model_name)
        except NotFoundError:
            versions = []
        found = None if self.force else version_made_from(versions, wanted, hashes, key)
        if found is not None:
            status, version, metrics = "reused", found.version, found.metrics
            self.say(f"==> {plan.kind}: reused {self.cfg.model_name}:{version} (same config and data)")
        else:
            import ray

            self.say(f"==> {plan.kind}: running")
            if not ray.is_initialized():
                ray.init()
            if plan.kind == "tune":
                from raymlops.tune.tuner import run_tuning

                outcome = run_tuning(plan.train, inputs)
            else:
                from raymlops.train.run import run_training

                outcome = run_training(plan.train, inputs)
            status, version, metrics = "done", outcome.version.version, outcome.metrics
        gates = [e for e in registry.events(self.cfg.model_name, kinds=["offline_gate"], limit=None)
                 if e.version == version]
        gate = dict(gates[-1].payload) if gates else {"passed": False, "reason": "no offline gate was recorded"}
        self.summary.update(version=version, metrics=metrics, gate=gate)
        add_stage(self.summary, plan.kind, status, started, version=version)
        self.say(f"==> gate: {'passed' if gate.get('passed') else 'refused'} — {gate.get('reason', '')}")
        return version, gate

    def deploy_stage(self, plan: Plan) -> None:
        """Deploy or update the model's application (Serve leaves an unchanged one as it is)."""
        from raymlops.serve.deploy import deploy

        assert plan.serve is not None
        started = self._begin("deploy")
        self.say(f"==> deploy: {plan.serve.application} at {plan.serve.prefix}")
        before = self._deployed_args(plan.serve.application)
        deployed = deploy(plan.serve, self.addresses)
        after = self._deployed_args(plan.serve.application)
        status = "reused" if before is not None and before == after else "done"
        self.summary["links"]["serve"] = deployed.url
        add_stage(self.summary, "deploy", status, started, application=deployed.app_name, url=deployed.url)
        self.say(f"==> deploy: {status} {deployed.url}")

    def _deployed_args(self, application: str) -> dict[str, Any] | None:
        from raymlops.cluster import dashboard_get

        app = (dashboard_get(self.addresses, "/api/serve/applications/").get("applications") or {}).get(application)
        if not app or app.get("status") != "RUNNING":
            return None
        return (app.get("deployed_app_config") or {}).get("args")

    def rollout_stage(self, plan: Plan, version: int) -> str:
        """Roll the new version out as the canary and wait for the rollout's verdict."""
        assert plan.rollout is not None
        started = self._begin("rollout")
        registry = self.registry
        aliases = registry.aliases(self.cfg.model_name)
        if aliases.get("champion") == version:
            add_stage(self.summary, "rollout", "reused", started, reason=f"v{version} is already the champion")
            self.say(f"==> rollout: v{version} is already the champion")
            self.summary["rollout"] = {"phase": "promoted", "canary_version": version, "steps": []}
            return "promoted"
        if aliases.get("candidate") != version:
            raise NotFoundError(what="candidate", name=f"{self.cfg.model_name}@candidate is "
                                f"v{aliases.get('candidate')}, not v{version}: another run moved it")
        state = self._rollout("status").get("state") or {}
        if state.get("canary_version") != version or (state.get("phase") in ("rolled_back", "aborted")
                                                      and self.force):
            self.say(f"==> rollout: starting v{version} against v{aliases.get('champion')}")
            state = self._rollout("start", plan.rollout.model_dump(mode="json"))["state"]
        else:
            self.say(f"==> rollout: v{version} already {state.get('phase')}; following it")
        deadline = started + self.cfg.rollout.timeout_s
        last = None
        while state.get("phase") == "running" and time.time() < deadline:
            if (state.get("step"), state.get("phase")) != last:
                last = (state.get("step"), state.get("phase"))
                self.say(f"==> rollout: step {state.get('step', 0) + 1}/{len(plan.rollout.steps)} running")
            time.sleep(self.cfg.rollout.poll_s)
            state = self._rollout("status").get("state") or {}
        phase = state.get("phase", "running")
        outcome = ROLLOUT_OUTCOMES.get(phase, "held")
        events = registry.events(self.cfg.model_name, since=started - 1, limit=None)
        self.summary["rollout"] = {"phase": phase, "reason": state.get("reason"), "canary_version": version,
                                   "stable_version": state.get("stable_version"),
                                   "steps": rollout_steps(events, version)}
        add_stage(self.summary, "rollout", "done", started, phase=phase)
        self.say(f"==> rollout: {phase}" + (f" — {state.get('reason')}" if state.get("reason") else ""))
        return outcome

    def _rollout(self, action: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
        import ray

        from raymlops.serve import operations

        if not ray.is_initialized():
            ray.init()
        return asyncio.run(operations.rollout_command(self.cfg.model_name, action, config))
