"""Filesystem URIs through ``pyarrow.fs``: local paths, ``file://``, ``s3://``, ``gs://`` ...

Every place that reads or writes data or artifacts goes through :func:`resolve`, so a
local directory on a laptop and an S3 bucket on a cluster are the same code path.

S3 settings come from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``) and, for S3-compatible servers, ``AWS_ENDPOINT_URL`` or
``RAYMLOPS_S3_ENDPOINT``; callers may pass explicit :class:`S3Options` instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from raymlops.errors import StorageError


@dataclass(frozen=True)
class S3Options:
    """Connection settings for an S3-compatible object store (all optional)."""

    endpoint_override: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    scheme: str | None = None

    @classmethod
    def from_env(cls) -> S3Options:
        """Read the endpoint from ``RAYMLOPS_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL``; keys from AWS_*."""
        endpoint = os.environ.get("RAYMLOPS_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        return cls(
            endpoint_override=endpoint,
            region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
            access_key=os.environ.get("AWS_ACCESS_KEY_ID"),
            secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY"),
        )


def expand(uri: str | Path) -> str:
    """Expand ``$RAYMLOPS_HOME`` (default ``~/.raymlops``), other ``$VARS`` and ``~`` in a URI.

    Configs say ``$RAYMLOPS_HOME/data/...`` so that a Ray job running in a copy of the
    working directory resolves the same place as the CLI that prepared the data.
    """
    from raymlops.auth import home_dir

    text = str(uri)
    for token in ("${RAYMLOPS_HOME}", "$RAYMLOPS_HOME"):
        if text.startswith(token):
            text = str(home_dir()) + text[len(token):]
    text = os.path.expandvars(text)
    return os.path.expanduser(text) if text.startswith("~") else text


def is_local(uri: str) -> bool:
    """Whether ``uri`` names a path on this machine (a plain path or ``file://``)."""
    scheme = urlparse(str(uri)).scheme
    return scheme in ("", "file") or len(scheme) == 1  # a Windows drive letter is not a scheme


def _s3_filesystem(options: S3Options) -> pafs.S3FileSystem:
    kwargs: dict[str, object] = {}
    endpoint = options.endpoint_override
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme:
            kwargs["scheme"] = parsed.scheme
            endpoint = parsed.netloc
        kwargs["endpoint_override"] = endpoint
    if options.scheme:
        kwargs["scheme"] = options.scheme
    if options.region:
        kwargs["region"] = options.region
    if options.access_key and options.secret_key:
        kwargs["access_key"] = options.access_key
        kwargs["secret_key"] = options.secret_key
    return pafs.S3FileSystem(**kwargs)


def resolve(uri: str | Path, s3: S3Options | None = None) -> tuple[pafs.FileSystem, str]:
    """Return the filesystem for ``uri`` and the path inside it.

    Relative local paths are made absolute against the current directory.

    Raises:
        StorageError: when the URI's scheme has no pyarrow filesystem.
    """
    text = expand(uri)
    if is_local(text):
        path = urlparse(text).path if text.startswith("file://") else text
        return pafs.LocalFileSystem(), str(Path(path).expanduser().resolve())
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        return _s3_filesystem(s3 or S3Options.from_env()), f"{parsed.netloc}{parsed.path}".rstrip("/")
    try:
        return pafs.FileSystem.from_uri(text)
    except (pafs.ArrowInvalid, ValueError, OSError) as exc:
        raise StorageError(uri=text, problem=f"no filesystem for this URI ({exc})") from None


def join(uri: str | Path, *parts: str) -> str:
    """Join path parts onto a URI with ``/`` (works for local paths and object stores)."""
    base = str(uri).rstrip("/")
    return "/".join([base, *(part.strip("/") for part in parts)])


def exists(uri: str | Path, s3: S3Options | None = None) -> bool:
    """Whether a file or directory exists at ``uri``."""
    fs, path = resolve(uri, s3)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_bytes(uri: str | Path, s3: S3Options | None = None) -> bytes:
    """Read a whole file.

    Raises:
        StorageError: when it is missing or unreadable.
    """
    fs, path = resolve(uri, s3)
    try:
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except FileNotFoundError:
        raise StorageError(uri=str(uri), problem="file not found") from None
    except OSError as exc:
        raise StorageError(uri=str(uri), problem=f"cannot read ({exc})") from None


def write_bytes(uri: str | Path, data: bytes, s3: S3Options | None = None) -> None:
    """Write a whole file, creating parent directories on local filesystems.

    Raises:
        StorageError: when it cannot be written.
    """
    fs, path = resolve(uri, s3)
    try:
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.create_dir(parent, recursive=True)
        with fs.open_output_stream(path) as stream:
            stream.write(data)
    except OSError as exc:
        raise StorageError(uri=str(uri), problem=f"cannot write ({exc})") from None


def write_atomically(uri: str | Path, data: bytes, s3: S3Options | None = None) -> None:
    """Write a file so readers see the old or the new content, never half of one (temp + move).

    Raises:
        StorageError: when it cannot be written.
    """
    import uuid

    fs, path = resolve(uri, s3)
    parent = path.rsplit("/", 1)[0]
    try:
        if parent:
            fs.create_dir(parent, recursive=True)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open_output_stream(temporary) as stream:
            stream.write(data)
        fs.move(temporary, path)
    except OSError as exc:
        raise StorageError(uri=str(uri), problem=f"cannot write ({exc})") from None
