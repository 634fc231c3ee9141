"""Reading and writing tables on any pyarrow filesystem, with errors that name the path."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from raymlops import filesystem
from raymlops.errors import DataError, StorageError

SPLITS = ("train", "valid", "test")


def split_uri(directory: str, split: str) -> str:
    """The parquet file of one split of a prepared data set."""
    return filesystem.join(directory, f"{split}.parquet")


def read_table(uri: str) -> pa.Table:
    """Read a parquet file (or a directory of them), or a ``.csv`` file.

    Raises:
        DataError: the path does not exist, or is not parquet/CSV.
    """
    fs, path = filesystem.resolve(uri)
    info = fs.get_file_info(path)
    if info.type == filesystem.pafs.FileType.NotFound:
        raise DataError(path=uri, problem="no such file or directory")
    try:
        if path.lower().endswith(".csv"):
            with fs.open_input_stream(path) as stream:
                return pacsv.read_csv(stream)
        return pq.read_table(path, filesystem=fs)
    except pa.ArrowInvalid as exc:
        kind = "CSV" if path.lower().endswith(".csv") else "parquet"
        reason = str(exc).splitlines()[0]
        raise DataError(path=uri, problem=f"not a readable {kind} file ({reason})") from None
    except OSError as exc:
        raise DataError(path=uri, problem=f"cannot read ({exc})") from None


def write_table(table: pa.Table, uri: str) -> None:
    """Write a table as one parquet file, creating parent directories.

    Raises:
        StorageError: when the destination cannot be written.
    """
    fs, path = filesystem.resolve(uri)
    try:
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.create_dir(parent, recursive=True)
        pq.write_table(table, path, filesystem=fs)
    except OSError as exc:
        raise StorageError(uri=uri, problem=f"cannot write parquet ({exc})") from None
