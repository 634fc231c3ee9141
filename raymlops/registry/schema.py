"""The registry's SQL schema (SQLAlchemy Core) and its version check.

Every table name starts with ``raymlops_`` so the registry can share a PostgreSQL
database. ``raymlops_meta`` carries the schema version; a database written by a newer
raymlops is refused instead of being misread.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Engine,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)

from raymlops.errors import SchemaVersionError

SCHEMA_VERSION = 1

metadata = MetaData()

meta = Table(
    "raymlops_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

models = Table(
    "raymlops_models",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("latest_version", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

versions = Table(
    "raymlops_versions",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(128), nullable=False, default=""),
    Column("artifact_uri", Text, nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("description", Text, nullable=False, default=""),
    ForeignKeyConstraint(["model"], ["raymlops_models.name"]),
)

aliases = Table(
    "raymlops_aliases",
    metadata,
    Column("model", String(64), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
    ForeignKeyConstraint(["model", "version"], ["raymlops_versions.model", "raymlops_versions.version"]),
)

alias_history = Table(
    "raymlops_alias_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("old_version", Integer, nullable=True),
    Column("new_version", Integer, nullable=True),
    Column("time", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Index("ix_raymlops_alias_history_model", "model", "alias"),
)

events = Table(
    "raymlops_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("version", Integer, nullable=True),
    Column("kind", String(64), nullable=False),
    Column("time", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("payload", JSON, nullable=False),
    Index("ix_raymlops_events_model_kind_time", "model", "kind", "time"),
    Index("ix_raymlops_events_time", "time"),
)


def stored_schema_version(engine: Engine) -> int | None:
    """The schema version recorded in the database, or None for an empty database."""
    if not inspect(engine).has_table(meta.name):
        return None
    with engine.connect() as conn:
        value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return int(value) if value is not None else None


def ensure_schema(engine: Engine, url: str) -> None:
    """Create missing tables and record the schema version; refuse a newer schema.

    Raises:
        SchemaVersionError: when the database was written by a newer raymlops.
    """
    found = stored_schema_version(engine)
    if found is not None and found > SCHEMA_VERSION:
        raise SchemaVersionError(url=url, found=found, supported=SCHEMA_VERSION)
    metadata.create_all(engine, checkfirst=True)
    if found is None:
        with engine.begin() as conn:
            exists = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
            if exists is None:
                conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
