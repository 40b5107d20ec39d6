"""The warehouse database: connections, and the Alembic upgrade that runs when a run starts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import psycopg2.extensions
from pydantic import Field

from llama_pipeline.db_url import libpq_url, redacted, scrub

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


class WarehouseError(RuntimeError):
    """A database failure, with any password scrubbed from the driver's message."""


def migrate_to_head(database_url: str, schema: str) -> None:
    """``alembic upgrade head`` for this schema; a no-op at head and safe to run from many processes at
    once (``migrations/env.py`` serializes them on an advisory lock)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
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
        if self.migrate_on_start:
            try:
                migrate_to_head(self.database_url, self.schema_name)
            except Exception as error:
                raise WarehouseError(
                    f"could not migrate {redacted(self.database_url)} (schema {self.schema_name}): "
                    f"{scrub(str(error), self.database_url)}"
                ) from None

    @property
    def display_url(self) -> str:
        return redacted(self.database_url)

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A connection in one transaction: committed when the block ends, rolled back on any error."""
        try:
            conn = psycopg2.connect(
                libpq_url(self.database_url),
                connect_timeout=self.connect_timeout,
                application_name="llama_pipeline",
            )
        except psycopg2.Error as error:
            raise WarehouseError(
                f"cannot connect to {self.display_url}: {scrub(str(error), self.database_url).strip()}"
            ) from None
        try:
            with conn:  # commits on success, rolls back on an exception
                yield conn
        finally:
            conn.close()
