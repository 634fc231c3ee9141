"""Listing and reading data files for Ray Data without its whole-CPU listing task."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from raymlops.data.files import data_files, read_files
from raymlops.errors import ConfigError


def test_files_are_listed_in_order_and_hidden_ones_skipped(tmp_path):
    for name in ("b.parquet", "a.parquet", "_SUCCESS.parquet", ".hidden.parquet", "notes.csv"):
        pq.write_table(pa.table({"x": [1.0]}), tmp_path / name)
    assert data_files(str(tmp_path), "parquet") == [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    assert data_files(str(tmp_path / "b.parquet"), "parquet") == [str(tmp_path / "b.parquet")]
    with pytest.raises(ConfigError, match="data.path: no such file or directory"):
        data_files(str(tmp_path / "missing"), "parquet", field="data.path")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="--input: no .csv files in this directory"):
        data_files(str(tmp_path / "empty"), "csv")


def test_a_read_task_returns_the_files_rows_with_the_columns_asked(tmp_path):
    pq.write_table(pa.table({"x": [1.0, 2.0], "y": ["a", "b"], "z": [0, 0]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"x": [3.0], "y": ["c"], "z": [1]}), tmp_path / "two.parquet")
    batch = pa.table({"file": [str(tmp_path / "one.parquet"), str(tmp_path / "two.parquet")]})
    table = read_files(batch, "parquet", columns=["y", "x"])
    assert table.column_names == ["y", "x"] and table.column("x").to_pylist() == [1.0, 2.0, 3.0]
    assert read_files(batch, "parquet").num_columns == 3
