"""``raymlops data synth``: synthetic tabular classification data with a controllable shift.

Numeric features ``x0..`` are standard normal; categorical features ``c0..`` draw from
per-feature category mixes; the binary label follows a fixed logistic model of the
features, so a covariate shift keeps P(y | x) and moves P(x), and a label shift keeps
P(x | y) and moves P(y). The model's weights, the category mixes and the rows are all
derived from the seed, so a shifted set is comparable with its unshifted twin.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from raymlops.config import SynthConfig
from raymlops.data.prepare import PreparedData, write_splits
from raymlops.data.schema import DatasetSchema, FeatureSpec
from raymlops.errors import ConfigError

CLASSES = ("0", "1")


def _category_names(count: int) -> list[str]:
    return [f"k{i}" for i in range(count)]


def _check_shift(cfg: SynthConfig) -> None:
    problems = [
        (f"shift.features.{i}", f"no numeric feature {index} (there are {cfg.numeric_features})")
        for i, index in enumerate(cfg.shift.features)
        if not 0 <= index < cfg.numeric_features
    ]
    problems += [
        (f"shift.categorical_features.{i}", f"no categorical feature {index} (there are {cfg.categorical_features})")
        for i, index in enumerate(cfg.shift.categorical_features)
        if not 0 <= index < cfg.categorical_features
    ]
    if problems:
        raise ConfigError(file="<synth>", problems=problems)


def synth_schema(cfg: SynthConfig) -> DatasetSchema:
    """The schema of the synthetic data set described by ``cfg``."""
    numeric = [FeatureSpec(name=f"x{i}", kind="numeric", dtype="double") for i in range(cfg.numeric_features)]
    cats = tuple(_category_names(cfg.categories))
    categorical = [
        FeatureSpec(name=f"c{i}", kind="categorical", dtype="string", categories=cats)
        for i in range(cfg.categorical_features)
    ]
    return DatasetSchema(name="synth", label="y", classes=CLASSES, features=tuple(numeric + categorical))


def generate(cfg: SynthConfig) -> pa.Table:
    """Generate the rows of ``cfg`` (shift included) as an Arrow table, deterministically.

    Raises:
        ConfigError: when the shift names features that do not exist.
    """
    _check_shift(cfg)
    # The model comes from the seed alone, the rows from a second stream, so that a
    # shifted set and its unshifted twin share the same labelling function.
    model_rng = np.random.default_rng([cfg.seed, 0])
    row_rng = np.random.default_rng([cfg.seed, 1])
    weights = model_rng.normal(0.0, 1.0, cfg.numeric_features) / np.sqrt(cfg.numeric_features)
    mixes = model_rng.dirichlet(np.full(cfg.categories, 2.0), size=cfg.categorical_features)
    effects = model_rng.normal(0.0, 0.5, (cfg.categorical_features, cfg.categories))

    numeric = row_rng.normal(0.0, 1.0, (cfg.rows, cfg.numeric_features))
    numeric[:, cfg.shift.features] += cfg.shift.magnitude
    codes = np.empty((cfg.rows, cfg.categorical_features), dtype=np.int64)
    for j in range(cfg.categorical_features):
        mix = mixes[j][::-1] if j in cfg.shift.categorical_features else mixes[j]
        codes[:, j] = row_rng.choice(cfg.categories, size=cfg.rows, p=mix)

    logits = numeric @ weights * 3.0 + sum(effects[j, codes[:, j]] for j in range(cfg.categorical_features))
    labels = (row_rng.random(cfg.rows) < 1.0 / (1.0 + np.exp(-logits))).astype(np.int64)
    if cfg.shift.label_prior is not None:
        keep = _resample_to_prior(labels, cfg.shift.label_prior, row_rng)
        numeric, codes, labels = numeric[keep], codes[keep], labels[keep]
    return _to_table(numeric, codes, labels, cfg)


def _resample_to_prior(labels: np.ndarray, prior: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices (with replacement) whose positive share is ``prior``, same row count."""
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_pos = int(round(len(labels) * prior))
    picked = np.concatenate(
        [rng.choice(positives, n_pos, replace=True), rng.choice(negatives, len(labels) - n_pos, replace=True)]
    )
    return rng.permutation(picked)


def _to_table(numeric: np.ndarray, codes: np.ndarray, labels: np.ndarray, cfg: SynthConfig) -> pa.Table:
    names = np.array(_category_names(cfg.categories), dtype=object)
    columns = {f"x{i}": pa.array(numeric[:, i]) for i in range(cfg.numeric_features)}
    columns.update({f"c{j}": pa.array(names[codes[:, j]].tolist(), pa.string()) for j in range(cfg.categorical_features)})
    columns["y"] = pa.array(np.array(CLASSES, dtype=object)[labels].tolist(), pa.string())
    return pa.table(columns)


def synthesize(cfg: SynthConfig) -> PreparedData:
    """Generate the data set and write it as train/valid/test splits plus schema under ``cfg.output``."""
    schema = synth_schema(cfg)
    return write_splits(generate(cfg), schema, cfg.output, cfg.splits, cfg.seed)
