"""``raymlops data prepare``: a real tabular data set → stratified parquet splits + schema.

The default data set is Palmer Penguins (Horst, Hill & Gorman, CC0), shipped inside the
``palmerpenguins`` package so preparation works offline: 333 complete rows, four numeric
measurements, two categorical features (island, sex) and three species to predict. The
data sets bundled with scikit-learn work offline too: ``diabetes`` (a regression of disease
progression on ten measurements), ``wine``, ``breast_cancer``, ``iris`` and ``digits`` (8×8
images: an ``image`` tensor input of shape [1, 8, 8]). Your own CSV or parquet file goes through the same path with
``source``, ``label`` and ``task``. Regression splits are stratified by label quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from raymlops import filesystem
from raymlops.config import PrepareConfig, SplitFractions
from raymlops.data.schema import DatasetSchema, FeatureSpec, TensorSpec, write_schema
from raymlops.data.tables import SPLITS, read_table, split_uri, write_table
from raymlops.errors import DataError

PENGUIN_FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
PENGUIN_CATEGORICAL = ["island", "sex"]
PENGUIN_LABEL = "species"


@dataclass(frozen=True)
class PreparedData:
    """Where a prepared data set went, its schema, and the rows in each split."""

    directory: str
    schema: DatasetSchema
    rows: dict[str, int]


def load_penguins() -> pa.Table:
    """The Palmer Penguins table from the ``palmerpenguins`` package (no network)."""
    from palmerpenguins import load_penguins as _load

    frame = _load()[PENGUIN_FEATURES + [PENGUIN_LABEL]]
    return pa.Table.from_pandas(frame, preserve_index=False)


def load_sklearn_dataset(name: str) -> tuple[pa.Table, str, str]:
    """A data set bundled with scikit-learn as a table, its label column and task (no network)."""
    import sklearn.datasets as bundled

    loaded = getattr(bundled, f"load_{name}")(as_frame=True)
    frame = loaded.frame.rename(columns=lambda c: str(c).replace(" ", "_").replace("/", "_").replace("(", "").replace(")", ""))
    if name == "diabetes":
        return pa.Table.from_pandas(frame, preserve_index=False), "target", "regression"
    names = [str(n) for n in loaded.target_names] if name != "digits" else [str(i) for i in range(10)]
    frame["target"] = [names[int(i)] for i in frame["target"]]
    return pa.Table.from_pandas(frame, preserve_index=False), "target", "classification"


def load_digit_images(task: str = "classification") -> tuple[pa.Table, DatasetSchema]:
    """scikit-learn's 1,797 handwritten digits as images: an ``image`` tensor input of shape
    [1, 8, 8] (grey levels 0–16) and the digit as the class — or, for ``regression``, as a number."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    images = pa.array([row.astype(np.float32).tolist() for row in loaded.data], pa.list_(pa.float32()))
    tensors = (TensorSpec(name="image", datatype="FP32", shape=(1, 8, 8)),)
    if task == "regression":
        table = pa.table({"image": images, "target": loaded.target.astype(np.float64)})
        return table, DatasetSchema(name="digits", task="regression", label="target", tensors=tensors)
    table = pa.table({"image": images, "target": [str(int(t)) for t in loaded.target]})
    return table, DatasetSchema(name="digits", label="target", classes=tuple(str(i) for i in range(10)), tensors=tensors)


def regression_strata(values: np.ndarray, bins: int = 5) -> np.ndarray:
    """Quantile bins of a numeric label, so each split covers the label's whole range."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right")


def stratified_split(labels: np.ndarray, fractions: SplitFractions, seed: int) -> dict[str, np.ndarray]:
    """Row indices of each split, stratified by label and deterministic for ``seed``.

    Every class is shuffled with its own draw of one generator and cut by the
    fractions, so each split keeps the class mix of the whole set.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {split: [] for split in SPLITS}
    for cls in sorted(set(labels.tolist())):
        rows = rng.permutation(np.flatnonzero(labels == cls))
        n_train = int(round(len(rows) * fractions.train))
        n_valid = int(round(len(rows) * fractions.valid))
        parts["train"].append(rows[:n_train])
        parts["valid"].append(rows[n_train : n_train + n_valid])
        parts["test"].append(rows[n_train + n_valid :])
    return {split: np.sort(np.concatenate(chunks)) for split, chunks in parts.items()}


def infer_schema(
    table: pa.Table, name: str, label: str, categorical: list[str] | None, path: str = "<table>",
    task: str = "classification",
) -> DatasetSchema:
    """Build a schema: string columns (or the ones named) are categorical, numeric ones numeric;
    a classification's classes are the label's values, a regression's label must be numeric.

    Raises:
        DataError: the label is missing (or not numeric for a regression), or a feature column
            is neither numeric nor categorical.
    """
    if label not in table.column_names:
        raise DataError(path=path, problem=f"label column {label!r} not found (columns: {', '.join(table.column_names)})")
    features = []
    for field in table.schema:
        if field.name == label:
            continue
        is_numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        wanted_categorical = field.name in categorical if categorical is not None else not is_numeric
        if wanted_categorical:
            values = pc.unique(table.column(field.name).cast(pa.string()).drop_null()).to_pylist()
            features.append(FeatureSpec(name=field.name, kind="categorical", dtype="string", categories=tuple(sorted(values))))
        elif is_numeric:
            features.append(FeatureSpec(name=field.name, kind="numeric", dtype="double"))
        else:
            raise DataError(path=path, problem=f"column {field.name} ({field.type}) is not numeric; list it in categorical")
    if not features:
        raise DataError(path=path, problem="no feature columns besides the label")
    if task == "regression":
        label_type = table.schema.field(label).type
        if not (pa.types.is_integer(label_type) or pa.types.is_floating(label_type)):
            raise DataError(path=path, problem=f"label column {label!r} ({label_type}) must be numeric for a regression")
        return DatasetSchema(name=name, task="regression", label=label, features=tuple(features))
    classes = sorted(pc.unique(table.column(label).cast(pa.string()).drop_null()).to_pylist())
    if len(classes) < 2:
        raise DataError(path=path, problem=f"label column {label!r} has fewer than two classes")
    return DatasetSchema(name=name, label=label, classes=tuple(classes), features=tuple(features))


def normalize_table(table: pa.Table, schema: DatasetSchema) -> pa.Table:
    """Keep the schema's columns, drop rows with nulls, cast numerics to double and the rest to string."""
    columns = schema.input_names + [schema.label]
    table = table.select(columns).drop_null()
    arrays = []
    numeric = set(schema.numeric) | ({schema.label} if not schema.is_classification else set())
    tensors = {tensor.name for tensor in schema.tensors}
    for name in columns:
        if name in tensors:  # a tensor column stays a list of numbers
            arrays.append(table.column(name))
            continue
        target = pa.float64() if name in numeric else pa.string()
        arrays.append(table.column(name).cast(target))
    return pa.table(arrays, names=columns)


def write_splits(table: pa.Table, schema: DatasetSchema, output: str, fractions: SplitFractions, seed: int) -> PreparedData:
    """Split ``table`` by label, write each split and the schema under ``output``."""
    output = filesystem.expand(output)
    labels = np.asarray(table.column(schema.label).to_pylist(), dtype=object)
    if not schema.is_classification:
        labels = regression_strata(labels.astype(np.float64))
    indices = stratified_split(labels, fractions, seed)
    rows = {}
    for split in SPLITS:
        part = table.take(pa.array(indices[split]))
        write_table(part, split_uri(output, split))
        rows[split] = part.num_rows
    write_schema(output, schema)
    return PreparedData(directory=output, schema=schema, rows=rows)


def prepare_dataset(cfg: PrepareConfig) -> PreparedData:
    """Prepare the configured data set (built-in or ``cfg.source``) into splits and a schema.

    Raises:
        DataError: the source is missing, unreadable or lacks the label column.
    """
    categorical: list[str] | None
    task: str = cfg.task or "classification"
    if cfg.source is None and cfg.dataset == "penguins":
        table, name, label, categorical = load_penguins(), "penguins", PENGUIN_LABEL, PENGUIN_CATEGORICAL
        path = "palmerpenguins"
    elif cfg.source is None and cfg.dataset == "digits":
        table, schema = load_digit_images(task)
        return write_splits(normalize_table(table, schema), schema, cfg.output or "$RAYMLOPS_HOME/data/digits",
                            cfg.splits, cfg.seed)
    elif cfg.source is None:
        (table, label, task), name, categorical = load_sklearn_dataset(cfg.dataset), cfg.dataset, []
        path = f"sklearn.datasets.load_{cfg.dataset}"
    else:
        if not cfg.label:
            raise DataError(path=cfg.source, problem="a source file needs `label` (the column to predict)")
        table, label, categorical, path = read_table(cfg.source), cfg.label, cfg.categorical, cfg.source
        name = cfg.source.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    schema = infer_schema(table, name, label, categorical, path, task)
    table = normalize_table(table, schema)
    if table.num_rows < 10:
        raise DataError(path=path, problem=f"only {table.num_rows} complete rows; need at least 10")
    return write_splits(table, schema, cfg.output or f"$RAYMLOPS_HOME/data/{name}", cfg.splits, cfg.seed)
