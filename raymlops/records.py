"""The prediction-record batch: what a replica sends and the monitor reads, as one pyarrow
``RecordBatch``. Shared by the producer (:mod:`raymlops.serve.stream`) and the consumer
(:mod:`raymlops.monitor`), so neither imports the other.

Columns: the request fields of :data:`RECORD_FIELDS` (repeated on every row of a request),
``prediction`` and ``confidence`` per row, and one ``f.<feature>`` column per input feature
(null where a row has no value, e.g. a rejected request). Consumers read whole columns —
never row by row on the hot path.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from raymlops.types import PredictionRecord

#: Per-request columns, repeated on every row of the request.
#: The arms the traffic split routes: the only ones rollout evidence counts.
ROUTED_ARMS = ("stable", "canary")
#: The arms whose answers reach callers (``pinned``: a call pinned to one version).
ANSWERING_ARMS = (*ROUTED_ARMS, "pinned")
RECORD_FIELDS = ("request_id", "time", "model", "version", "arm", "latency_ms", "status")
#: Per-row columns.
ROW_FIELDS = ("prediction", "confidence")
#: Prefix of the feature columns.
FEATURE_PREFIX = "f."
#: Arrow types of the fixed columns (features and predictions take the type of their values).
FIXED_TYPES: dict[str, pa.DataType] = {
    "request_id": pa.string(), "time": pa.float64(), "model": pa.string(), "version": pa.int64(),
    "arm": pa.string(), "latency_ms": pa.float64(), "status": pa.int64(), "confidence": pa.float64(),
}

RecordBatch = pa.RecordBatch


def _array(name: str, values: Sequence[Any], known: dict[str, pa.DataType]) -> pa.Array:
    kind = FIXED_TYPES.get(name) or known.get(name)
    if kind is not None:
        try:
            return pa.array(values, kind)  # a given type converts about 3× faster than an inferred one
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            known.pop(name, None)  # this column changed type: infer it again
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: keep them readable as text
        array = pa.array([None if v is None else str(v) for v in values], pa.string())
    if not pa.types.is_null(array.type):
        known[name] = array.type
    return array


def to_record_batch(columns: Mapping[str, Sequence[Any]], known: dict[str, pa.DataType] | None = None
                    ) -> pa.RecordBatch:
    """Equally long columns (name → values) as a record batch with the fixed columns' types.

    Args:
        columns: name → values.
        known: types seen for the other columns so far (updated); a producer that keeps it
            converts later batches without inferring their types.
    """
    known = {} if known is None else known
    return pa.RecordBatch.from_arrays([_array(n, v, known) for n, v in columns.items()], names=list(columns))


def encode(batch: pa.RecordBatch) -> pa.Buffer:
    """A batch as one Arrow IPC stream buffer (schema included): what travels between processes.
    Ray sends one buffer out of band, where pickling the batch walks every column in Python
    (measured ≈ 20 µs against ≈ 230 µs for 64 rows × 29 columns)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def decode(payload: pa.Buffer | bytes) -> pa.RecordBatch:
    """The batch an :func:`encode` buffer carries."""
    return pa.ipc.open_stream(payload).read_next_batch()


def as_record_batch(batch: pa.RecordBatch | pa.Table | pa.Buffer | bytes | Mapping[str, Sequence[Any]]
                    ) -> pa.RecordBatch:
    """A record batch from a batch, an :func:`encode` buffer, a table, or a mapping of columns."""
    if isinstance(batch, pa.RecordBatch):
        return batch
    if isinstance(batch, (pa.Buffer, bytes)):
        return decode(batch)
    if isinstance(batch, pa.Table):
        return concat_batches(batch.to_batches(), batch.schema)
    return to_record_batch(batch)


def batch_rows(batch: pa.RecordBatch | pa.Buffer | bytes | Mapping[str, Sequence[Any]]) -> int:
    """The number of rows of a record batch (or of an :func:`encode` buffer, or a mapping of columns)."""
    if isinstance(batch, (pa.RecordBatch, pa.Table)):
        return batch.num_rows
    if isinstance(batch, (pa.Buffer, bytes)):
        return decode(batch).num_rows
    return len(next(iter(batch.values()), []))


def concat_batches(batches: Sequence[pa.RecordBatch], schema: pa.Schema | None = None) -> pa.RecordBatch:
    """Several record batches as one; a column a batch lacks is null there."""
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=schema) if schema is not None else pa.record_batch({})
    table = pa.concat_tables([pa.Table.from_batches([b]) for b in batches], promote_options="permissive")
    return table.combine_chunks().to_batches()[0] if table.num_rows else pa.RecordBatch.from_pylist([], table.schema)


def feature_names(batch: pa.RecordBatch) -> list[str]:
    """The feature names a batch carries (without the prefix)."""
    return [name[len(FEATURE_PREFIX):] for name in batch.schema.names if name.startswith(FEATURE_PREFIX)]


def column(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """One column as numpy (object dtype where it holds nulls or text); all-null when absent."""
    index = batch.schema.get_field_index(name)
    if index < 0:
        return np.full(batch.num_rows, None, dtype=object)
    return batch.column(index).to_numpy(zero_copy_only=False)


def filled(batch: pa.RecordBatch | pa.Table, name: str, fill: Any) -> np.ndarray:
    """A numeric column as numpy with its nulls (or its absence) replaced by ``fill``."""
    if name not in batch.schema.names or pa.types.is_null(batch.schema.field(name).type):
        return np.full(batch.num_rows, fill)
    import pyarrow.compute as pc

    return pc.fill_null(batch.column(name), fill).to_numpy(zero_copy_only=False)


def answered(batch: pa.RecordBatch) -> np.ndarray:
    """Rows that were answered: a version, a prediction and a status below 400."""
    import pyarrow.compute as pc

    if batch.num_rows == 0 or "version" not in batch.schema.names or "prediction" not in batch.schema.names:
        return np.zeros(batch.num_rows, dtype=bool)
    ok = pc.and_(pc.is_valid(batch.column("version")), pc.is_valid(batch.column("prediction")))
    ok = pc.and_(ok, pc.less(pc.fill_null(batch.column("status"), 0), 400))
    return ok.to_numpy(zero_copy_only=False).astype(bool)


class RecordView:
    """A record batch with what every consumer asks of it computed once: which rows were
    answered, each row's version, and columns as numpy. Consumers take a view (or a batch)."""

    def __init__(self, batch: pa.RecordBatch | pa.Table | Mapping[str, Sequence[Any]]) -> None:
        self.batch = as_record_batch(batch)
        self._columns: dict[str, np.ndarray] = {}

    @property
    def num_rows(self) -> int:
        """Rows in the batch."""
        return self.batch.num_rows

    @cached_property
    def answered(self) -> np.ndarray:
        """Rows with a version, a prediction and a status below 400."""
        return answered(self.batch)

    @cached_property
    def versions(self) -> np.ndarray:
        """Each row's version as int64 (-1 where it has none)."""
        return filled(self.batch, "version", -1).astype(np.int64)

    def column(self, name: str) -> np.ndarray:
        """One column as numpy (see :func:`column`), converted once."""
        if name not in self._columns:
            self._columns[name] = column(self.batch, name)
        return self._columns[name]


def as_view(records: RecordView | pa.RecordBatch | Mapping[str, Sequence[Any]]) -> RecordView:
    """A view of a batch (a view is returned as it is)."""
    return records if isinstance(records, RecordView) else RecordView(records)


def records_of(batch: pa.RecordBatch | Mapping[str, Sequence[Any]]) -> Iterator[PredictionRecord]:
    """The rows of a batch as :class:`PredictionRecord` objects (for tools and tests; consumers
    on the hot path stay columnar)."""
    for row in as_record_batch(batch).to_pylist():
        yield PredictionRecord(
            **{name: row.get(name) for name in RECORD_FIELDS + ROW_FIELDS},
            features={name[len(FEATURE_PREFIX):]: value for name, value in row.items() if name.startswith(FEATURE_PREFIX)},
        )
