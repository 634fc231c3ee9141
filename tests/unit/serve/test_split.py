import random

import pytest

from raymlops.serve.split import TrafficPolicy, key_point, route

KEYS = [f"user-{i}" for i in range(4000)]


@pytest.mark.parametrize("weight", [0.0, 0.05, 0.1, 0.5, 0.9, 1.0])
def test_random_split_matches_the_weight(weight):
    rng = random.Random(1)
    policy = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=weight)
    share = sum(route(policy, rng=rng).arm == "canary" for _ in range(4000)) / 4000
    # within 4 standard deviations of a binomial share
    tolerance = 4 * (weight * (1 - weight) / 4000) ** 0.5 + 1e-9
    assert abs(share - weight) <= tolerance


@pytest.mark.parametrize("weight", [0.1, 0.25, 0.5])
def test_sticky_split_matches_the_weight_too(weight):
    policy = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=weight)
    share = sum(route(policy, key).arm == "canary" for key in KEYS) / len(KEYS)
    assert abs(share - weight) <= 4 * (weight * (1 - weight) / len(KEYS)) ** 0.5


def test_a_key_stays_on_its_version_while_weights_stay_put():
    policy = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=0.3)
    first = [route(policy, key).version for key in KEYS]
    assert first == [route(policy, key).version for key in KEYS]


@pytest.mark.parametrize("before, after", [(0.05, 0.25), (0.25, 0.5), (0.5, 1.0), (0.0, 0.05)])
def test_raising_the_canary_weight_moves_only_the_keys_it_must(before, after):
    old = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=before)
    new = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=after)
    moved = [key for key in KEYS if route(old, key).version != route(new, key).version]
    assert all(route(old, key).arm == "stable" and route(new, key).arm == "canary" for key in moved)
    expected = after - before
    assert abs(len(moved) / len(KEYS) - expected) <= 4 * (expected * (1 - expected) / len(KEYS)) ** 0.5 + 1e-9


def test_shadow_never_changes_the_answering_version():
    base = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=0.2)
    shadowed = TrafficPolicy(stable_version=1, canary_version=2, canary_weight=0.2, shadow_version=3, shadow_share=0.5)
    for key in KEYS[:1000]:
        assert route(base, key).version == route(shadowed, key).version
    share = sum(route(shadowed, key).shadow_version == 3 for key in KEYS) / len(KEYS)
    assert abs(share - 0.5) < 0.04


def test_a_version_is_not_shadowed_by_itself():
    policy = TrafficPolicy(stable_version=1, shadow_version=1, shadow_share=1.0)
    assert route(policy, "k").shadow_version is None


@pytest.mark.parametrize("kwargs, message", [
    ({"canary_weight": 1.5, "canary_version": 2}, "canary_weight"),
    ({"canary_weight": 0.1}, "needs a canary_version"),
    ({"shadow_share": 0.1}, "needs a shadow_version"),
    ({"shadow_share": -0.1, "shadow_version": 2}, "shadow_share"),
])
def test_invalid_policies_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrafficPolicy(stable_version=1, **kwargs)


def test_key_points_are_stable_and_uniform():
    assert key_point("abc") == key_point("abc")
    points = [key_point(k) for k in KEYS]
    assert 0.45 < sum(points) / len(points) < 0.55
    assert all(0 <= p < 1 for p in points)


def test_policy_from_user_config():
    policy = TrafficPolicy.from_user_config({"stable_version": 1, "canary_version": 2, "canary_weight": 0.4,
                                             "shadow_version": None, "sticky_field": "user"})
    assert (policy.stable_version, policy.canary_version, policy.canary_weight) == (1, 2, 0.4)
    with pytest.raises(ValueError):
        TrafficPolicy.from_user_config({"stable_version": 1, "canary_weight": 0.4})
