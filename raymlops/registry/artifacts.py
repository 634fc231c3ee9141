"""Version artifacts on any pyarrow filesystem, with a sha256 manifest.

Upload goes to ``<root>/_staging/<id>/``, is read back and verified against the manifest,
then moved to ``<root>/<model>/<id>/`` (a rename on local disks, copy-verify-delete on
object stores). Only after that does the registry commit the version row, so a crash at
any point leaves at most unreferenced files, never a half-visible version.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pyarrow.fs as pafs

from raymlops import filesystem
from raymlops.errors import ArtifactIntegrityError, RegistryError, StorageError
from raymlops.filesystem import S3Options
from raymlops.types import check_name

MANIFEST_FILE = "manifest.json"
CHUNK = 1 << 20
#: An upload whose staging directory was not touched this long belongs to a process that died.
STALE_STAGING_S = 3600.0


def sha256_file(path: Path) -> str:
    """sha256 of a local file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(local_dir: Path) -> dict[str, str]:
    """``{relative/path: sha256}`` of every regular file under ``local_dir``.

    Raises:
        RegistryError: the directory is missing or empty, or holds a symlink.
    """
    if not local_dir.is_dir():
        raise RegistryError(message=f"{local_dir}: artifact directory not found")
    manifest = {}
    for path in sorted(local_dir.rglob("*")):
        if path.is_symlink():
            raise RegistryError(message=f"{path}: symlinks are not allowed in an artifact directory")
        if path.is_file() and path.name != MANIFEST_FILE:
            manifest[path.relative_to(local_dir).as_posix()] = sha256_file(path)
    if not manifest:
        raise RegistryError(message=f"{local_dir}: artifact directory is empty")
    return manifest


class ArtifactStore:
    """Immutable artifact directories under one root URI."""

    def __init__(self, root: str, s3: S3Options | None = None) -> None:
        self.root = str(root).rstrip("/")
        self.s3 = s3
        self.fs, self.root_path = filesystem.resolve(self.root, s3)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def _uri(self, path: str) -> str:
        """A user-facing URI for a path inside this filesystem."""
        if self.local:
            return path
        return f"{self.root.split('://', 1)[0]}://{path}"

    def upload(self, model: str, local_dir: Path, manifest: dict[str, str]) -> str:
        """Stage, verify and publish ``local_dir``; return the artifact URI of the new directory.

        Raises:
            ArtifactIntegrityError: a staged file does not match the manifest.
            StorageError: the store cannot be written.
        """
        check_name(model, "model name")
        self.sweep_staging()
        artifact_id = uuid.uuid4().hex
        staging = f"{self.root_path}/_staging/{artifact_id}"
        final = f"{self.root_path}/{model}/{artifact_id}"
        try:
            self.fs.create_dir(staging, recursive=True)
            for relative in manifest:
                self._copy_file(local_dir / relative, f"{staging}/{relative}")
            self._write_manifest(staging, manifest)
            self._verify_path(staging, manifest, self._uri(staging))
            self._publish(staging, final, manifest)
        except OSError as exc:
            raise StorageError(uri=self._uri(staging), problem=f"upload failed ({exc})") from None
        finally:
            self._remove(staging)
        return self._uri(final)

    def sweep_staging(self, older_than_s: float = STALE_STAGING_S) -> int:
        """Remove uploads a killed process left in ``_staging`` (untouched for ``older_than_s``);
        returns how many. Never fails an upload: a sweep that cannot list or delete gives up."""
        import time

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(f"{self.root_path}/_staging", allow_not_found=True))
            stale = [i.path for i in infos if i.type == pafs.FileType.Directory and i.mtime is not None
                     and time.time() - i.mtime.timestamp() > older_than_s]
            for path in stale:
                self.fs.delete_dir(path)
            return len(stale)
        except OSError:
            return 0

    def _copy_file(self, source: Path, destination: str) -> None:
        parent = destination.rsplit("/", 1)[0]
        self.fs.create_dir(parent, recursive=True)
        with open(source, "rb") as reader, self.fs.open_output_stream(destination) as writer:
            for block in iter(lambda: reader.read(CHUNK), b""):
                writer.write(block)

    def _write_manifest(self, directory: str, manifest: dict[str, str]) -> None:
        with self.fs.open_output_stream(f"{directory}/{MANIFEST_FILE}") as writer:
            writer.write(json.dumps({"sha256": manifest}, indent=2, sort_keys=True).encode())

    def _publish(self, staging: str, final: str, manifest: dict[str, str]) -> None:
        self.fs.create_dir(final.rsplit("/", 1)[0], recursive=True)
        if self.local:
            self.fs.move(staging, final)  # one atomic rename
            return
        for relative in [*manifest, MANIFEST_FILE]:
            self.fs.copy_file(f"{staging}/{relative}", f"{final}/{relative}")
        self._verify_path(final, manifest, self._uri(final))

    def _remove(self, directory: str) -> None:
        try:
            if self.fs.get_file_info(directory).type != pafs.FileType.NotFound:
                self.fs.delete_dir(directory)
        except OSError:
            pass  # an orphaned staging directory is harmless; it is never referenced

    def _path(self, uri: str) -> str:
        """The path inside this store's filesystem of an artifact URI it returned."""
        return filesystem.resolve(uri, self.s3)[1]

    def verify(self, uri: str, manifest: dict[str, str]) -> None:
        """Check every file of ``manifest`` exists at ``uri`` with its sha256.

        Raises:
            ArtifactIntegrityError: naming the first missing or corrupted file.
        """
        self._verify_path(self._path(uri), manifest, uri)

    def _verify_path(self, base: str, manifest: dict[str, str], uri: str) -> None:
        for relative, expected in manifest.items():
            actual = self._hash_remote(f"{base}/{relative}", uri, relative)
            if actual != expected:
                raise ArtifactIntegrityError(uri=uri, file=relative, problem=f"sha256 {actual[:12]}… differs from the manifest's {expected[:12]}… (corrupted)")

    def _hash_remote(self, path: str, uri: str, relative: str) -> str:
        digest = hashlib.sha256()
        try:
            with self.fs.open_input_stream(path) as stream:
                while block := stream.read(CHUNK):
                    digest.update(block)
        except FileNotFoundError:
            raise ArtifactIntegrityError(uri=uri, file=relative, problem="missing") from None
        except OSError as exc:
            raise ArtifactIntegrityError(uri=uri, file=relative, problem=f"unreadable ({exc})") from None
        return digest.hexdigest()

    def download(self, uri: str, manifest: dict[str, str], destination: Path) -> Path:
        """Copy a version's files to a local directory, verifying each file's sha256 on the way.

        Raises:
            ArtifactIntegrityError: a file is missing or corrupted (the partial copy is removed).
        """
        base = self._path(uri)
        destination.mkdir(parents=True, exist_ok=True)
        for relative, expected in manifest.items():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with self.fs.open_input_stream(f"{base}/{relative}") as stream, open(target, "wb") as out:
                    while block := stream.read(CHUNK):
                        digest.update(block)
                        out.write(block)
            except FileNotFoundError:
                raise ArtifactIntegrityError(uri=uri, file=relative, problem="missing") from None
            if digest.hexdigest() != expected:
                target.unlink(missing_ok=True)
                raise ArtifactIntegrityError(uri=uri, file=relative, problem="sha256 differs from the manifest (corrupted)")
        return destination
