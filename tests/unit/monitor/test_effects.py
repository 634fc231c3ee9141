"""Effect sizes of many columns measured together equal scipy's Wasserstein distance per column."""

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from raymlops.monitor import effects
from raymlops.monitor.effects import ReferenceEffects, quantile_steps


def expected(reference, window):
    reference, window = reference[np.isfinite(reference)], window[np.isfinite(window)]
    if reference.size == 0 or window.size == 0:
        return 0.0
    return round(wasserstein_distance(reference, window) / (reference.std() or 1.0), 6)


def frame(rng, rows, shift=0.0):
    return {"normal": rng.normal(shift, 1, rows), "counts": rng.poisson(2 + shift, rows).astype(float),
            "constant": np.full(rows, 2.0 + shift), "code": rng.integers(0, 3, rows)}


@pytest.mark.parametrize("reference_rows, window_rows", [(5000, 500), (398, 500), (7, 3), (100, 100), (1, 5)])
def test_columns_measured_together_equal_scipys_distance(reference_rows, window_rows):
    rng = np.random.default_rng(reference_rows)
    reference = frame(rng, reference_rows)
    measure = ReferenceEffects(reference, {"code"})
    assert measure.together == ["normal", "counts", "constant"]
    for shift in (0.0, 0.4):
        window = frame(rng, window_rows, shift)
        got = measure.of(window)
        for name in ("normal", "counts", "constant"):
            assert got[name] == pytest.approx(expected(reference[name], window[name]), abs=1e-6), name
        assert got["code"] == round(effects.psi(reference["code"], window["code"]), 6)  # categorical: PSI as before


def test_missing_values_take_the_per_column_way_and_chunks_agree(monkeypatch):
    rng = np.random.default_rng(5)
    reference = frame(rng, 300)
    reference["gappy"] = rng.normal(size=300)
    reference["gappy"][::7] = np.nan  # never measured together: its finite rows are fewer
    measure = ReferenceEffects(reference, {"code"})
    assert "gappy" not in measure.together
    window = frame(rng, 120, 0.3)
    window["gappy"] = rng.normal(0.5, 1, 120)
    window["counts"][3] = np.inf  # this window's column falls back, the others stay together
    got = measure.of(window)
    for name in ("normal", "counts", "constant", "gappy"):
        assert got[name] == pytest.approx(expected(reference[name], window[name]), abs=1e-6), name
    monkeypatch.setattr(effects, "BLOCK_ELEMENTS", 1)  # one column per chunk
    assert ReferenceEffects(reference, {"code"}).of(window) == got
    assert measure.of({name: values[:0] for name, values in window.items()})["normal"] == 0.0


def test_quantile_steps_cover_probability_once_and_sizes_are_kept_bounded():
    ia, ib, widths = quantile_steps(4, 6)
    assert widths.sum() == pytest.approx(1.0) and (widths > 0).all()
    assert ia[0] == ib[0] == 0 and ia[-1] == 3 and ib[-1] == 5
    assert (np.diff(ia) >= 0).all() and (np.diff(ib) >= 0).all()
    rng = np.random.default_rng(0)
    measure = ReferenceEffects({"x": rng.normal(size=50)}, set())
    for rows in (500, 1, 500, 2, 500, 3):  # the full window's size stays, the least recently used goes
        measure.of({"x": rng.normal(size=rows)})
    assert list(measure._quantiles) == [500, 3]


def test_a_reference_too_large_to_keep_quantiles_of_measures_column_by_column(monkeypatch):
    rng = np.random.default_rng(2)
    reference, window = frame(rng, 400), frame(rng, 100, 0.2)
    monkeypatch.setattr(effects, "QUANTILE_ELEMENTS", 3 * 400)  # 3 columns × (400 + 100) steps is over it
    measure = ReferenceEffects(reference, {"code"})
    got = measure.of(window)
    assert measure._quantiles == {}
    for name in ("normal", "counts", "constant"):
        assert got[name] == pytest.approx(expected(reference[name], window[name]), abs=1e-6), name
