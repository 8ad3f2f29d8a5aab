"""The review store: one database per data directory for the review queue, the audit log and the coding jobs.

It is reached by URL (``review_database_url``): ``sqlite:///<data_dir>/review.sqlite`` unless
``MEDCODE_DATABASE_URL`` names another, e.g. ``postgresql+psycopg://coder@db/medcode``. All access
goes through SQLAlchemy Core and the ``Table`` objects below; the schema is kept by the Alembic
migrations in ``migrations/`` (shipped in the wheel), which run when a store is opened. Because the
queue and the audit log live in one database, a chart change and its audit record commit in one
transaction: neither can exist without the other.

Dialect specifics stay here and in the migrations:

- SQLite: a new file is created owner-only (0600: it holds PHI); every connection sets WAL,
  ``synchronous=FULL``, ``foreign_keys=ON`` and the busy timeout (``db_busy_timeout_s``). pysqlite's
  own transaction handling is switched off and medcode emits ``BEGIN`` itself (SQLAlchemy's
  "serializable isolation" recipe): ``BEGIN IMMEDIATE`` for write transactions, so concurrent
  writers queue up on the database lock instead of failing half-way, and a plain ``BEGIN`` (one
  consistent snapshot) for reads.
- PostgreSQL: writers that append to the audit log take a row lock on the audit head
  (``SELECT ... FOR UPDATE``), so appends serialise; reads run at ``REPEATABLE READ``; migrations
  and the legacy import hold a transaction-scoped advisory lock.

JSON (payloads, decisions, verdict details) is stored as text exactly as serialised, so the audit
hashes are byte-stable on every backend.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    create_engine,
    event,
    exc,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url

from medcode.config import Settings
from medcode.errors import ConfigError, InputError, MissingDependencyError, StoreError

__all__ = [
    "GENESIS_HASH",
    "ReviewStore",
    "actions",
    "audit_answers",
    "audit_batches",
    "audit_head",
    "audit_records",
    "audit_tasks",
    "autonomy_grants",
    "chart_codes",
    "charts",
    "jobs",
    "metadata",
    "review_database_url",
    "store_meta",
    "users",
]

log = logging.getLogger("medcode.review.store")

GENESIS_HASH = "0" * 64
_MIGRATIONS = Path(__file__).with_name("migrations")
_DIALECTS = ("sqlite", "postgresql")
_ADVISORY_LOCK = 0x6D6564636F6465  # "medcode": serialises migrations and the legacy import on PostgreSQL

# -- tables (revisions 0001, 0002 (governance), 0003 (note metadata) and 0004 (checks of coders' codes); a change
# here needs a migration, tests/test_review_store.py compares them) --------

metadata = MetaData()

store_meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

charts = Table(
    "charts",
    metadata,
    Column("chart_id", Integer, primary_key=True, autoincrement=True),
    Column("note_id", Text),
    Column("note_sha256", Text, nullable=False),
    Column("note_text", Text, nullable=False),
    Column("note_type", Text),
    Column("setting", Text, nullable=False),
    Column("date_of_service", Text),
    Column("result_sha256", Text, nullable=False),
    Column("decision_json", Text, nullable=False),
    Column("routing", Text, nullable=False),
    Column("reasons_json", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("assigned_to", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("finalised_at", Text),
    Column("finalised_by", Text),
    # Note metadata (revision 0003): what the monitoring reports group by; all optional.
    Column("provider_id", Text),
    Column("department", Text),
    Column("payer", Text),
    Column("encounter_date", Text),
    CheckConstraint("routing IN ('auto', 'review')", name="charts_routing"),
    CheckConstraint("status IN ('pending', 'coding', 'in_review', 'finalised')", name="charts_status_value"),
    Index("charts_status", "status", "created_at"),
    Index("charts_result", "note_sha256", "result_sha256"),
    sqlite_autoincrement=True,  # chart ids are never reused
)

chart_codes = Table(
    "chart_codes",
    metadata,
    Column("chart_id", Integer, ForeignKey("charts.chart_id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("code", Text, nullable=False),
    Column("code_key", Text, nullable=False),
    Column("description", Text),
    Column("chapter", Text),
    Column("origin", Text, nullable=False),
    Column("proposed_status", Text),
    Column("confidence", Float),
    Column("rules_json", Text, nullable=False),
    Column("warnings_json", Text, nullable=False),
    Column("evidence_json", Text, nullable=False),
    Column("decision", Text, nullable=False),
    Column("prefilled", Integer, nullable=False, server_default=text("0")),
    Column("replaced_by", Text),
    Column("replaces", Text),
    Column("decided_by", Text),
    Column("decided_at", Text),
    Column("reason", Text),
    # The validators' verdict on a code a coder added or substituted (revision 0004; NULL for suggestions,
    # whose verdicts are in the chart's decision, and for codes added without validators).
    Column("check_json", Text),
    PrimaryKeyConstraint("chart_id", "position"),
    CheckConstraint("origin IN ('proposed', 'added')", name="chart_codes_origin"),
    CheckConstraint("proposed_status IN ('accepted', 'rejected')", name="chart_codes_proposed_status"),
    CheckConstraint("decision IN ('pending', 'accepted', 'rejected', 'replaced')", name="chart_codes_decision"),
    Index("chart_codes_key", "chart_id", "code_key"),
)

actions = Table(
    "actions",
    metadata,
    Column("action_id", Integer, primary_key=True, autoincrement=True),
    Column("chart_id", Integer, ForeignKey("charts.chart_id"), nullable=False),
    Column("action", Text, nullable=False),
    Column("code", Text),
    Column("new_code", Text),
    Column("user", Text, nullable=False),
    Column("reason", Text),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("version", Integer, nullable=False),
    Column("at", Text, nullable=False),
    Column("audit_seq", Integer, nullable=False),
    Index("actions_chart", "chart_id", "action_id"),
    sqlite_autoincrement=True,
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("chart_id", Integer),
    Column("payload", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("audit_records_chart", "chart_id"),
    Index("audit_records_event", "event_type", "seq"),  # revision 0002: drift alerts are found by type
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", Text, nullable=False),
    CheckConstraint("id = 1", name="audit_head_one_row"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Text, nullable=False, unique=True),
    Column("status", Text, nullable=False),
    Column("note_id", Text, nullable=False),
    Column("note_type", Text),
    Column("note_json", Text),
    Column("proposer", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("started_at", Text),
    Column("finished_at", Text),
    Column("chart_id", Integer),
    Column("error_type", Text),
    Column("error_message", Text),
    Column("result_json", Text),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="jobs_status_value"),
    Index("jobs_status", "status", "seq"),
    sqlite_autoincrement=True,
)

# -- revision 0002: the governance room (blinded audits and earned autonomy, medcode.review.governance) --------

audit_batches = Table(
    "audit_batches",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("policy_sha256", Text, nullable=False),
    Column("params_json", Text, nullable=False),
    sqlite_autoincrement=True,
)

audit_tasks = Table(
    "audit_tasks",
    metadata,
    Column("task_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("audit_batches.batch_id"), nullable=False),
    Column("chart_id", Integer, ForeignKey("charts.chart_id"), nullable=False, unique=True),
    Column("case_type", Text),
    Column("stratum", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("gold_codes_json", Text),
    Column("gold_source", Text),
    Column("gold_by", Text),
    Column("gold_at", Text),
    CheckConstraint("stratum IN ('auto', 'review')", name="audit_tasks_stratum"),
    CheckConstraint("status IN ('open', 'disputed', 'gold')", name="audit_tasks_status"),
    CheckConstraint("gold_source IN ('agreement', 'adjudication', 'single')", name="audit_tasks_gold_source"),
    Index("audit_tasks_status", "status", "task_id"),
    Index("audit_tasks_case_type", "case_type", "status"),
    sqlite_autoincrement=True,
)

audit_answers = Table(
    "audit_answers",
    metadata,
    Column("task_id", Integer, ForeignKey("audit_tasks.task_id"), nullable=False),
    Column("auditor", Text, nullable=False),
    Column("codes_json", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("audit_seq", Integer, nullable=False),
    PrimaryKeyConstraint("task_id", "auditor"),
)

autonomy_grants = Table(
    "autonomy_grants",
    metadata,
    Column("grant_id", Integer, primary_key=True, autoincrement=True),
    Column("case_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("case_type_sha256", Text, nullable=False),
    Column("policy_version", Text, nullable=False),
    Column("policy_sha256", Text, nullable=False),
    Column("granted_by", Text, nullable=False),
    Column("granted_at", Text, nullable=False),
    Column("evidence_json", Text, nullable=False),
    Column("ended_at", Text),
    Column("ended_by", Text),
    Column("end_json", Text),
    Column("audit_seq", Integer, nullable=False),
    CheckConstraint("status IN ('active', 'suspended', 'revoked')", name="autonomy_grants_status"),
    Index("autonomy_grants_case_type", "case_type", "grant_id"),
    sqlite_autoincrement=True,
)


# -- revision 0005: API users (per-user tokens, stored as sha256 digests; roles coder, auditor, admin) -----------

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("role", Text, nullable=False),
    Column("token_sha256", Text, nullable=False, unique=True),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", Text),
    Column("revoked_by", Text),
    CheckConstraint("role IN ('coder', 'auditor', 'admin')", name="users_role"),
    sqlite_autoincrement=True,
)


# -- URL and engine ------------------------------------------------------------------------------------------


def review_database_url(settings: Settings) -> str:
    """The review database's URL: ``settings.database_url``, else ``sqlite:///<data_dir>/review.sqlite``."""
    if settings.database_url:
        return settings.database_url
    path = (settings.data_dir / "review.sqlite").absolute()
    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def _parse_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except (exc.ArgumentError, ValueError) as error:
        raise ConfigError(f"MEDCODE_DATABASE_URL is not a database URL ({error})") from None
    if url.get_backend_name() not in _DIALECTS:
        raise ConfigError(
            f"MEDCODE_DATABASE_URL: the review store supports {' and '.join(_DIALECTS)}, not {url.get_backend_name()!r}"
        )
    return url


def _sqlite_file(url: URL) -> Path | None:
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


@cache
def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
    assert head is not None, "review/migrations has no revision"
    return head


@cache
def _known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory(str(_MIGRATIONS)).walk_revisions())


class ReviewStore:
    """One review database: its engine, its schema (migrated on open) and its transactions.

    ``what`` names the store in messages ("review queue", "audit log"). With ``create=False`` a
    missing SQLite file (and no legacy files to import) raises ``InputError`` instead of creating
    it. Raises ``ConfigError`` for a bad or unsupported URL, ``MissingDependencyError`` when the
    PostgreSQL driver is not installed, and ``StoreError`` when the database cannot be opened, is
    busy beyond the timeout, or has a schema newer than this medcode.
    """

    def __init__(self, settings: Settings, *, create: bool = True, what: str = "review store") -> None:
        self.url = _parse_url(review_database_url(settings))
        self.dialect = self.url.get_backend_name()
        self.path = _sqlite_file(self.url)
        self.what = what
        self.where = str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)
        self._timeout = settings.db_busy_timeout_s
        from medcode.review._legacy import legacy_files

        legacy = legacy_files(settings.data_dir)
        if self.path is not None and not self.path.is_file():
            if not create and not legacy:
                raise InputError(f"no {what} at {self.path} (check --data-dir / MEDCODE_DATA_DIR)")
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # PHI: owner-only from the start
            except OSError as error:
                raise StoreError(f"cannot create the review database {self.path}: {error}") from error
        self.engine = self._engine()
        try:
            self._migrate(create=create, legacy=legacy)
        except BaseException:
            self.engine.dispose()
            raise

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- engine --------------------------------------------------------------------------------

    def _engine(self) -> Engine:
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": self._timeout, "check_same_thread": False}
        try:
            engine = create_engine(self.url, **kwargs)
        except ModuleNotFoundError as error:
            raise MissingDependencyError(
                f"the database driver for {self.url.drivername} is not installed ({error.name}); "
                "for PostgreSQL: pip install 'medcode[postgres]'"
            ) from None
        except exc.ArgumentError as error:
            raise ConfigError(f"MEDCODE_DATABASE_URL cannot be used: {error}") from None
        pid = os.getpid()

        @event.listens_for(engine, "checkout")
        def _same_process(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            if os.getpid() != pid:  # a forked child never reuses its parent's connections
                record.dbapi_connection = proxy.dbapi_connection = None
                raise exc.DisconnectionError("connection belongs to another process")

        if self.dialect == "sqlite":
            timeout_ms = int(self._timeout * 1000)

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
                dbapi_connection.isolation_level = None  # medcode emits BEGIN itself (see _sqlite_begin)
                cursor = dbapi_connection.cursor()
                try:
                    cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                    cursor.execute("PRAGMA journal_mode = WAL")
                    cursor.execute("PRAGMA synchronous = FULL")
                    cursor.execute("PRAGMA foreign_keys = ON")
                    cursor.execute("PRAGMA secure_delete = ON")  # freed pages (cleared note text) are zeroed
                finally:
                    cursor.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                write = conn.get_execution_options().get("medcode_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back on any exception.

        On SQLite it starts with ``BEGIN IMMEDIATE`` (one writer at a time across processes).
        Raises ``StoreError`` when another writer held the lock past the busy timeout or the
        database refused a statement; exceptions raised by the block pass through unchanged.
        """
        with self._transaction(write=True) as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction over one consistent snapshot. Raises ``StoreError`` like ``write``."""
        with self._transaction(write=False) as conn:
            yield conn

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except exc.SQLAlchemyError as error:
            raise StoreError(f"{self.what}: cannot open {self.where} ({_reason(error)})") from error
        try:
            if write:
                conn.execution_options(medcode_write=True)
            elif self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            try:
                transaction = conn.begin()
            except exc.OperationalError as error:
                raise StoreError(
                    f"{self.what} {self.where} is busy (waited {self._timeout:g}s for another writer): {_reason(error)}"
                ) from error
            try:
                yield conn
            except exc.SQLAlchemyError as error:
                transaction.rollback()
                raise StoreError(f"{self.what} {self.where}: {_reason(error)}") from error
            except BaseException:
                transaction.rollback()
                raise
            try:
                transaction.commit()
            except exc.SQLAlchemyError as error:
                raise StoreError(f"{self.what} {self.where}: commit failed ({_reason(error)})") from error
        finally:
            conn.close()

    def lock_audit_head(self, conn: Connection) -> tuple[int, str] | None:
        """Inside a write transaction: the audit head ``(seq, hash)``, locked until commit; None when missing.

        ``SELECT ... FOR UPDATE`` on PostgreSQL serialises every writer that appends to the audit
        log; on SQLite ``BEGIN IMMEDIATE`` already did.
        """
        row = conn.execute(
            select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
        ).first()
        return (int(row[0]), str(row[1])) if row else None

    def checkpoint(self) -> bool:
        """SQLite: move the WAL into the database file and truncate it (``wal_checkpoint(TRUNCATE)``), so deleted
        text no longer sits in the WAL. Returns whether it completed (a reader on an old snapshot can block it);
        a no-op returning True on PostgreSQL. Never raises: failures are logged."""
        if self.dialect != "sqlite":
            return True
        try:
            raw = self.engine.raw_connection()  # no BEGIN: a checkpoint inside a transaction cannot finish
            try:
                cursor = raw.cursor()
                busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                cursor.close()
            finally:
                raw.close()
        except (exc.SQLAlchemyError, sqlite3.Error) as error:
            log.warning("%s: WAL checkpoint failed (%s)", self.what, _reason(error))
            return False
        return busy is None or int(busy[0]) == 0

    def close(self) -> None:
        """Close every pooled connection of this store."""
        self.engine.dispose()

    # -- schema ----------------------------------------------------------------------------------

    def _migrate(self, *, create: bool, legacy: list[Path]) -> None:
        from medcode.review._legacy import import_legacy, rename_imported

        head = _head_revision()
        imported: dict[str, Any] | None = None
        try:
            if not legacy:  # the common case: an up-to-date store, checked without taking the write lock
                with self.read() as conn:
                    if self.revision(conn) == head:
                        return
            with self.write() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
                current = self.revision(conn)
                if current is not None and current not in _known_revisions():
                    raise StoreError(
                        f"{self.what} {self.where} has schema revision {current}, newer than this medcode "
                        f"(it knows up to {head}); upgrade medcode to open it"
                    )
                if current is None and not create and not legacy:
                    raise InputError(f"no {self.what} in {self.where} (check MEDCODE_DATABASE_URL)")
                if current != head:
                    self._upgrade(conn)
                    if current is None:
                        log.info("created the review database %s (schema %s)", self.where, head)
                    else:
                        log.info("migrated the review database %s from schema %s to %s", self.where, current, head)
                if legacy:
                    imported = import_legacy(self, conn, legacy)
        except exc.SQLAlchemyError as error:  # outside a transaction block (connect, pragmas)
            raise StoreError(f"{self.what}: {self.where} is not a usable database ({_reason(error)})") from error
        if legacy:
            rename_imported(legacy, imported, self.where)

    @staticmethod
    def revision(conn: Connection) -> str | None:
        """The schema revision stamped in the database (Alembic's table), None for an empty one."""
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def _upgrade(self, conn: Connection) -> None:
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def _reason(error: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump (which may hold note text)."""
    original = getattr(error, "orig", None)
    return str(original if original is not None else error).splitlines()[0][:300]
