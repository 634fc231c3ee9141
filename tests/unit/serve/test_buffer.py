import pyarrow as pa

from raymlops.records import batch_rows, concat_batches, records_of, to_record_batch
from raymlops.serve.buffer import RecordBuffer, columns_of

META = {"request_id": "r1", "time": 1.0, "model": "m", "version": 2, "arm": "canary", "latency_ms": 3.5, "status": 200}


def test_rows_become_columns_with_request_metadata():
    buffer = RecordBuffer()
    buffer.add(META, {"x": [1.0, 2.0], "c": ["a", "b"]}, ["p", "q"], [0.9, 0.6], clock=0)
    batch = buffer.drain().to_pydict()
    assert batch["f.x"] == [1.0, 2.0] and batch["f.c"] == ["a", "b"]
    assert batch["prediction"] == ["p", "q"] and batch["confidence"] == [0.9, 0.6]
    assert batch["version"] == [2, 2] and batch["arm"] == ["canary", "canary"] and batch["request_id"] == ["r1", "r1"]
    assert buffer.size == 0 and buffer.drain().num_rows == 0


def test_rejected_requests_keep_the_columns_aligned():
    buffer = RecordBuffer()
    buffer.add(META, {"x": [1.0]}, ["p"], clock=0)
    buffer.add({**META, "status": 422, "version": None}, {}, [None], clock=0)
    buffer.add(META, {"x": [2.0], "y": [5.0]}, ["q"], clock=0)
    batch = buffer.drain().to_pydict()
    assert {len(column) for column in batch.values()} == {3}
    assert batch["f.x"] == [1.0, None, 2.0] and batch["f.y"] == [None, None, 5.0]
    assert batch["status"] == [200, 422, 200]
    records = list(records_of(to_record_batch(batch)))
    assert records[1].status == 422 and records[1].prediction is None
    assert records[2].features == {"x": 2.0, "y": 5.0} and batch_rows(batch) == 3


def test_one_row_requests_take_the_same_columns_as_the_general_way():
    one_row = [(META, {"x": [1.0], "c": ["a"]}, ["p"], [0.9], 1),
               ({**META, "status": 422, "version": None}, {}, [None], None, 1),
               ({**META, "request_id": "r2"}, {"c": ["b"], "y": [5.0]}, ["q"], None, 1)]
    fast = columns_of(one_row)  # every request one row: the one-comprehension-per-column way
    general = columns_of(one_row + [(META, {"x": [7.0, 8.0]}, ["s", "t"], [0.1, 0.2], 2)])
    assert set(fast) == set(general) and {len(column) for column in fast.values()} == {3}
    assert all(general[name][:3] == column for name, column in fast.items()), (fast, general)
    assert fast["f.y"] == [None, None, 5.0] and fast["confidence"] == [0.9, None, None]


def test_a_bounded_drain_takes_whole_requests_oldest_first_and_leaves_the_rest_due():
    buffer = RecordBuffer(flush_rows=3, flush_ms=100)
    for request_id, rows in (("a", 2), ("b", 2), ("c", 4), ("d", 1)):
        buffer.add({**META, "request_id": request_id}, {"x": [1.0] * rows}, ["p"] * rows, clock=10.0)
    drained = [buffer.drain(3).column("request_id").to_pylist() for _ in range(2)]
    assert drained == [["a", "a"], ["b", "b"]]  # a third request would pass 3 rows
    assert buffer.size == 5 and buffer.due(clock=10.2)  # what is left is as old as what went
    assert buffer.drain(3).column("request_id").to_pylist() == ["c"] * 4  # one request larger than the bound
    assert buffer.drain(3).num_rows == 1 and buffer.size == 0 and not buffer.due(clock=10.2)


def test_flush_is_due_by_rows_or_by_age():
    buffer = RecordBuffer(flush_rows=3, flush_ms=100)
    assert not buffer.due(clock=0)
    buffer.add(META, {"x": [1.0]}, ["p"], clock=10.0)
    assert not buffer.due(clock=10.05)
    assert buffer.due(clock=10.2)
    buffer.add(META, {"x": [1.0, 2.0]}, ["p", "q"], clock=10.01)
    assert buffer.due(clock=10.02)


def test_a_full_buffer_drops_and_counts_instead_of_growing():
    buffer = RecordBuffer(capacity=3)
    assert buffer.add(META, {"x": [1.0, 2.0]}, ["a", "b"], clock=0) == 0
    assert buffer.add(META, {"x": [3.0, 4.0]}, ["c", "d"], clock=0) == 1
    assert buffer.add(META, {"x": [5.0]}, ["e"], clock=0) == 1
    assert buffer.size == 3 and buffer.dropped == 2
    assert buffer.drain().column("prediction").to_pylist() == ["a", "b", "c"]
    assert buffer.add(META, {"x": [6.0]}, ["f"], clock=0) == 0


def test_batches_concatenate_with_missing_columns_filled():
    joined = concat_batches([to_record_batch(b) for b in ({"a": [1, 2]}, {"a": [3], "b": ["x"]}, {"b": ["y", "z"]})])
    assert joined.to_pydict() == {"a": [1, 2, 3, None, None], "b": [None, None, "x", "y", "z"]}


def test_drained_batches_carry_typed_columns():
    buffer = RecordBuffer()
    buffer.add(META, {"x": [1.0]}, ["p"], clock=0)
    buffer.add({**META, "status": 422, "version": None}, {}, [None], clock=0)
    batch = buffer.drain()
    assert isinstance(batch, pa.RecordBatch)
    assert batch.schema.field("version").type == pa.int64() and batch.schema.field("status").type == pa.int64()
    assert batch.schema.field("time").type == pa.float64() and batch.schema.field("f.x").type == pa.float64()
