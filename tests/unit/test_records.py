"""The record batch shared by replicas and the monitor."""

import pickle

import numpy as np
import pyarrow as pa

from raymlops.records import (
    answered,
    as_record_batch,
    batch_rows,
    column,
    concat_batches,
    feature_names,
    to_record_batch,
)

ROWS = {"request_id": ["a", "a", "b", "c"], "time": [1.0, 1.0, 2.0, 3.0], "model": ["m"] * 4,
        "version": [1, 1, None, 2], "arm": ["stable", "stable", "none", "canary"], "latency_ms": [1.0, 1.0, 0.0, 2.0],
        "status": [200, 200, 422, 200], "prediction": ["x", "y", None, "x"], "confidence": [0.9, 0.8, None, 0.7],
        "f.height": [1.5, 2.5, None, 3.5], "f.colour": ["red", "blue", None, "red"]}


def test_a_batch_survives_the_trip_between_processes():
    batch = to_record_batch(ROWS)
    again = pickle.loads(pickle.dumps(batch, protocol=5))
    assert again.equals(batch) and batch_rows(again) == 4


def test_answered_rows_need_a_version_a_prediction_and_a_success_status():
    batch = to_record_batch({**ROWS, "status": [200, 500, 422, 200]})
    assert answered(batch).tolist() == [True, False, False, True]


def test_columns_and_feature_names_read_without_walking_rows():
    batch = to_record_batch(ROWS)
    assert feature_names(batch) == ["height", "colour"]
    assert column(batch, "f.height")[3] == 3.5
    assert column(batch, "f.missing").tolist() == [None] * 4
    assert isinstance(column(batch, "version"), np.ndarray)


def test_mixed_values_in_a_feature_column_are_kept_as_text():
    batch = to_record_batch({"f.x": [1.0, "two"]})
    assert batch.column("f.x").to_pylist() == ["1.0", "two"]


def test_mappings_and_tables_become_batches_and_concatenate():
    first = as_record_batch({"a": [1]})
    second = as_record_batch(pa.table({"a": [2], "b": ["x"]}))
    joined = concat_batches([first, second])
    assert joined.to_pydict() == {"a": [1, 2], "b": [None, "x"]}
    assert concat_batches([]).num_rows == 0


def test_a_batch_travels_as_one_arrow_buffer_and_reads_back_equal():
    from raymlops.records import decode, encode

    batch = to_record_batch(ROWS)
    payload = encode(batch)
    assert isinstance(payload, pa.Buffer)
    assert decode(payload).equals(batch) and as_record_batch(payload).equals(batch)
    assert as_record_batch(payload.to_pybytes()).equals(batch)


def test_known_column_types_are_reused_and_a_changed_column_is_inferred_again():
    known = {}
    to_record_batch({"f.x": [1.0, None]}, known)
    assert known["f.x"] == pa.float64()
    again = to_record_batch({"f.x": ["now text"]}, known)
    assert again.column("f.x").to_pylist() == ["now text"] and known["f.x"] == pa.string()
    to_record_batch({"f.y": [None]}, known)
    assert "f.y" not in known, "an all-null column says nothing about the type"


def test_filled_replaces_nulls_and_absent_or_all_null_columns():
    from raymlops.records import filled

    batch = to_record_batch({**ROWS, "f.empty": [None] * 4})
    assert filled(batch, "version", -1).tolist() == [1, 1, -1, 2]
    assert filled(batch, "f.empty", 0.0).tolist() == [0.0] * 4
    assert filled(batch, "missing", 7).tolist() == [7] * 4
