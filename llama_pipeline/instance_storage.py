"""Dagster's own PostgreSQL storage (runs, events, schedules), reusing one connection per process.

dagster-postgres opens a new connection for every read and write outside the webserver (SQLAlchemy's
``NullPool``, so that no ``DagsterInstance`` holds connections). A run worker is one process with one
instance for the run's lifetime, and a one-day run stores ~280 events and reads the instance for every
check: ~750 new connections per run, each a new PostgreSQL backend process plus authentication, which
was 1.5-3 s of a 15 s run from the UI on this machine (BENCHMARKS.md, "A one-day run launched from the
UI"). Here each of the three storages keeps one idle connection and hands it out again; every other
behaviour is dagster-postgres's own, as configured under ``storage: custom:`` in dagster.yaml (same
``config`` as ``storage: postgres:``).

What keeps this safe where NullPool was: a checked-out connection is pinged first (``pool_pre_ping``),
so a connection the server dropped (restart, idle timeout) is replaced instead of failing a write; no
connection is kept longer than ``POOL_RECYCLE_SECONDS``; concurrent users of one instance (the daemon's
threads) get extra connections as before (no overflow limit, so nothing waits on the pool), closed when
given back. The webserver still replaces these engines with its own (``optimize_for_webserver``).
"""

from __future__ import annotations

from typing import Any

from dagster._core.storage.config import PostgresStorageConfig, pg_config
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

POOL_SIZE = 1  # one process, one run: its reads and writes are sequential
POOL_RECYCLE_SECONDS = 600  # the daemon lives for days; a run worker for seconds to minutes


class PooledPostgresStorage(DagsterPostgresStorage):
    """``DagsterPostgresStorage`` whose run, event log and schedule storages keep one connection open."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True,
                 inst_data: ConfigurableClassData | None = None, token_provider: Any = None):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            # The engines are dagster-postgres's own attribute (optimize_for_webserver swaps them the
            # same way); the NullPool engines they replace hold no connection.
            storage._engine.dispose()
            storage._engine = create_pg_engine(
                postgres_url, token_provider, isolation_level="AUTOCOMMIT", pool_size=POOL_SIZE,
                max_overflow=-1, pool_recycle=POOL_RECYCLE_SECONDS, pool_pre_ping=True,
            )

    @classmethod
    def config_type(cls):
        return pg_config()

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: PostgresStorageConfig
    ) -> PooledPostgresStorage:
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
