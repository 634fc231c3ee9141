"""What the monitor keeps on the artifact store: snapshots of its state, calibrated online
detectors (once per version), and the parquet prediction log that retraining reads."""

from __future__ import annotations

import io
import json
import logging
import pickle
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from raymlops import filesystem
from raymlops.errors import ArtifactIntegrityError, StorageError
from raymlops.records import as_view, filled
from raymlops.signing import seal, unseal

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """JSON for what numpy and Counter leave in a snapshot (scalars and arrays as Python values)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"a snapshot cannot hold {type(value).__name__}")


class MonitorStore:
    """Snapshots and calibrated detectors of one model's monitor under ``root``.

    Nothing here is trusted because it is on the artifact store: the snapshot is JSON and the
    detectors (alibi-detect keeps no calibrated online detector in a code-free format) are
    pickles sealed with an HMAC under ``key``, the cluster's secret, and opened only when the
    signature matches. Refused files raise :class:`ArtifactIntegrityError`.
    """

    def __init__(self, root: str, model: str, key: bytes) -> None:
        self.root = filesystem.join(root, model)
        self.key = key

    @property
    def snapshot_uri(self) -> str:
        return filesystem.join(self.root, "snapshot.json")

    @property
    def snapshot_online_uri(self) -> str:
        return filesystem.join(self.root, "snapshot-online.sealed")

    def write_snapshot(self, state: dict[str, Any]) -> None:
        """Save the monitor's state (windows, counters, drift states as JSON; the online detectors'
        running state sealed beside it)."""
        state = dict(state)
        online = state.pop("online", {})
        if online:
            self._write_sealed(self.snapshot_online_uri, pickle.dumps(online, protocol=pickle.HIGHEST_PROTOCOL))
        self._write_sealed(self.snapshot_uri, json.dumps(state, default=_plain).encode())

    def read_snapshot(self) -> dict[str, Any] | None:
        """The last snapshot, or None when there is none.

        Raises:
            ArtifactIntegrityError: the snapshot was changed or is unreadable (its online part
                alone being refused only drops that part).
        """
        if not filesystem.exists(self.snapshot_uri):
            return None
        try:
            state = json.loads(self._read_sealed(self.snapshot_uri))
        except ValueError as exc:
            raise ArtifactIntegrityError(uri=self.snapshot_uri, file="", problem=f"not JSON ({exc})") from None
        state["online"] = self._read_online_state()
        return state

    def _read_online_state(self) -> dict[int, Any]:
        if not filesystem.exists(self.snapshot_online_uri):
            return {}
        try:
            return pickle.loads(self._read_sealed(self.snapshot_online_uri))  # noqa: S301 - signature checked first
        except ArtifactIntegrityError as exc:
            log.warning("online detectors of the snapshot refused: %s", exc)
            return {}

    def online_uri(self, version: int, settings: dict[str, Any]) -> str:
        key = "-".join(f"{settings[k]}" for k in ("kind", "ert", "window_size", "n_bootstraps", "reference_rows"))
        return filesystem.join(self.root, f"v{version}", f"online-{key}.sealed")

    def load_online(self, version: int, settings: dict[str, Any]):
        """The calibrated online detector of a version, when one was saved with these settings.

        Raises:
            ArtifactIntegrityError: the saved detector's signature does not match.
        """
        uri = self.online_uri(version, settings)
        if not filesystem.exists(uri):
            return None
        return pickle.loads(self._read_sealed(uri))  # noqa: S301 - signature checked first

    def save_online(self, version: int, settings: dict[str, Any], detector) -> None:
        """Keep a freshly calibrated online detector with the version."""
        self._write_sealed(self.online_uri(version, settings), pickle.dumps(detector, protocol=pickle.HIGHEST_PROTOCOL))

    def _write_sealed(self, uri: str, data: bytes) -> None:
        filesystem.write_atomically(uri, seal(data, self.key))

    def _read_sealed(self, uri: str) -> bytes:
        try:
            blob = filesystem.read_bytes(uri)
        except OSError as exc:
            raise ArtifactIntegrityError(uri=uri, file="", problem=f"unreadable ({exc})") from None
        return unseal(blob, self.key, uri)


class PredictionLog:
    """Buffered prediction records written as parquet, partitioned ``model=/version=/date=``.

    Rows are taken out of the buffer before a write starts (:meth:`take`, on the caller's thread)
    and handed back when it fails (:meth:`give_back`), so rows added during a write are never
    lost and a failed write is retried; while storage is down the buffer keeps at most
    ``max_rows`` rows, dropping the oldest and counting them in :attr:`dropped`.

    Args:
        root: URI of the log (``<artifact_root>/_predictions`` by default).
        model: the model's name.
        row_group_size: rows per parquet row group.
        max_rows: rows kept at most while writes fail.
    """

    def __init__(self, root: str, model: str, row_group_size: int = 10_000, max_rows: int = 200_000) -> None:
        self.root, self.model, self.row_group_size, self.max_rows = root, model, row_group_size, max_rows
        self.batches: list[pa.Table] = []
        self.rows = 0
        self.written = 0
        self.dropped = 0

    def add(self, records: Any) -> None:
        """Buffer a record batch or view (kept as it came: no copy, no conversion)."""
        table = pa.Table.from_batches([as_view(records).batch])
        self.batches.append(table)
        self.rows += table.num_rows
        self._bound()

    def take(self) -> list[pa.Table]:
        """Everything buffered, taken out of the buffer (call on the thread that adds)."""
        batches, self.batches, self.rows = self.batches, [], 0
        return batches

    def give_back(self, batches: list[pa.Table]) -> None:
        """Return taken batches that could not be written, ahead of newer ones (bounded)."""
        self.batches = batches + self.batches
        self.rows = sum(t.num_rows for t in self.batches)
        self._bound()

    def _bound(self) -> None:
        while self.rows > self.max_rows and len(self.batches) > 1:
            oldest = self.batches.pop(0)
            self.rows -= oldest.num_rows
            self.dropped += oldest.num_rows

    def flush(self) -> int:
        """Write what is buffered (take, write, and give back on failure); returns the rows written.

        Raises:
            OSError and other storage errors, after giving the rows back.
        """
        batches = self.take()
        try:
            return self.write(batches)
        except BaseException:
            self.give_back(batches)
            raise

    def write(self, batches: list[pa.Table]) -> int:
        """Write taken batches, one file per (version, date); returns the rows written."""
        if not batches:
            return 0
        table = pa.concat_tables(batches, promote_options="permissive")
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


def write_labels(join: Any, embedding_versions: set[int], root: str) -> int:
    """Write the labelled rows a :class:`~raymlops.monitor.feedback.FeedbackJoin` holds (those
    retraining can learn from) under ``root``; on failure they stay in the join for the next write."""
    from raymlops.monitor.feedback import trainable_rows

    drained = join.drain_labelled()
    try:
        return write_labelled_rows(root, trainable_rows(drained, embedding_versions))
    except Exception:
        join.labelled_rows[:0] = drained
        raise


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
