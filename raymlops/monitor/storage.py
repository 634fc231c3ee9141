"""What the monitor keeps on the artifact store: snapshots of its state, calibrated online
detectors (once per version), and the parquet prediction log that retraining reads."""

from __future__ import annotations

import io
import pickle
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymlops import filesystem
from raymlops.errors import StorageError
from raymlops.records import as_view, filled


class MonitorStore:
    """Snapshots and calibrated detectors of one model's monitor under ``root``."""

    def __init__(self, root: str, model: str) -> None:
        self.root = filesystem.join(root, model)

    @property
    def snapshot_uri(self) -> str:
        return filesystem.join(self.root, "snapshot.pkl")

    def write_snapshot(self, state: dict[str, Any]) -> None:
        """Save the monitor's state (windows, online detectors' state, counters, drift states)."""
        filesystem.write_atomically(self.snapshot_uri, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def read_snapshot(self) -> dict[str, Any] | None:
        """The last snapshot, or None when there is none."""
        if not filesystem.exists(self.snapshot_uri):
            return None
        return pickle.loads(filesystem.read_bytes(self.snapshot_uri))

    def online_uri(self, version: int, settings: dict[str, Any]) -> str:
        key = "-".join(f"{settings[k]}" for k in ("kind", "ert", "window_size", "n_bootstraps", "reference_rows"))
        return filesystem.join(self.root, f"v{version}", f"online-{key}.pkl")

    def load_online(self, version: int, settings: dict[str, Any]):
        """The calibrated online detector of a version, when one was saved with these settings."""
        uri = self.online_uri(version, settings)
        return pickle.loads(filesystem.read_bytes(uri)) if filesystem.exists(uri) else None

    def save_online(self, version: int, settings: dict[str, Any], detector) -> None:
        """Keep a freshly calibrated online detector with the version."""
        filesystem.write_atomically(self.online_uri(version, settings), pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL))


class PredictionLog:
    """Buffered prediction records written as parquet, partitioned ``model=/version=/date=``.

    Args:
        root: URI of the log (``<artifact_root>/_predictions`` by default).
        model: the model's name.
        row_group_size: rows per parquet row group.
    """

    def __init__(self, root: str, model: str, row_group_size: int = 10_000) -> None:
        self.root, self.model, self.row_group_size = root, model, row_group_size
        self.batches: list[pa.Table] = []
        self.rows = 0
        self.written = 0

    def add(self, records: Any) -> None:
        """Buffer a record batch or view (kept as it came: no copy, no conversion)."""
        table = pa.Table.from_batches([as_view(records).batch])
        self.batches.append(table)
        self.rows += table.num_rows

    def flush(self) -> int:
        """Write what is buffered, one file per (version, date); returns the rows written."""
        if not self.batches:
            return 0
        table = pa.concat_tables(self.batches, promote_options="permissive")
        self.batches, self.rows = [], 0
        versions = filled(table, "version", -1).astype(np.int64)
        seconds = filled(table, "time", 0.0)
        days = (seconds // 86400).astype(np.int64)
        groups: dict[tuple, np.ndarray] = {}
        for version, day in np.unique(np.stack([versions, days], axis=1), axis=0).tolist():
            date = datetime.fromtimestamp(day * 86400, timezone.utc).strftime("%Y-%m-%d")
            groups[(version if version >= 0 else None, date)] = np.nonzero((versions == version) & (days == day))[0]
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for (version, date), indices in groups.items():
            part = table.take(pa.array(indices))
            uri = filesystem.join(self.root, f"model={self.model}", f"version={version}", f"date={date}",
                                  f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet")
            sink = io.BytesIO()
            pq.write_table(part, sink, row_group_size=self.row_group_size)
            filesystem.write_atomically(uri, sink.getvalue())
        self.written += table.num_rows
        return table.num_rows


def write_labelled_rows(root: str, rows: list[dict[str, Any]]) -> int:
    """Write labelled rows (features, label, version, request id, time) as one parquet file under
    ``root``, the directory a retraining job adds to its training data; returns the rows written."""
    if not rows:
        return 0
    names = list(dict.fromkeys(name for row in rows for name in row))
    sink = io.BytesIO()
    pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in names}), sink)
    filesystem.write_atomically(filesystem.join(root, f"part-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"),
                     sink.getvalue())
    return len(rows)


def read_prediction_log(root: str, model: str, since: float | None = None, version: int | None = None) -> pa.Table:
    """Every logged record of ``model`` (optionally of one version, from a UNIX time on), oldest first.

    Raises:
        StorageError: the log cannot be read.
    """
    fs, path = filesystem.resolve(filesystem.join(root, f"model={model}"))
    from pyarrow import fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except OSError as exc:
        raise StorageError(uri=root, problem=f"cannot list the prediction log ({exc})") from None
    tables = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet"):
            continue
        if version is not None and f"/version={version}/" not in info.path:
            continue
        if since is not None:
            date = info.path.split("/date=", 1)[1][:10]
            if date < datetime.fromtimestamp(since, timezone.utc).strftime("%Y-%m-%d"):
                continue
        with fs.open_input_file(info.path) as stream:
            tables.append(pq.read_table(stream))
    if not tables:
        return pa.table({})
    table = pa.concat_tables(tables, promote_options="permissive")
    if since is not None:
        import pyarrow.compute as pc

        table = table.filter(pc.greater_equal(table.column("time"), since))
    return table.sort_by("time")
