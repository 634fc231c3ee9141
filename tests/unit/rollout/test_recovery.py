"""A rollout controller that dies in the middle of a decision finishes it when it comes back:
the decision is persisted before its side effects, an alias already at its target counts as
moved, and the registry's champion and the traffic agree again. And a version that passes its
gate while a rollout runs waits for it instead of moving the candidate under it."""

import asyncio

import pytest

from raymlops.config import RegistryConfig, RolloutConfig
from raymlops.registry import Registry
from raymlops.rollout.controller import RolloutController
from raymlops.rollout.policy import Decision, RolloutState, decision_from_dict, decision_to_dict

STEPS = "steps=[{weight: 1.0, min_duration_s: 0, min_canary_requests: 1}]"


@pytest.fixture
def registry_cfg(tmp_path):
    cfg = RegistryConfig(database_url=f"sqlite:///{tmp_path}/r.db", artifact_root=str(tmp_path / "artifacts"),
                         required_files=[])
    registry = Registry.from_config(cfg)
    for n in (1, 2):
        directory = tmp_path / f"v{n}"
        directory.mkdir()
        (directory / "model.json").write_bytes(b'{"n": %d}' % n)
        registry.register("m", directory)
    registry.set_alias("m", "champion", 1)
    registry.set_alias("m", "candidate", 2)
    registry.close()
    return cfg


class Crash(Exception):
    pass


def controller(cfg, traffic, crash_on_traffic=False):
    ctrl = RolloutController("m", cfg.model_dump(mode="json"))

    async def apply_traffic(changes):
        if crash_on_traffic:
            raise Crash("the process died here")
        traffic.append(changes)

    ctrl._traffic = apply_traffic
    return ctrl


def test_decisions_round_trip_as_json():
    decision = Decision("promote", RolloutState("m", 1, 2, phase="promoted", finished=5.0), 1.0, ("all passed",),
                        {"canary": {"requests": 3}})
    assert decision_from_dict(decision_to_dict(decision)) == decision


def test_a_promotion_cut_short_after_the_alias_moved_is_finished_by_the_next_controller(registry_cfg):
    from raymlops.config import load_config

    rollout = load_config(None, RolloutConfig, ["model_name=m", STEPS])
    traffic: list = []
    first = controller(registry_cfg, traffic)

    async def scenario():
        await first.start(rollout.model_dump(mode="json"))
        first._traffic = controller(registry_cfg, traffic, crash_on_traffic=True)._traffic
        promote = Decision("promote", RolloutState("m", 1, 2, phase="promoted", finished=1.0), 1.0, ("gates passed",))
        with pytest.raises(Crash):
            await first._apply(promote)  # the champion moved, then the process died before traffic changed
        second = controller(registry_cfg, traffic)  # Ray restarts the actor: a new instance from persisted state
        assert second.intent is not None and second.state.phase == "running"
        await second._tick()
        return second

    second = asyncio.run(scenario())
    registry = Registry.from_config(registry_cfg)
    aliases = registry.aliases("m")
    assert aliases["champion"] == 2 and "candidate" not in aliases
    assert traffic[-1] == {"stable_version": 2, "canary_version": 1, "canary_weight": 0.0, "retiring_version": 1}
    assert second.state.phase == "promoted" and second.intent is None
    assert registry.active_rollout("m") is None
    registry.close()


def test_a_version_gated_during_a_rollout_is_queued_not_made_candidate(registry_cfg, tmp_path):
    from raymlops.config import load_config
    from raymlops.train.release import apply_gate

    traffic: list = []
    ctrl = controller(registry_cfg, traffic)
    asyncio.run(ctrl.start(load_config(None, RolloutConfig, ["model_name=m", STEPS]).model_dump(mode="json")))
    registry = Registry.from_config(registry_cfg)
    assert registry.active_rollout("m") == 2
    directory = tmp_path / "v3"
    directory.mkdir()
    (directory / "model.json").write_bytes(b'{"n": 3}')
    version = registry.register("m", directory, metrics={"accuracy": 0.9})
    gate = apply_gate(registry, "m", version, "accuracy", 0.0, None, None, bootstrap_champion=False)
    assert gate.passed and registry.aliases("m")["candidate"] == 2  # not moved under the running rollout
    event = registry.events("m", kinds=["offline_gate"])[-1]
    assert event.payload["queued_behind"] == 2
    registry.close()
