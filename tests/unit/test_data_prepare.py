import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from raymlops.cli import app
from raymlops.config import PrepareConfig, SplitFractions
from raymlops.data import prepare_dataset, read_schema, split_uri
from raymlops.data.prepare import stratified_split
from raymlops.errors import DataError


@pytest.fixture
def prepare(tmp_path):
    def run(name="out", **options):
        return prepare_dataset(PrepareConfig(output=str(tmp_path / name), **options))

    return run


def digest(directory):
    return {split: hashlib.sha256(pq.read_table(split_uri(directory, split)).to_pandas().to_csv().encode()).hexdigest()
            for split in ("train", "valid", "test")}


def test_penguins_schema(prepare):
    prepared = prepare()
    schema = read_schema(prepared.directory)
    assert schema == prepared.schema
    assert schema.label == "species"
    assert schema.classes == ("Adelie", "Chinstrap", "Gentoo")
    assert schema.categorical == ["island", "sex"]
    assert schema.numeric == ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    island = next(f for f in schema.features if f.name == "island")
    assert island.categories == ("Biscoe", "Dream", "Torgersen")


def test_splits_are_complete_disjoint_and_typed(prepare):
    prepared = prepare()
    tables = {split: pq.read_table(split_uri(prepared.directory, split)) for split in ("train", "valid", "test")}
    assert sum(t.num_rows for t in tables.values()) == 333  # complete rows of Palmer Penguins
    assert prepared.rows == {split: t.num_rows for split, t in tables.items()}
    rows = [tuple(r.values()) for t in tables.values() for r in t.to_pylist()]
    assert len(set(rows)) == len(rows)
    train = tables["train"]
    assert train.schema.field("body_mass_g").type == pa.float64()
    assert train.schema.field("island").type == pa.string()
    assert train.column("sex").null_count == 0


def test_same_seed_same_rows_other_seed_other_rows(prepare):
    first, again, other = prepare("a", seed=3), prepare("b", seed=3), prepare("c", seed=4)
    assert digest(first.directory) == digest(again.directory)
    assert digest(first.directory)["train"] != digest(other.directory)["train"]


def test_split_is_stratified():
    import numpy as np

    labels = np.array(["a"] * 100 + ["b"] * 20)
    parts = stratified_split(labels, SplitFractions(train=0.5, valid=0.25, test=0.25), seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(120))
    assert (labels[parts["train"]] == "b").sum() == 10
    assert (labels[parts["test"]] == "b").sum() == 5


def test_own_csv_source(prepare, tmp_path):
    source = tmp_path / "mine.csv"
    source.write_text("a,b,color,target\n" + "".join(f"{i},{i * 2.5},{'red' if i % 2 else 'blue'},{i % 3}\n" for i in range(60)))
    prepared = prepare(source=str(source), label="target")
    assert prepared.schema.classes == ("0", "1", "2")
    assert prepared.schema.categorical == ["color"]
    assert prepared.schema.name == "mine"


def test_missing_source_names_the_path(prepare, tmp_path):
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(DataError, match="nope.parquet: no such file"):
        prepare(source=missing, label="y")


def test_non_parquet_file_is_refused(prepare, tmp_path):
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("this is not parquet")
    with pytest.raises(DataError, match="not a readable parquet file"):
        prepare(source=str(bogus), label="y")


def test_missing_label_column(prepare, tmp_path):
    source = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": list(range(20)), "y": [0, 1] * 10}), source)
    with pytest.raises(DataError, match="label column 'target' not found"):
        prepare(source=str(source), label="target")


def test_cli_malformed_input_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("nope")
    result = CliRunner().invoke(app, ["data", "prepare", "--source", str(bogus), "--label", "y"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith(f"error: {bogus}:")


def test_cli_prepare_writes_default_output_under_home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAYMLOPS_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["data", "prepare", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "data" / "penguins" / "schema.json").exists()
    assert "train 233" in result.output
