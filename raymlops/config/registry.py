"""The model registry: metadata database and artifact root (``configs/registry.yaml``)."""

from __future__ import annotations

from pydantic import Field

from raymlops.config.base import StrictModel

#: The files every model version carries, whatever its flavor (see raymlops.train.package);
#: a flavor checks its own files when it loads.
DEFAULT_REQUIRED_FILES = ["model.json", "signature.json", "reference.parquet", "detector.json"]


class S3Config(StrictModel):
    """Where an S3-compatible artifact store is; credentials come only from the environment."""

    endpoint: str | None = Field(
        None, description="Endpoint URL of an S3-compatible server (e.g. http://127.0.0.1:9000); unset = AWS, "
        "or $RAYMLOPS_S3_ENDPOINT / $AWS_ENDPOINT_URL.",
    )
    region: str | None = Field(None, description="Bucket region; unset = $AWS_DEFAULT_REGION.")


class RegistryConfig(StrictModel):
    """``configs/registry.yaml``: where model metadata and artifacts live."""

    database_url: str | None = Field(
        None, description="SQLAlchemy URL of the metadata database (sqlite:///path or postgresql+psycopg://...). "
        "$RAYMLOPS_REGISTRY_URL wins when set; unset = sqlite:///$RAYMLOPS_HOME/registry/registry.db.",
    )
    artifact_root: str | None = Field(
        None, description="Root URI of version artifacts (local path, s3://bucket/prefix, ...). "
        "$RAYMLOPS_ARTIFACT_ROOT wins when set; unset = $RAYMLOPS_HOME/registry/artifacts.",
    )
    s3: S3Config = Field(default_factory=S3Config, description="S3 settings for s3:// artifact roots.")
    required_files: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_FILES),
        description="Files a version must contain to be registered, whatever its flavor (model.json naming the "
        "flavor, signature, reference sample, detector config); each flavor checks its own files on load.",
    )
    sqlite_timeout_s: float = Field(60.0, gt=0, description="How long SQLite waits for a concurrent writer's lock.")
