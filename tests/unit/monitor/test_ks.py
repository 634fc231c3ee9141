"""The sorted-once KS gives scipy's and alibi-detect's statistics and p-values exactly."""

import numpy as np
import pytest
from alibi_detect.cd import TabularDrift
from scipy.stats import ks_2samp

from raymlops.monitor import ks
from raymlops.monitor.alibi_tabular import SortedTabularDrift
from raymlops.monitor.ks import KSReference, kstwo_sf


def columns(rng, rows):
    """Continuous, shifted, heavy-tied (counts) and constant columns."""
    return np.column_stack([rng.normal(size=rows), rng.normal(0.3, 1.2, size=rows), rng.poisson(2, size=rows),
                            rng.integers(0, 3, size=rows), np.full(rows, 1.5)]).astype(np.float64)


@pytest.mark.parametrize("reference_rows, window_rows", [(400, 500), (1000, 37), (5, 3), (64, 64)])
def test_statistics_and_p_values_equal_scipy_bit_for_bit(reference_rows, window_rows):
    rng = np.random.default_rng(reference_rows)
    reference, window = columns(rng, reference_rows), columns(rng, window_rows)
    window[:, 1] += 0.5
    statistics, p_values = KSReference(reference).test(window)
    for j in range(reference.shape[1]):
        expected = ks_2samp(reference[:, j], window[:, j], method="asymp")
        assert statistics[j] == expected.statistic and p_values[j] == expected.pvalue, j


def test_a_missing_value_makes_its_column_nan_as_scipy_propagates_it():
    rng = np.random.default_rng(0)
    reference, window = columns(rng, 100), columns(rng, 50)
    reference[3, 0], window[7, 2] = np.nan, np.nan
    statistics, p_values = KSReference(reference).test(window)
    assert np.isnan(statistics[[0, 2]]).all() and np.isnan(p_values[[0, 2]]).all()
    assert np.isnan(ks_2samp(reference[:, 0], window[:, 0], method="asymp").pvalue)
    assert p_values[1] == ks_2samp(reference[:, 1], window[:, 1], method="asymp").pvalue


def test_one_column_and_bad_shapes():
    rng = np.random.default_rng(1)
    values, window = rng.normal(size=50), rng.normal(size=20)
    reference = KSReference(values)  # one column may be given flat
    statistic, p_value = reference.test(window)
    expected = ks_2samp(values, window, method="asymp")
    assert (statistic[0], p_value[0]) == (expected.statistic, expected.pvalue)
    with pytest.raises(ValueError, match="at least one row"):
        reference.test(np.empty((0, 1)))
    with pytest.raises(ValueError, match="2 columns, the reference 1"):
        reference.test(np.zeros((3, 2)))


def test_p_values_are_remembered_and_computed_once(monkeypatch):
    from scipy.stats import kstwo

    calls = []
    real = kstwo.sf
    monkeypatch.setattr(ks, "_p_values", ks.OrderedDict())
    monkeypatch.setattr(kstwo, "sf", lambda d, n: calls.append(len(d)) or real(d, n))
    first = kstwo_sf(np.array([0.1, 0.2, 0.1, np.nan]), 200.0)
    assert calls == [2] and np.isnan(first[3]) and first[0] == first[2] == real(0.1, 200.0)
    again = kstwo_sf(np.array([0.2, 0.3]), 200.0)
    assert calls == [2, 1] and again[0] == first[1]
    kstwo_sf(np.array([0.2]), 201.0)  # another effective size is another value
    assert calls == [2, 1, 1]
    monkeypatch.setattr(ks, "CACHE_SIZE", 2)
    kstwo_sf(np.array([0.4]), 200.0)
    assert len(ks._p_values) == 2


def mixed(rng, rows):
    numeric = columns(rng, rows)
    categorical = np.column_stack([rng.integers(0, 4, size=rows), rng.integers(0, 2, size=rows)])
    return np.column_stack([numeric[:, :3], categorical[:, 0], numeric[:, 3:], categorical[:, 1]])


@pytest.mark.parametrize("correction", ["bonferroni", "fdr"])
def test_sorted_tabular_drift_scores_as_alibi_detects_tabular_drift(correction):
    rng = np.random.default_rng(7)
    reference = mixed(rng, 300)
    categories = {3: None, 6: None}
    ours = SortedTabularDrift(reference, p_val=0.05, correction=correction, categories_per_feature=categories)
    theirs = TabularDrift(reference, p_val=0.05, correction=correction, categories_per_feature=categories)
    for shift in (0.0, 0.4):
        window = mixed(rng, 120)
        window[:, 0] += shift
        window[:5, 3] = 5  # a category the reference never had
        a = ours.predict(window, return_p_val=True, return_distance=True)["data"]
        b = theirs.predict(window, return_p_val=True, return_distance=True)["data"]
        assert np.array_equal(a["p_val"], b["p_val"]) and np.array_equal(a["distance"], b["distance"])
        assert a["is_drift"] == b["is_drift"] and np.array_equal(a["threshold"], b["threshold"])
    assert ours._sorted_of is ours.x_ref  # sorted once, reused


def test_all_categorical_or_one_sided_takes_alibis_own_path():
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 3, size=(100, 2)).astype(float)
    window = rng.integers(0, 3, size=(40, 2)).astype(float)
    ours = SortedTabularDrift(reference, categories_per_feature={0: None, 1: None})
    theirs = TabularDrift(reference, categories_per_feature={0: None, 1: None})
    assert np.array_equal(ours.feature_score(ours.x_ref, window)[0], theirs.feature_score(theirs.x_ref, window)[0])
    one_sided = SortedTabularDrift(rng.normal(size=(100, 2)), alternative="greater")
    assert one_sided.feature_score(one_sided.x_ref, rng.normal(size=(30, 2)))[0].shape == (2,)
