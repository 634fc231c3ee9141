"""The feature-wise backends agree, corrections match alibi-detect, and the statistical
behaviour holds on the synthetic generator (fixed seeds)."""

import numpy as np
import pytest

from raymlops.config import ShiftConfig, SynthConfig
from raymlops.data.synth import generate
from raymlops.monitor.detectors import (
    AlibiFeatureDrift,
    ScipyFeatureDrift,
    TabularReference,
    build_feature_drift,
    code,
    corrected,
)

NUMERIC = [f"x{i}" for i in range(18)]
CATEGORICAL = ["c0", "c1"]
P_VALUE_TOLERANCE = 1e-4  # alibi computes in float32


def columns(table):
    return {name: table.column(name).to_pylist() for name in NUMERIC + CATEGORICAL}


REFERENCE_ROWS = 5000
SEED = 1  # the generator's category mixes and weights come from the seed: one seed, one population


def synth(rows, **shift):
    return columns(generate(SynthConfig(rows=rows, seed=SEED, shift=ShiftConfig(**shift))))


@pytest.fixture(scope="module")
def reference():
    return TabularReference.build(synth(REFERENCE_ROWS), NUMERIC, CATEGORICAL)


def windows(n, rows, offset=0, **shift):
    """n windows of fresh rows (past the reference's and each other's, by ``offset`` windows)."""
    start = REFERENCE_ROWS + offset * rows
    data = synth(start + n * rows, **shift)
    return [{k: v[start + i * rows:start + (i + 1) * rows] for k, v in data.items()} for i in range(n)]


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_scipy_and_alibi_backends_agree(reference, correction):
    alibi = AlibiFeatureDrift(reference, 0.05, correction)
    scipy = ScipyFeatureDrift(reference, 0.05, correction)
    for window in windows(3, 200) + windows(2, 200, offset=3, features=[0], magnitude=0.5):
        a, s = alibi.test(window), scipy.test(window)
        assert set(a.p_values) == set(s.p_values) == set(NUMERIC + CATEGORICAL)
        for name in a.p_values:
            assert abs(a.p_values[name] - s.p_values[name]) <= P_VALUE_TOLERANCE, name
            assert a.distances[name] == pytest.approx(s.distances[name], rel=1e-4, abs=1e-5)
        assert a.drift == s.drift and a.threshold == pytest.approx(s.threshold)


def test_corrections():
    p = np.array([0.001, 0.02, 0.04, 0.5])
    assert corrected(p, 0.05, "bonferroni") == (True, 0.0125)
    assert corrected(np.array([0.03, 0.04]), 0.05, "bonferroni")[0] is False
    drift, threshold = corrected(p, 0.05, "fdr")
    assert drift and threshold == pytest.approx(0.025)  # Benjamini-Hochberg: the 2nd smallest passes 2/4 * 0.05
    assert corrected(np.array([0.2, 0.6]), 0.05, "fdr")[0] is False


def test_unseen_categories_get_their_own_code():
    assert code(["b", "zzz", "a", "zzz", "y"], ["a", "b"]).tolist() == [1, 2, 0, 2, 3]
    assert code(np.array(["a", None, "q", None], dtype=object), ["a", "None"]).tolist() == [0, 1, 2, 1]  # as text
    assert code(np.array([2.0, 1.5, 2.0]), ["1.5"]).tolist() == [1, 0, 1]
    assert code([], ["a"]).tolist() == []


def test_unknown_backend_is_a_config_error(reference):
    from raymlops.errors import ConfigError

    with pytest.raises(ConfigError, match="backend"):
        build_feature_drift("nope", reference, 0.05, "bonferroni")


def test_no_drift_false_alarm_rate_stays_near_the_significance(reference):
    """100 in-distribution windows of 200 rows at p = 0.05 (Bonferroni): at most 8% flagged."""
    detector = ScipyFeatureDrift(reference, 0.05, "bonferroni")
    flagged = sum(detector.test(w).drift for w in windows(100, 200))
    assert flagged <= 8, flagged


def test_half_sigma_shift_in_one_of_twenty_features_is_flagged_within_two_windows(reference):
    """Stated behaviour: with 200-row windows, a 0.5-std mean shift of x0 is flagged in the first
    or second window (KS with Bonferroni over 20 features), and x0 is the feature with the lowest p."""
    detector = ScipyFeatureDrift(reference, 0.05, "bonferroni")
    for seed in range(5):
        results = [detector.test(w) for w in windows(2, 200, offset=2 * seed, features=[0], magnitude=0.5)]
        assert any(r.drift for r in results), seed
        first = next(r for r in results if r.drift)
        assert min(first.p_values, key=first.p_values.get) == "x0"
