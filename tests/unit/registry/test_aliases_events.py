import time

import pytest

from raymlops.errors import AliasConflictError, InvalidNameError, NotFoundError, RegistryError


@pytest.fixture
def three_versions(registry, artifact_dir):
    for _ in range(3):
        registry.register("iris", artifact_dir())
    return registry


def test_set_move_and_delete_an_alias(three_versions):
    registry = three_versions
    registry.set_alias("iris", "champion", 1, actor="alice")
    assert registry.get("iris@champion").version == 1
    registry.set_alias("iris", "champion", 2, expected=1, actor="rollout")
    assert registry.resolve("iris", "champion") == 2
    registry.set_alias("iris", "candidate", 3)
    assert registry.aliases("iris") == {"champion": 2, "candidate": 3}
    registry.delete_alias("iris", "candidate", expected=3)
    assert registry.aliases("iris") == {"champion": 2}
    history = [(m.alias, m.old_version, m.new_version, m.actor) for m in registry.alias_history("iris")]
    assert history[:2] == [("champion", None, 1, "alice"), ("champion", 1, 2, "rollout")]
    assert history[-1][:3] == ("candidate", 3, None)


def test_compare_and_set_refuses_a_stale_expectation(three_versions):
    registry = three_versions
    registry.set_alias("iris", "champion", 1)
    registry.set_alias("iris", "champion", 2, expected=1)  # a person moved it
    with pytest.raises(AliasConflictError, match="at version 2, not 1"):
        registry.set_alias("iris", "champion", 3, expected=1)  # the rollout's stale view
    with pytest.raises(AliasConflictError):
        registry.set_alias("iris", "champion", 3, expected=None)  # "must be unset"
    with pytest.raises(AliasConflictError):
        registry.delete_alias("iris", "champion", expected=3)
    assert registry.resolve("iris", "champion") == 2
    assert len(registry.alias_history("iris", "champion")) == 2


def test_expected_none_creates_only_once(three_versions):
    three_versions.set_alias("iris", "candidate", 1, expected=None)
    with pytest.raises(AliasConflictError):
        three_versions.set_alias("iris", "candidate", 2, expected=None)


def test_alias_must_point_at_an_existing_version(three_versions):
    with pytest.raises(NotFoundError, match="iris:7"):
        three_versions.set_alias("iris", "champion", 7)
    with pytest.raises(NotFoundError, match="iris@nope"):
        three_versions.delete_alias("iris", "nope")


@pytest.mark.parametrize("bad", ["Champion", "../x", "a b", ""])
def test_alias_names_are_validated(three_versions, bad):
    with pytest.raises(InvalidNameError, match="invalid alias"):
        three_versions.set_alias("iris", bad, 1)


def test_events_are_appended_and_queryable(three_versions):
    registry = three_versions
    start = time.time()
    registry.set_alias("iris", "champion", 1, actor="alice")
    drift = registry.add_event("iris", "drift_detected", version=1, payload={"p": 0.001}, actor="monitor")
    registry.add_event("iris", "retrain_submitted", payload={"job": "raysubmit_1", "drift_event_id": drift.id})
    kinds = [e.kind for e in registry.events("iris")]
    assert kinds == ["registered"] * 3 + ["alias_moved", "drift_detected", "retrain_submitted"]
    only_drift = registry.events("iris", kinds=["drift_detected"])
    assert [(e.id, e.payload, e.actor, e.version) for e in only_drift] == [(drift.id, {"p": 0.001}, "monitor", 1)]
    recent = registry.events("iris", since=start)
    assert [e.kind for e in recent] == ["alias_moved", "drift_detected", "retrain_submitted"]
    assert registry.events("iris", until=start - 3600) == []
    assert [e.kind for e in registry.events("iris", limit=2)] == ["drift_detected", "retrain_submitted"]
    assert registry.events("other") == []


def test_event_kind_is_checked(three_versions):
    with pytest.raises(RegistryError, match="event kind"):
        three_versions.add_event("iris", "")


def test_the_offline_gate_is_recorded_either_way_and_a_reproduction_moves_no_alias(registry, artifact_dir):
    from raymlops.train.release import apply_gate

    versions = [registry.register("gated", artifact_dir(), metrics={"accuracy": a}) for a in (0.9, 0.9, 0.95)]
    first = apply_gate(registry, "gated", versions[0], "accuracy", 0.0, None, None, bootstrap_champion=True)
    tie = apply_gate(registry, "gated", versions[1], "accuracy", 0.05, 1, 0.9, bootstrap_champion=True)
    check = apply_gate(registry, "gated", versions[2], "accuracy", 0.0, 1, 0.9, bootstrap_champion=True,
                       move_aliases=False)
    assert (first.passed, tie.passed, check.passed) == (True, False, True)
    assert [(e.version, e.payload["passed"]) for e in registry.events("gated", kinds=["offline_gate"])] == \
        [(1, True), (2, False), (3, True)]
    assert registry.aliases("gated") == {"champion": 1, "candidate": 1}


def test_the_cluster_secret_is_made_once_and_shared_by_every_opener(registry_config):
    from raymlops.registry import Registry

    first, second = Registry.from_config(registry_config), Registry.from_config(registry_config)
    try:
        key = first.signing_key("requests")
        assert len(key) == 32 and second.signing_key("requests") == key
        assert first.signing_key("artifacts") != key
    finally:
        first.close()
        second.close()
