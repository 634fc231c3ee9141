"""Lineage recorded with every version: config, code, data, packages, seed, job, parent, trigger."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Literal

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from raymlops import filesystem
from raymlops.packages import installed_versions

TRACKED_PACKAGES = ("ray", "torch", "alibi-detect", "numpy", "pandas", "pyarrow", "raymlops")
CODE_REVISION_ENV = "RAYMLOPS_CODE_REVISION"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CodeRevision(_Frozen):
    """The code a version was trained with."""

    commit: str | None = Field(None, description="git commit, when known.")
    dirty: bool | None = Field(None, description="Whether the work tree had uncommitted changes.")
    source_sha256: str | None = Field(
        None, description="sha256 over the raymlops package and jobs/ sources: identifies the code even where "
        "git is not available (a Ray job's working-dir copy has no .git).",
    )


class DataFingerprint(_Frozen):
    """One input file, identified by content."""

    uri: str = Field(description="Where the data was read from.")
    sha256: str = Field(description="sha256 of the file's bytes.")
    size: int = Field(description="Bytes.")
    rows: int | None = Field(None, description="Rows, for parquet files.")


class Trigger(_Frozen):
    """Why a version exists."""

    kind: Literal["manual", "tune", "drift", "performance", "schedule", "import", "reproduce"] = Field(
        "manual", description="What started the run (`import`: a model trained elsewhere was brought in; "
        "`reproduce`: a re-run of the parent version from its lineage).")
    tune_run: str | None = Field(None, description="Tune experiment name, for kind=tune.")
    drift_event_id: int | None = Field(None, description="The registry event that triggered retraining.")
    details: dict[str, Any] = Field(default_factory=dict, description="Anything else worth keeping.")


class Lineage(_Frozen):
    """Everything needed to explain, and redo, how a version came to be."""

    config: dict[str, Any] = Field(default_factory=dict, description="The full resolved config.")
    config_hash: str = Field("", description="sha256 of the canonical JSON of `config`.")
    code: CodeRevision = Field(default_factory=CodeRevision, description="Code revision.")
    data: list[DataFingerprint] = Field(default_factory=list, description="Training data fingerprints.")
    packages: dict[str, str] = Field(default_factory=dict, description="python and key package versions.")
    environment: dict[str, Any] = Field(
        default_factory=dict, description="What serving checks: python, the packages the model's flavor depends on, "
        "and the runtime_env (pip/uv/conda/image_uri) or image of the run (raymlops.models.environment).")
    seed: int | None = Field(None, description="Random seed.")
    ray_job_id: str | None = Field(None, description="The Ray job that produced the version.")
    parent_version: int | None = Field(None, description="The version this one was derived from.")
    trigger: Trigger = Field(default_factory=Trigger, description="What started the run.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Run-specific details (e.g. tune trials).")


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a config's canonical JSON (sorted keys), so equal configs hash equal."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def source_digest(directory: str | Path = ".") -> str:
    """sha256 over the raymlops package's and ``directory``/jobs' Python files (paths and contents)."""
    import raymlops

    digest = hashlib.sha256()
    roots = [Path(raymlops.__file__).parent, Path(directory) / "jobs"]
    for root in roots:
        for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
            digest.update(f"{root.name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def code_revision(directory: str | Path = ".") -> CodeRevision:
    """git commit and dirty flag of ``directory`` (``$RAYMLOPS_CODE_REVISION``, ``sha[+dirty]``, when
    there is no git), plus a digest of the sources that is always available.

    Ray job working directories are copies without ``.git``; ``raymlops train`` passes
    the submitter's revision in the environment.
    """
    digest = source_digest(directory)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, timeout=5)
        if commit.returncode == 0:
            status = subprocess.run(["git", "status", "--porcelain"], cwd=directory, capture_output=True, text=True, timeout=5)
            return CodeRevision(commit=commit.stdout.strip(), dirty=bool(status.stdout.strip()), source_sha256=digest)
    except (OSError, subprocess.SubprocessError):
        pass
    value = os.environ.get(CODE_REVISION_ENV, "").strip()
    if value:
        sha, _, flag = value.partition("+")
        return CodeRevision(commit=sha, dirty=flag == "dirty", source_sha256=digest)
    return CodeRevision(source_sha256=digest)


def fingerprint(uri: str) -> list[DataFingerprint]:
    """Fingerprints of a file, or of every file under a directory, by content."""
    fs, path = filesystem.resolve(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        files = [f for f in fs.get_file_info(pafs.FileSelector(path, recursive=True)) if f.type == pafs.FileType.File]
    else:
        files = [info]
    prints = []
    for file in sorted(files, key=lambda f: f.path):
        digest = hashlib.sha256()
        with fs.open_input_stream(file.path) as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
        rows = None
        if file.path.endswith(".parquet"):
            with fs.open_input_file(file.path) as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
        shown = file.path if filesystem.is_local(uri) else f"{uri.split('://', 1)[0]}://{file.path}"
        prints.append(DataFingerprint(uri=shown, sha256=digest.hexdigest(), size=file.size, rows=rows))
    return prints


def package_versions() -> dict[str, str]:
    """python and the versions of the packages that decide a model's behaviour."""
    return {"python": platform.python_version(), **installed_versions(TRACKED_PACKAGES)}


def current_job_id() -> str | None:
    """The Ray job submission id when running as a Ray job (from the job config Ray passes its driver)."""
    try:
        metadata = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")).get("metadata", {})
    except ValueError:
        metadata = {}
    return metadata.get("job_submission_id") or os.environ.get("RAY_JOB_SUBMISSION_ID") or None


def collect_lineage(
    config: dict[str, Any],
    data_uris: list[str],
    seed: int | None = None,
    parent_version: int | None = None,
    trigger: Trigger | None = None,
    ray_job_id: str | None = None,
    extra: dict[str, Any] | None = None,
    environment: dict[str, Any] | None = None,
) -> Lineage:
    """Gather the lineage of a run from its config, its data files and this process
    (``environment``: the model's, from :func:`raymlops.models.environment.environment_of`)."""
    data = [fp for uri in data_uris for fp in fingerprint(uri)]
    return Lineage(
        config=config, config_hash=config_hash(config), code=code_revision(), data=data,
        packages=package_versions(), seed=seed, parent_version=parent_version,
        trigger=trigger or Trigger(), extra=extra or {}, environment=environment or {},
        ray_job_id=ray_job_id or current_job_id(),
    )
