"""The false-alarm budget, calibrated thresholds, effect sizes and the label-free accuracy
estimate, stated as statistical properties over many simulated windows with fixed seeds: a
change that breaks calibration fails here."""

import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError

from raymlops.config import DetectorCadence, MonitorConfig
from raymlops.errors import ConfigError
from raymlops.monitor.budget import BudgetLedger, plan_budget
from raymlops.monitor.calibration import calibrate, exact_class_test, null_min_p
from raymlops.monitor.effects import psi, wasserstein_std
from raymlops.monitor.estimate import AccuracyEstimator


def cadence(**changes):
    return DetectorCadence(**changes).model_dump()


# --------------------------------------------------------------------------- the budget

def test_the_budget_is_split_by_share_over_each_detectors_looks():
    plan = plan_budget(cadence(budget={"false_alarms": 2, "per_rows": 10_000,
                                       "shares": {"feature": 1, "output": 1, "mmd": 2, "online": 9}}), 500)
    assert set(plan.allocations) == {"feature", "output", "mmd"}  # online is off by default: its share is not spent
    assert plan.allocations["feature"].alarms == pytest.approx(0.5) and plan.allocations["mmd"].alarms == pytest.approx(1)
    assert plan.alpha("feature") == pytest.approx(0.5 / 20)  # 20 windows of 500 rows per 10,000 rows
    assert plan.alpha("mmd") == pytest.approx(1 / 4)  # every 5th window: 4 looks
    assert sum(a.alarms for a in plan.allocations.values()) == pytest.approx(2)


def test_the_online_detectors_ert_derives_from_its_share_or_spends_what_an_explicit_one_implies():
    derived = plan_budget(cadence(online={"enabled": True, "sample_rate": 0.1},
                                  budget={"false_alarms": 1, "per_rows": 10_000,
                                          "shares": {"feature": 1, "online": 1}}, output=False,
                                  mmd={"enabled": False}), 100)
    assert derived.allocations["online"].ert == pytest.approx(1000 / 0.5)  # 1,000 sampled rows, half an alarm
    explicit = plan_budget(cadence(online={"enabled": True, "sample_rate": 0.1, "ert": 4000},
                                   budget={"false_alarms": 1, "per_rows": 10_000}, output=False,
                                   mmd={"enabled": False}), 100)
    assert explicit.allocations["online"].alarms == pytest.approx(0.25)
    assert explicit.allocations["feature"].alarms == pytest.approx(0.75)  # the rest goes to the window tests


def test_an_online_ert_that_spends_the_whole_budget_is_refused_with_the_fix():
    with pytest.raises(ValidationError, match=r"detectors.online.ert.*raise ert to at least 4000"):
        MonitorConfig.model_validate({"detectors": {"online": {"enabled": True, "ert": 100, "sample_rate": 0.1},
                                                    "budget": {"false_alarms": 1, "per_rows": 20_000}}})
    with pytest.raises(ConfigError, match="no detector"):
        plan_budget(cadence(feature_wise=False, output=False, mmd={"enabled": False}), 100)


def test_the_ledger_counts_looks_alarms_and_the_expected_false_alarms():
    plan = plan_budget(cadence(budget={"false_alarms": 1, "per_rows": 1000}), 100)
    ledger = BudgetLedger()
    for i in range(10):
        ledger.window(3, 100, [("feature", i == 4, plan.alpha("feature")), ("output", i in (4, 7), plan.alpha("output"))])
    spent = ledger.of(3, plan)
    assert spent["rows"] == 1000 and spent["alarms"] == 2 and spent["budget_so_far"] == pytest.approx(1.0)
    assert spent["detectors"]["feature"]["looks"] == 10 and spent["detectors"]["output"]["alarms"] == 2
    assert spent["detectors"]["feature"]["expected_false_alarms"] == pytest.approx(10 * plan.alpha("feature"))
    assert spent["detectors"]["mmd"]["looks"] == 0 and "allocation" in spent["detectors"]["mmd"]
    restored = BudgetLedger()
    restored.restore(ledger.state())
    assert restored.of(3, plan) == spent


# --------------------------------------------------------------------------- calibration

def correlated_discrete(rows: int, features: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Pixel-like columns: integers 0..16 driven by one shared factor, so they correlate."""
    shared = rng.normal(size=rows)
    return {f"f{i}": np.clip(np.round(8 + 4 * (0.8 * shared + 0.6 * rng.normal(size=rows))), 0, 16)
            for i in range(features)}


def false_alarm_rates(alpha: float, references: int, windows: int, seed: int) -> tuple[float, float]:
    """Shares of null windows (fresh draws from the reference's population) that alarm with the
    calibrated threshold, and with Bonferroni's."""
    from raymlops.monitor.detectors import feature_p_values

    rng = np.random.default_rng(seed)
    calibrated = bonferroni = looks = 0
    for _ in range(references):
        reference = correlated_discrete(400, 12, rng)
        threshold = calibrate(null_min_p(reference, set(), 100, 400, rng), alpha, 12).threshold
        for _ in range(windows):
            lowest = min(feature_p_values(reference, correlated_discrete(100, 12, rng), set()).values())
            calibrated += lowest < threshold
            bonferroni += lowest < alpha / 12
            looks += 1
    return calibrated / looks, bonferroni / looks


def test_calibrated_thresholds_spend_alpha_where_bonferroni_spends_a_fraction():
    alpha = 0.05
    rate, bonferroni = false_alarm_rates(alpha, references=20, windows=25, seed=1)
    assert 0.6 * alpha <= rate <= 1.5 * alpha, rate  # 500 looks: ±0.01 is two standard errors
    assert bonferroni < 0.5 * alpha, bonferroni  # correlated, discrete features: nominal tests waste the budget


def test_the_null_min_p_of_independent_continuous_features_follows_sidak():
    rng = np.random.default_rng(2)
    reference = {f"x{i}": rng.normal(size=1000) for i in range(8)}
    null = null_min_p(reference, set(), 200, 2000, rng)
    for t in (0.01, 0.05):
        assert np.mean(null < t) == pytest.approx(1 - (1 - t) ** 8, abs=0.025)


def test_the_exact_class_test_holds_its_level_with_a_rare_class():
    rng = np.random.default_rng(4)
    shares = np.array([0.9, 0.08, 0.02])  # a class with 2 expected rows in a 100-row window
    alarms = 0
    for _ in range(600):
        reference = rng.multinomial(500, shares)
        window = rng.multinomial(100, shares)
        alarms += exact_class_test(reference, window, 1000, rng)[1] < 0.05
    assert 0.03 <= alarms / 600 <= 0.07, alarms / 600
    shifted = exact_class_test(rng.multinomial(500, shares), np.array([60, 25, 15]), 1000, rng)[1]
    assert shifted < 0.001


def test_the_vectorised_null_tests_give_scipys_p_values():
    from scipy.stats import chi2_contingency, ks_2samp

    from raymlops.monitor.calibration import chi2_p_values, ks_sf, ks_statistics, window_masks

    rng = np.random.default_rng(9)
    values = np.round(rng.normal(size=300), 1)  # ties, as in real data
    masks = window_masks(300, 100, 5, rng)
    d, en = ks_statistics(values, masks)
    expected = [ks_2samp(values[~m], values[m], method="asymp").pvalue for m in masks]
    assert ks_sf(d, en) == pytest.approx(expected, rel=1e-9)
    for width in (2, 4):  # Yates' correction at one degree of freedom, none above
        codes = rng.integers(0, width, 300).astype(float)
        tables = [[[np.sum(codes[~m] == k) for k in range(width)], [np.sum(codes[m] == k) for k in range(width)]]
                  for m in masks]
        assert chi2_p_values(codes, masks) == pytest.approx([chi2_contingency(t)[1] for t in tables], rel=1e-9)


def test_a_predicted_class_the_reference_never_made_is_tested_not_crashed():
    rng = np.random.default_rng(10)
    statistic, p = exact_class_test(np.array([250, 250]), np.array([40, 40, 20]), 1000, rng)
    assert statistic > 0 and p < 0.01


# --------------------------------------------------------------------------- effect sizes

def test_wasserstein_is_scipys_distance_for_any_samples():
    from scipy.stats import wasserstein_distance

    from raymlops.monitor.effects import SortedReference

    rng = np.random.default_rng(6)
    cases = [(rng.normal(0, 1, 2500), rng.normal(0.3, 1.2, 500)), (rng.integers(0, 5, 300).astype(float), rng.integers(0, 7, 40).astype(float)),
             (np.array([1.0]), np.array([3.0, 4.0])), (rng.exponential(1, 1000), rng.exponential(1, 1000))]
    for reference, window in cases:
        ref = SortedReference(reference)
        assert ref.wasserstein_std(window) == pytest.approx(wasserstein_distance(reference, window) / (reference.std() or 1.0), rel=1e-12)
    assert SortedReference(np.array([1.0, np.nan, np.inf])).wasserstein_std(np.array([2.0, np.nan])) == pytest.approx(1.0)
    assert SortedReference(np.array([np.nan])).wasserstein_std(np.array([2.0])) == 0.0


def test_effect_sizes_measure_how_far_not_how_significant():
    rng = np.random.default_rng(5)
    reference = rng.normal(10, 2, 5000)
    assert wasserstein_std(reference, rng.normal(11, 2, 5000)) == pytest.approx(0.5, abs=0.05)  # 1 = half a std
    assert wasserstein_std(reference, rng.normal(10, 2, 5000)) < 0.05
    assert psi(np.repeat([0, 1], 500), np.repeat([0, 1], 500)) == 0.0
    assert psi(np.repeat([0, 1], [500, 500]), np.repeat([0, 1], [900, 100])) > 0.25  # a large change
    assert np.isfinite(psi(np.zeros(100, dtype=int), np.full(100, 3)))  # a category never seen: large but finite


def reference_of(features, predictions=None, confidence=None, labels=None):
    from raymlops.data.schema import DatasetSchema, FeatureSpec
    from raymlops.monitor.checker import VersionReference

    schema = DatasetSchema(name="m", label="y", classes=("a", "b"),
                           features=tuple(FeatureSpec(name=n, kind="numeric", dtype="double") for n in features))
    rows = len(next(iter(features.values())))
    return VersionReference(schema, {n: list(v) for n, v in features.items()}, predictions or ["a", "b"] * (rows // 2),
                            {"backend": "scipy"}, confidence, labels)


def window_of(features, predictions, confidence=None):
    from raymlops.monitor.window import CONFIDENCE, PREDICTION, Window

    window = Window(1, 0.0)
    columns = {n: pa.array(np.asarray(v, dtype=float)) for n, v in features.items()}
    columns[PREDICTION] = pa.array(predictions)
    if confidence is not None:
        columns[CONFIDENCE] = pa.array(np.asarray(confidence, dtype=float))
    window.append(pa.table(columns))
    return window


def test_a_significant_but_negligible_shift_is_reported_without_an_alarm():
    from raymlops.monitor.checker import VersionChecker

    rng = np.random.default_rng(6)
    reference = reference_of({"x": rng.normal(0, 1, 20_000)})
    settings = {"mmd": {"enabled": False}, "output": False, "budget": {"false_alarms": 1, "per_rows": 100_000}}
    tiny = {"x": rng.normal(0.06, 1, 20_000)}  # 0.06 std: significant at 20,000 rows, negligible in effect
    strict = VersionChecker("m", 1, reference, cadence(**settings), 20_000)
    report = strict.check(window_of(tiny, ["a"] * 20_000))[0]
    assert report.p_values["x"] < report.threshold and report.effects["x"] < 0.1
    assert report.drift is False and report.min_effect == {"x": 0.1}
    loose = VersionChecker("m", 1, reference, cadence(**settings, min_effect={"wasserstein": 0.0}), 20_000)
    assert loose.check(window_of(tiny, ["a"] * 20_000))[0].drift is True
    moved = strict.check(window_of({"x": rng.normal(0.5, 1, 20_000)}, ["a"] * 20_000))[0]
    assert moved.drift and moved.effects["x"] == pytest.approx(0.5, abs=0.05)


# --------------------------------------------------------------------------- label-free accuracy

def calibrated_classifier(rows: int, rng: np.random.Generator, low: float = 0.5, high: float = 1.0):
    confidence = rng.uniform(low, high, rows)
    correct = rng.random(rows) < confidence  # a calibrated model: right with the probability it states
    return confidence, correct


def test_the_estimate_tracks_realised_accuracy_without_labels_even_under_covariate_shift():
    rng = np.random.default_rng(7)
    ref_confidence, ref_correct = calibrated_classifier(2000, rng)
    overconfident = np.clip(ref_confidence + 0.1, 0, 1)  # the model states 10 points more than it knows
    estimator = AccuracyEstimator.fit(overconfident, ref_correct)
    for low, high in ((0.5, 1.0), (0.5, 0.7)):  # in distribution, then a shift towards hard rows
        confidence, correct = calibrated_classifier(5000, rng, low, high)
        estimate = estimator.estimate(np.clip(confidence + 0.1, 0, 1))
        assert abs(estimate - correct.mean()) < 0.03, (low, high, estimate, correct.mean())
    assert abs(np.clip(confidence + 0.1, 0, 1).mean() - correct.mean()) > 0.08  # the raw confidence would be off
    with pytest.raises(ValueError, match="30 needed"):
        AccuracyEstimator.fit([0.9] * 10, [True] * 10)


def test_the_checker_estimates_accuracy_from_a_reference_with_labels_only():
    from raymlops.monitor.checker import VersionChecker

    rng = np.random.default_rng(8)
    x = rng.normal(size=600)
    confidence, correct = calibrated_classifier(600, rng)
    predictions = ["a"] * 600
    labels = ["a" if c else "b" for c in correct]
    settings = cadence(mmd={"enabled": False})
    with_labels = VersionChecker("m", 1, reference_of({"x": x}, predictions, list(confidence), labels), settings, 100)
    assert with_labels.estimator_state == "ready"
    live_confidence, live_correct = calibrated_classifier(100, rng)
    with_labels.check(window_of({"x": rng.normal(size=100)}, ["a"] * 100, live_confidence))
    assert with_labels.last_estimate["rows"] == 100
    assert abs(with_labels.last_estimate["estimated_accuracy"] - 0.75) < 0.06
    older = VersionChecker("m", 2, reference_of({"x": x}, predictions), settings, 100)
    assert older.estimator is None and "retrain" in older.estimator_state
