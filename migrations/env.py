"""Alembic environment: the warehouse schema in the database named by DATABASE_URL.

Programmatic callers (the Dagster migrations resource, tests) pass ``database_url`` and ``schema`` in
``config.attributes``; the command line reads ``DATABASE_URL`` and ``WAREHOUSE_SCHEMA``.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from llama_pipeline.db_url import sqlalchemy_url
from llama_pipeline.schema import ALEMBIC_VERSION_TABLE, metadata
from llama_pipeline.write.warehouse_lock import MIGRATION_LOCK_KEY, quote_ident

config = context.config

database_url = config.attributes.get("database_url") or os.environ.get("DATABASE_URL")
if not database_url:
    raise SystemExit("DATABASE_URL is not set: it names the warehouse database, e.g. postgresql://user@host/db")
schema = config.attributes.get("schema") or os.environ.get("WAREHOUSE_SCHEMA") or "public"


def run_migrations_online() -> None:
    engine = sa.create_engine(sqlalchemy_url(database_url), poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        with connection.begin():
            # Several processes (runs, the migrate service, a user) may start at once: the first takes
            # the lock and migrates, the others wait and then find the database at head.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"))
            # Revisions create unqualified names, so one history serves any configured schema.
            connection.execute(sa.text(f"SET LOCAL search_path TO {quote_ident(schema)}"))
            context.configure(
                connection=connection,
                target_metadata=metadata,
                version_table=ALEMBIC_VERSION_TABLE,
                version_table_schema=schema,
                transactional_ddl=True,
            )
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) mode is not supported: run against a database.")
run_migrations_online()
