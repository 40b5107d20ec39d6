"""Dagster's instance storage as dagster.yaml configures it: one reused connection per process, replaced
when the server drops it, and every event stored as before."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from llama_pipeline.db_url import libpq_url
from llama_pipeline.instance_storage import PooledPostgresStorage
from llama_pipeline_tests.ui_server import DEFAULT_COORDINATOR, dagster_database, instance_yaml


@dg.asset
def small() -> int:
    """An asset with nothing to do: its run is Dagster's own events only."""
    return 1


@pytest.fixture
def instance(server_url: str, tmp_path: Path) -> Iterator[tuple[dg.DagsterInstance, str]]:
    with dagster_database(server_url) as dagster_pg_url:
        (tmp_path / "dagster.yaml").write_text(instance_yaml(dagster_pg_url, tmp_path / "storage", DEFAULT_COORDINATOR))
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            yield instance, dagster_pg_url.rsplit("/", 1)[1]


def _backends(server_url: str, database: str) -> set[tuple[int, object]]:
    """The server's connections to the instance's database (this process's storages: nothing else uses it)."""
    with contextlib.closing(psycopg2.connect(libpq_url(server_url))) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid, backend_start FROM pg_stat_activity WHERE datname = %s", (database,))
        return set(cur.fetchall())


def test_the_repository_storage_is_the_pooled_postgres_storage(instance):
    dagster_instance, _ = instance
    assert isinstance(dagster_instance.get_ref().storage, PooledPostgresStorage)


def test_runs_reuse_the_storages_connections_and_store_every_event(instance, server_url):
    dagster_instance, database = instance
    first = dg.materialize([small], instance=dagster_instance)
    kept = _backends(server_url, database)
    second = dg.materialize([small], instance=dagster_instance)
    after = _backends(server_url, database)
    # NullPool (dagster-postgres's default outside the webserver) would leave no connection open and
    # open one per query (dozens for this run). Here a run reuses what the last one left, bar one: once
    # a run, the event storage uses two connections at once and keeps the one given back last.
    assert kept, "no connection kept between runs"
    assert len(kept & after) >= len(kept) - 1 and len(after - kept) <= 1, (kept, after)
    assert len(after) <= 3  # one per storage: runs, events, schedules
    for result in (first, second):
        assert result.success
        kinds = [entry.dagster_event.event_type for entry in dagster_instance.all_logs(result.run_id)
                 if entry.dagster_event]
        assert kinds.count(dg.DagsterEventType.ASSET_MATERIALIZATION) == 1
        assert kinds[-1] == dg.DagsterEventType.RUN_SUCCESS
    assert dagster_instance.get_latest_materialization_event(small.key).run_id == second.run_id


def test_a_connection_the_server_dropped_is_replaced(instance, server_url):
    dagster_instance, database = instance
    dg.materialize([small], instance=dagster_instance)
    kept = _backends(server_url, database)
    with contextlib.closing(psycopg2.connect(libpq_url(server_url))) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    result = dg.materialize([small], instance=dagster_instance)
    assert result.success
    assert dagster_instance.get_latest_materialization_event(small.key).run_id == result.run_id
    assert not kept & _backends(server_url, database)
