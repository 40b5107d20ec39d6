"""The warehouse database: connections, and the Alembic upgrade that runs when a run starts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.sql
from pydantic import Field

from llama_pipeline.db_url import libpq_url, redacted, scrub, scrubbed
from llama_pipeline.schema import ALEMBIC_VERSION_TABLE

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


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


def _stored_revisions(database_url: str, schema: str) -> set[str]:
    """The revisions recorded in the schema's version table (none when it or the schema is missing)."""
    query = psycopg2.sql.SQL("SELECT version_num FROM {}.{}").format(
        psycopg2.sql.Identifier(schema), psycopg2.sql.Identifier(ALEMBIC_VERSION_TABLE))
    conn = psycopg2.connect(libpq_url(database_url), connect_timeout=10, application_name="llama_pipeline")
    try:
        with conn, conn.cursor() as cur:
            try:
                cur.execute(query)
            except (psycopg2.errors.UndefinedTable, psycopg2.errors.InvalidSchemaName):
                return set()
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def migrate_to_head(database_url: str, schema: str) -> None:
    """``alembic upgrade head`` for this schema; safe to run from many processes at once
    (``migrations/env.py`` serializes them on an advisory lock).

    Every run starts with this, so a schema already at head costs one query: Alembic's heads are read
    from the migration scripts (Alembic is already imported in a run worker, by dagster-postgres) and
    compared with the version table. Anything else (behind, empty, or a revision this code does not
    know) goes through ``alembic upgrade`` and its lock, which migrates or fails as before."""
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _alembic_config(database_url, schema)
    heads = set(ScriptDirectory.from_config(config).get_heads())
    if _stored_revisions(database_url, schema) == heads:
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

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if not self.migrate_on_start:
            return
        failure = None
        try:
            migrate_to_head(self.database_url, self.schema_name)
        except Exception as error:
            failure = WarehouseError.of(f"could not migrate {redacted(self.database_url)} "
                                        f"(schema {self.schema_name})", error, self.database_url)
        if failure is not None:
            raise failure

    @property
    def display_url(self) -> str:
        return redacted(self.database_url)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in one transaction: committed when the block ends, rolled back on any error."""
        conn, failure = None, None
        try:
            conn = psycopg2.connect(
                libpq_url(self.database_url),
                connect_timeout=self.connect_timeout,
                application_name="llama_pipeline",
            )
        except psycopg2.Error as error:
            failure = WarehouseError.of(f"cannot connect to {self.display_url}", error, self.database_url)
        if failure is not None:
            raise failure
        try:
            with conn:  # commits on success, rolls back on an exception
                yield conn
        finally:
            conn.close()
