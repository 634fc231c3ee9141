import numpy as np
import pytest

from raymlops.config import ShiftConfig, SynthConfig
from raymlops.data.synth import generate, synth_schema, synthesize
from raymlops.errors import ConfigError


def make(**options):
    return generate(SynthConfig(rows=4000, numeric_features=6, categorical_features=2, **options))


def test_shape_and_schema_agree():
    cfg = SynthConfig(rows=500, numeric_features=5, categorical_features=3)
    table = generate(cfg)
    schema = synth_schema(cfg)
    assert table.num_rows == 500
    assert table.column_names == schema.feature_names + ["y"]
    schema.check_table(table, "synth")
    assert set(table.column("y").to_pylist()) == {"0", "1"}


def test_deterministic_for_a_seed():
    assert make(seed=1).equals(make(seed=1))
    assert not make(seed=1).equals(make(seed=2))


def test_covariate_shift_moves_only_the_chosen_features():
    base = make(seed=1)
    shifted = make(seed=1, shift=ShiftConfig(features=[2], magnitude=0.5))
    deltas = [np.mean(shifted.column(f"x{i}")) - np.mean(base.column(f"x{i}")) for i in range(6)]
    assert deltas[2] == pytest.approx(0.5, abs=1e-9)
    assert all(abs(d) < 1e-12 for i, d in enumerate(deltas) if i != 2)


def test_categorical_shift_changes_the_mix():
    base = make(seed=1).column("c0").to_pylist()
    shifted = make(seed=1, shift=ShiftConfig(categorical_features=[0])).column("c0").to_pylist()
    top = max(set(base), key=base.count)
    assert shifted.count(top) < base.count(top)


def test_label_shift_reaches_the_prior():
    table = make(seed=1, shift=ShiftConfig(label_prior=0.8))
    positives = table.column("y").to_pylist().count("1") / table.num_rows
    assert positives == pytest.approx(0.8, abs=0.01)


def test_features_carry_signal_about_the_label():
    table = make(seed=3)
    y = np.array(table.column("y").to_pylist()) == "1"
    x = np.column_stack([table.column(f"x{i}").to_numpy() for i in range(6)])
    separation = np.abs(x[y].mean(axis=0) - x[~y].mean(axis=0)).max()
    assert separation > 0.3


def test_shift_of_missing_feature_is_a_config_error():
    with pytest.raises(ConfigError, match="shift.features.0: no numeric feature 9"):
        make(shift=ShiftConfig(features=[9], magnitude=1.0))


def test_synthesize_writes_splits(tmp_path):
    prepared = synthesize(SynthConfig(rows=200, output=str(tmp_path / "s")))
    assert sum(prepared.rows.values()) == 200
    assert (tmp_path / "s" / "schema.json").exists()
