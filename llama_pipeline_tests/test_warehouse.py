"""The warehouse resource's connections: reused within a run, reset between blocks, never across runs."""

from __future__ import annotations

import contextlib
import time

import dagster as dg
import psycopg2
import pytest

from llama_pipeline.defs.resources import warehouse_resources
from llama_pipeline.write.warehouse import Warehouse


def _backend(warehouse: Warehouse) -> int:
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def _alive(database_url: str, pid: int) -> bool:
    with contextlib.closing(psycopg2.connect(database_url)) as admin, admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return cur.fetchone()[0] > 0


@pytest.fixture
def in_a_run(warehouse: Warehouse):
    warehouse.setup_for_execution(dg.build_init_resource_context())
    yield warehouse
    warehouse.teardown_after_execution(dg.build_init_resource_context())


def test_a_run_reuses_a_connection_and_each_block_starts_clean(in_a_run, schema_name):
    with in_a_run.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        first = cur.fetchone()[0]
        cur.execute("CREATE TEMP TABLE _left_behind (x int)")  # session state a later block must not see
        cur.execute("SET statement_timeout = 1234")
        cur.execute("SELECT pg_advisory_lock(42)")
    with in_a_run.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid(), to_regclass('pg_temp._left_behind'), "
                    "current_setting('statement_timeout')")
        assert cur.fetchone() == (first, None, "0")
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cur.fetchone()[0] == 0


def test_a_failed_block_is_rolled_back_and_the_next_one_works(in_a_run, schema_name, query):
    with pytest.raises(psycopg2.errors.DivisionByZero):
        with in_a_run.connection() as conn, conn.cursor() as cur:
            cur.execute(f'CREATE TABLE "{schema_name}".half_done (x int)')
            cur.execute("SELECT 1 / 0")
    assert query("SELECT to_regclass(%s)", (f'"{schema_name}".half_done',)) == [(None,)]
    assert query("SELECT 1") == [(1,)]
    with in_a_run.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)


def test_a_connection_the_server_dropped_is_not_handed_out(in_a_run, database_url):
    dropped = _backend(in_a_run)
    with contextlib.closing(psycopg2.connect(database_url)) as admin, admin, admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (dropped,))
    assert _backend(in_a_run) != dropped


def test_outside_a_run_and_after_it_nothing_is_kept(warehouse, database_url):
    assert _backend(warehouse) != _backend(warehouse)  # sensors, scripts: a connection per block
    warehouse.setup_for_execution(dg.build_init_resource_context())
    kept = _backend(warehouse)
    warehouse.teardown_after_execution(dg.build_init_resource_context())
    deadline = time.monotonic() + 30  # the backend exits shortly after the client closes
    while _alive(database_url, kept) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(database_url, kept)
    assert _backend(warehouse) != kept


def test_a_runs_io_manager_is_handed_the_runs_own_warehouse(database_url, schema_name):
    # As the code location wires them: one set-up per run (one migration check) and one pool of
    # connections for the assets and the IO manager, not a second copy set up inside the IO manager.
    with dg.build_resources(warehouse_resources(database_url, schema_name)) as resources:
        assert resources.warehouse_io_manager.warehouse is resources.warehouse
        assert _backend(resources.warehouse_io_manager.warehouse) == _backend(resources.warehouse)
    with contextlib.closing(psycopg2.connect(database_url)) as admin, admin, admin.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema_name}".llama_alembic_version',))
        assert cur.fetchone() == (True,)  # the set-up migrated the fresh schema
