"""The warehouse database: connections, and the Alembic upgrade that runs when a run starts."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.sql
from pydantic import Field, PrivateAttr

from llama_pipeline.db_url import libpq_url, redacted, scrub, scrubbed
from llama_pipeline.schema import ALEMBIC_VERSION_TABLE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
MAX_IDLE_CONNECTIONS = 2  # steps run one after another; a step may hold two blocks at once


class WarehouseError(RuntimeError):
    """A database failure, with any password scrubbed from the driver's message.

    Its cause is a scrubbed copy of the driver's exception chain (``db_url.scrubbed``), raised outside
    the ``except`` block so that the original, unscrubbed exception is not kept as its context.
    """

    @classmethod
    def of(cls, message: str, error: BaseException, url: str) -> WarehouseError:
        failure = cls(f"{message}: {scrub(str(error), url).strip()}")
        failure.__cause__ = scrubbed(error, url)
        return failure


def _alembic_config(database_url: str, schema: str):
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


def _stored_revisions(conn: psycopg2.extensions.connection, schema: str) -> set[str]:
    """The revisions recorded in the schema's version table (none when it or the schema is missing).
    Leaves ``conn`` with no transaction open."""
    query = psycopg2.sql.SQL("SELECT version_num FROM {}.{}").format(
        psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(ALEMBIC_VERSION_TABLE))
    with conn.cursor() as cur:
        try:
            cur.execute(query)
        except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
            conn.rollback()
            return set()
        revisions = {row[0] for row in cur.fetchall()}
    conn.rollback()  # a read only: nothing to commit
    return revisions


def migrate_to_head(database_url: str, schema: str,
                    conn: psycopg2.extensions.connection | None = None) -> None:
    """``alembic upgrade head`` for this schema; safe to run from many processes at once
    (``migrations/env.py`` serializes them on an advisory lock).

    Every run starts with this, so a schema already at head costs one query: Alembic's heads are read
    from the migration scripts (Alembic is already imported in a run worker, by dagster-postgres) and
    compared with the version table, on ``conn`` when given (the run's first pooled connection, left
    with no transaction open) or on a connection of its own. Anything else (behind, empty, or a
    revision this code does not know) goes through ``alembic upgrade`` and its lock, which migrates or
    fails as before."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(database_url, schema)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    if conn is not None:
        stored = _stored_revisions(conn, schema)
    else:
        with contextlib.closing(psycopg2.connect(libpq_url(database_url), connect_timeout=10,
                                                 application_name="llama_pipeline")) as own:
            stored = _stored_revisions(own, schema)
    if stored == heads:
        return
    command.upgrade(config, "head")


class Warehouse(dg.ConfigurableResource):
    """The PostgreSQL database that holds the warehouse tables.

    ``database_url`` comes from ``DATABASE_URL`` through ``dg.EnvVar``, so Dagster shows the variable's
    name, never its value. When a run starts, the resource brings the schema to Alembic's head.
    """

    database_url: str = Field(description="libpq URL of the warehouse database (from DATABASE_URL).")
    schema_name: str = Field(default="public", description="PostgreSQL schema of the warehouse tables.")
    migrate_on_start: bool = Field(default=True, description="Run `alembic upgrade head` when a run starts.")
    connect_timeout: int = Field(default=10, description="Seconds to wait for a connection.")

    # During a run, connections given back are handed out again (a one-day run asks for ~70, and a new
    # connection costs a backend process and authentication, 3-9 ms here); outside a run (sensors,
    # scripts) every block has its own. Set up per run, never shared between runs or resources.
    _idle: list[psycopg2.extensions.connection] | None = PrivateAttr(default=None)
    _idle_lock: threading.Lock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._idle, self._idle_lock = [], threading.Lock()
        if not self.migrate_on_start:
            return
        failure = None
        try:
            conn = self._connect()
            try:  # the check's connection then serves the run's first block
                migrate_to_head(self.database_url, self.schema_name, conn)
            finally:
                self._give_back(conn)
        except Exception as error:
            failure = WarehouseError.of(f"could not migrate {redacted(self.database_url)} "
                                        f"(schema {self.schema_name})", error, self.database_url)
        if failure is not None:
            raise failure

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        idle, self._idle = self._idle or [], None
        for conn in idle:
            conn.close()

    @property
    def display_url(self) -> str:
        return redacted(self.database_url)

    def _reused(self) -> psycopg2.extensions.connection | None:
        """An idle connection of this run, reset as a connection pooler resets one: ``DISCARD ALL``
        drops temporary tables, session settings and session locks, so a block never sees what an
        earlier one left (and a connection the server dropped is closed here, not handed out)."""
        while self._idle:
            with self._idle_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return None
            try:
                conn.autocommit = True  # DISCARD ALL cannot run inside a transaction
                with conn.cursor() as cur:
                    cur.execute("DISCARD ALL")
                conn.autocommit = False
                return conn
            except psycopg2.Error:
                conn.close()
        return None

    def _connect(self) -> psycopg2.extensions.connection:
        failure = None
        try:
            return psycopg2.connect(libpq_url(self.database_url), connect_timeout=self.connect_timeout,
                                    application_name="llama_pipeline")
        except psycopg2.Error as error:
            failure = WarehouseError.of(f"cannot connect to {self.display_url}", error, self.database_url)
        raise failure

    def _give_back(self, conn: psycopg2.extensions.connection) -> None:
        idle = self._idle
        if (idle is not None and not conn.closed
                and conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE):
            with self._idle_lock:
                if len(idle) < MAX_IDLE_CONNECTIONS:
                    idle.append(conn)
                    return
        conn.close()

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in one transaction: committed when the block ends, rolled back on any error."""
        conn = self._reused() or self._connect()
        try:
            with conn:  # commits on success, rolls back on an exception
                yield conn
        finally:
            self._give_back(conn)
