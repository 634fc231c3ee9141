"""Ray Data datasets over data files that never wait for a whole CPU.

Ray Data 2.60's file readers (``read_parquet``, ``read_csv``) list the files in a task that
asks for one whole CPU; on a cluster whose CPUs are partly taken (replicas and monitors hold
fractions) that task never starts and the job hangs. Here the files are listed by the driver
and read in small fractional-CPU map tasks, one file per task, in order.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import pyarrow as pa

from raymlops import filesystem
from raymlops.errors import ConfigError

#: CPUs of each read (and of the maps that follow it): they must fit beside fractional replicas.
IO_CPUS = 0.1


def data_files(uri: str, fmt: str, field: str = "--input") -> list[str]:
    """The data files under ``uri`` (itself when it is a file), as URIs, sorted.

    Raises:
        ConfigError: naming ``field``: nothing there, or no ``.parquet``/``.csv`` file in the directory.
    """
    import pyarrow.fs as pafs

    fs, path = filesystem.resolve(uri)
    info = fs.get_file_info(path)
    prefix = uri[: uri.index("://") + 3] if "://" in uri else ""
    if info.type == pafs.FileType.File:
        return [uri]
    if info.type != pafs.FileType.Directory:
        raise ConfigError(file=uri, problems=[(field, "no such file or directory")])
    found = sorted(prefix + f.path for f in fs.get_file_info(pafs.FileSelector(path, recursive=True))
                   if f.type == pafs.FileType.File and f.path.endswith(f".{fmt}")
                   and not f.base_name.startswith(("_", ".")))
    if not found:
        raise ConfigError(file=uri, problems=[(field, f"no .{fmt} files in this directory")])
    return found


def read_files(batch: pa.Table, fmt: str, columns: Sequence[str] | None = None) -> pa.Table:
    """A Ray Data map over file names (a ``file`` column): the files' rows (``columns`` only, when given)."""
    import pyarrow.dataset as pads

    tables = []
    for uri in batch.column("file").to_pylist():
        fs, path = filesystem.resolve(uri)
        tables.append(pads.dataset(path, filesystem=fs, format=fmt).to_table(
            columns=list(columns) if columns is not None else None))
    return pa.concat_tables(tables, promote_options="default")


def read_dataset(uris: Sequence[str], fmt: str = "parquet", columns: Sequence[str] | None = None,
                 num_cpus: float = IO_CPUS) -> Any:
    """A Ray dataset of every file under ``uris``, in order, read in ``num_cpus`` tasks. Needs Ray."""
    import ray.data

    files = [file for uri in uris for file in data_files(uri, fmt)]
    return ray.data.from_items([{"file": file} for file in files]).map_batches(
        functools.partial(read_files, fmt=fmt, columns=columns), batch_size=1, batch_format="pyarrow",
        num_cpus=num_cpus)
