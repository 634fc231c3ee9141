"""Registry metadata in SQL through SQLAlchemy Core: SQLite by default, PostgreSQL for clusters.

Version numbers come from ``UPDATE ... SET latest_version = latest_version + 1 RETURNING``
inside the transaction that inserts the version row, so concurrent registrations (threads,
processes or machines) get distinct consecutive numbers. Alias changes are conditional
updates (compare-and-set), every move is kept in ``raymlops_alias_history``, and events
are append-only.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from sqlalchemy import Engine, and_, create_engine, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from raymlops.errors import AliasConflictError, NotAvailableError, NotFoundError, RegistryError
from raymlops.registry import schema as s
from raymlops.types import AliasMove, Event, ModelVersion, check_name

#: Marker for "no compare-and-set": move the alias whatever it points to now.
ANY = object()


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (psycopg2 is not a dependency)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def build_engine(url: str, sqlite_timeout_s: float = 60.0) -> Engine:
    """Create an engine; SQLite gets WAL, a lock timeout and ``BEGIN IMMEDIATE`` transactions.

    ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start of a transaction, so two
    writers queue instead of one failing when it upgrades a read lock.

    Raises:
        NotAvailableError: when the PostgreSQL driver is not installed.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": sqlite_timeout_s})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except ModuleNotFoundError as exc:
        raise NotAvailableError(feature=f"database URL {url.split('://')[0]}://", reason=f"{exc.name} is missing; "
                                "pip install 'raymlops[postgres]'") from None


def _insert_ignore(conn, table, values: dict[str, Any]) -> None:
    """INSERT that does nothing when the primary key exists (SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgres_insert

        statement: Any = postgres_insert(table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table)
    conn.execute(statement.values(**values).on_conflict_do_nothing())


def _row_to_version(row) -> ModelVersion:
    return ModelVersion(
        name=row.model, version=row.version, created_at=row.created_at, artifact_uri=row.artifact_uri,
        manifest=dict(row.manifest), metrics=dict(row.metrics), lineage=dict(row.lineage),
        description=row.description, created_by=row.created_by,
    )


def _row_to_event(row) -> Event:
    return Event(id=row.id, model=row.model, version=row.version, kind=row.kind, time=row.time,
                 actor=row.actor, payload=dict(row.payload))


class SqlMetadata:
    """Model, version, alias and event rows in one SQL database."""

    def __init__(self, url: str, sqlite_timeout_s: float = 60.0) -> None:
        self.url = normalize_url(url)
        self.engine = build_engine(self.url, sqlite_timeout_s)
        self._ensure_schema()

    def _ensure_schema(self, attempts: int = 5) -> None:
        # Several processes may open a fresh database at once; the loser of a CREATE race retries.
        for attempt in range(attempts):
            try:
                s.ensure_schema(self.engine, self.safe_url)
                return
            except (IntegrityError, OperationalError, DBAPIError):
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))

    @property
    def safe_url(self) -> str:
        """The database URL with any password hidden."""
        return self.engine.url.render_as_string(hide_password=True)

    def cluster_secret(self, name: str) -> str:
        """A random secret kept in the database under ``name``, made by whoever asks first
        (concurrent first askers agree: the losing insert is ignored)."""
        import secrets

        key = f"secret:{name}"
        with self.engine.begin() as conn:
            _insert_ignore(conn, s.meta, {"key": key, "value": secrets.token_hex(32)})
            return str(conn.execute(select(s.meta.c.value).where(s.meta.c.key == key)).scalar_one())

    # ------------------------------------------------------------------ versions

    def add_version(self, name: str, artifact_uri: str, manifest: dict[str, str], metrics: dict[str, float],
                    lineage: dict[str, Any], description: str, actor: str) -> ModelVersion:
        """Allocate the next version number and insert the row and its event, in one transaction."""
        check_name(name, "model name")
        now = time.time()
        with self.engine.begin() as conn:
            _insert_ignore(conn, s.models, {"name": name, "latest_version": 0, "created_at": now})
            number = conn.execute(
                update(s.models).where(s.models.c.name == name)
                .values(latest_version=s.models.c.latest_version + 1).returning(s.models.c.latest_version)
            ).scalar_one()
            conn.execute(insert(s.versions).values(
                model=name, version=number, created_at=now, created_by=actor, artifact_uri=artifact_uri,
                manifest=manifest, metrics=metrics, lineage=lineage, description=description,
            ))
            self._event(conn, name, number, "registered", actor, {"artifact_uri": artifact_uri, "metrics": metrics})
        return self.get_version(name, number)

    def get_version(self, name: str, version: int) -> ModelVersion:
        """One version.

        Raises:
            NotFoundError: no such model or version.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(s.versions).where(and_(s.versions.c.model == name, s.versions.c.version == version))).first()
        if row is None:
            self._require_model(name)
            raise NotFoundError(what="version", name=f"{name}:{version}")
        return _row_to_version(row)

    def latest_version(self, name: str) -> int:
        """The highest version number of a model.

        Raises:
            NotFoundError: no such model.
        """
        with self.engine.connect() as conn:
            number = conn.execute(select(func.max(s.versions.c.version)).where(s.versions.c.model == name)).scalar()
        if number is None:
            raise NotFoundError(what="model", name=name)
        return int(number)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of a model, oldest first (empty when the model has none)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.versions).where(s.versions.c.model == name).order_by(s.versions.c.version)).all()
        return [_row_to_version(row) for row in rows]

    def list_models(self) -> list[dict[str, Any]]:
        """Each model with its latest version, version count and aliases."""
        with self.engine.connect() as conn:
            counts = conn.execute(
                select(s.versions.c.model, func.max(s.versions.c.version), func.count())
                .group_by(s.versions.c.model).order_by(s.versions.c.model)
            ).all()
            alias_rows = conn.execute(select(s.aliases.c.model, s.aliases.c.alias, s.aliases.c.version)).all()
        result = []
        for model, latest, count in counts:
            names = {row.alias: row.version for row in alias_rows if row.model == model}
            result.append({"name": model, "latest_version": latest, "versions": count, "aliases": names})
        return result

    def _require_model(self, name: str) -> None:
        with self.engine.connect() as conn:
            if conn.execute(select(s.models.c.name).where(s.models.c.name == name)).first() is None:
                raise NotFoundError(what="model", name=name)

    # ------------------------------------------------------------------ aliases

    def resolve_alias(self, name: str, alias: str) -> int:
        """The version an alias points to.

        Raises:
            NotFoundError: no such model or alias.
        """
        with self.engine.connect() as conn:
            version = conn.execute(
                select(s.aliases.c.version).where(and_(s.aliases.c.model == name, s.aliases.c.alias == alias))
            ).scalar()
        if version is None:
            self._require_model(name)
            raise NotFoundError(what="alias", name=f"{name}@{alias}")
        return int(version)

    def aliases(self, name: str) -> dict[str, int]:
        """Every alias of a model and its version."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.aliases.c.alias, s.aliases.c.version).where(s.aliases.c.model == name)).all()
        return {row.alias: row.version for row in rows}

    def set_alias(self, name: str, alias: str, version: int, actor: str, expected: Any = ANY) -> AliasMove:
        """Point ``alias`` at ``version``; with ``expected`` only if it still points there (None = unset).

        Raises:
            NotFoundError: the version does not exist.
            AliasConflictError: the alias is not where ``expected`` says.
        """
        check_name(alias, "alias")
        return self._move_alias(name, alias, version, actor, expected)

    def delete_alias(self, name: str, alias: str, actor: str, expected: Any = ANY) -> AliasMove:
        """Remove an alias; with ``expected`` only if it still points there.

        Raises:
            NotFoundError: the alias does not exist.
            AliasConflictError: the alias is not where ``expected`` says.
        """
        return self._move_alias(name, alias, None, actor, expected)

    def _move_alias(self, name: str, alias: str, version: int | None, actor: str, expected: Any) -> AliasMove:
        now = time.time()
        with self.engine.begin() as conn:
            if version is not None:
                found = conn.execute(select(s.versions.c.version).where(
                    and_(s.versions.c.model == name, s.versions.c.version == version))).first()
                if found is None:
                    raise NotFoundError(what="version", name=f"{name}:{version}")
            current = conn.execute(select(s.aliases.c.version).where(
                and_(s.aliases.c.model == name, s.aliases.c.alias == alias))).scalar()
            if expected is not ANY and expected != current:
                raise AliasConflictError(model=name, alias=alias, expected=expected, actual=current)
            if version is None and current is None:
                raise NotFoundError(what="alias", name=f"{name}@{alias}")
            where = and_(s.aliases.c.model == name, s.aliases.c.alias == alias, s.aliases.c.version == current)
            if version is None:
                changed = conn.execute(s.aliases.delete().where(where)).rowcount
            elif current is None:
                try:
                    conn.execute(insert(s.aliases).values(model=name, alias=alias, version=version, updated_at=now, updated_by=actor))
                    changed = 1
                except IntegrityError:
                    changed = 0
            else:
                changed = conn.execute(update(s.aliases).where(where).values(version=version, updated_at=now, updated_by=actor)).rowcount
            if changed != 1:  # someone moved it between our read and our write
                raise AliasConflictError(model=name, alias=alias, expected=current, actual="(moved concurrently)")
            conn.execute(insert(s.alias_history).values(model=name, alias=alias, old_version=current,
                                                        new_version=version, time=now, actor=actor))
            payload = {"alias": alias, "from": current, "to": version}
            self._event(conn, name, version if version is not None else current, "alias_moved", actor, payload)
        return AliasMove(model=name, alias=alias, old_version=current, new_version=version, time=now, actor=actor)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of a model's aliases (or of one alias), oldest first."""
        query = select(s.alias_history).where(s.alias_history.c.model == name)
        if alias is not None:
            query = query.where(s.alias_history.c.alias == alias)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(s.alias_history.c.id)).all()
        return [AliasMove(model=r.model, alias=r.alias, old_version=r.old_version, new_version=r.new_version,
                          time=r.time, actor=r.actor) for r in rows]

    # ------------------------------------------------------------------ events

    def _event(self, conn, model: str, version: int | None, kind: str, actor: str, payload: dict[str, Any]) -> int:
        result = conn.execute(insert(s.events).values(model=model, version=version, kind=kind, time=time.time(),
                                                       actor=actor, payload=payload))
        return int(result.inserted_primary_key[0])

    def add_event(self, model: str, kind: str, actor: str, version: int | None = None,
                  payload: dict[str, Any] | None = None) -> Event:
        """Append an event (rollout step, drift detected, retrain submitted, ...)."""
        check_name(model, "model name")
        if not kind or len(kind) > 64:
            raise RegistryError(message=f"event kind must be 1-64 characters, got {kind!r}")
        with self.engine.begin() as conn:
            event_id = self._event(conn, model, version, kind, actor, payload or {})
        return self.events(ids=[event_id])[0]

    def events(self, model: str | None = None, kinds: Iterable[str] | None = None, since: float | None = None,
               until: float | None = None, limit: int | None = 1000, ids: Iterable[int] | None = None) -> list[Event]:
        """Events filtered by model, kind and time window, oldest first (the newest ``limit``)."""
        query = select(s.events)
        if model is not None:
            query = query.where(s.events.c.model == model)
        if kinds is not None:
            query = query.where(s.events.c.kind.in_(list(kinds)))
        if since is not None:
            query = query.where(s.events.c.time >= since)
        if until is not None:
            query = query.where(s.events.c.time < until)
        if ids is not None:
            query = query.where(s.events.c.id.in_(list(ids)))
        query = query.order_by(s.events.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_row_to_event(row) for row in reversed(rows)]

    def delete_events(self, model: str, before: float, keep_kinds: Iterable[str]) -> int:
        """Delete the model's events older than ``before`` except those of ``keep_kinds``; returns how many."""
        from sqlalchemy import delete

        statement = delete(s.events).where(s.events.c.model == model, s.events.c.time < before,
                                           s.events.c.kind.not_in(list(keep_kinds)))
        with self.engine.begin() as conn:
            return int(conn.execute(statement).rowcount or 0)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
