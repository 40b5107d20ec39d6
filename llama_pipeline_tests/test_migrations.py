"""Alembic owns the schema: up, down and up again with data in place, from code and from the CLI."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from llama_pipeline import schema
from llama_pipeline.db_url import sqlalchemy_url
from llama_pipeline.write.warehouse import migrate_to_head
from llama_pipeline.write.warehouse_lock import MIGRATION_LOCK_KEY
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.conftest import archive_payloads, materialize, warehouse_assets

ROOT = Path(__file__).resolve().parents[1]


def alembic(database_url: str, schema_name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name}
    result = subprocess.run([sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def tables(database_url: str, schema_name: str) -> set[str]:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema_name,))
        return {row[0] for row in cur.fetchall()}


def test_migrations_match_the_schema_module(warehouse):
    engine = sa.create_engine(sqlalchemy_url(warehouse.database_url))
    with engine.connect() as conn:
        conn.execute(sa.text(f'SET search_path TO "{warehouse.schema_name}"'))
        context = MigrationContext.configure(conn, opts={"version_table": schema.ALEMBIC_VERSION_TABLE})
        diff = [d for d in compare_metadata(context, schema.metadata)
                if not (d[0] == "remove_table" and d[1].name == schema.ALEMBIC_VERSION_TABLE)]
    engine.dispose()
    assert diff == []


def test_cli_up_down_up_with_data_in_place(resources, warehouse, database_url, schema_name, query):
    protocols = synthetic.generate_protocols(50, seed=11)
    payload = synthetic.generate_pools(80, seed=11, protocols=protocols)
    day = dt.date(2026, 11, 5)
    archive_payloads(warehouse, day, payload, protocols)
    assert materialize(warehouse_assets(), resources, day).success

    # Version table of our own: Dagster's storage uses "alembic_version" in its database.
    assert "llama_alembic_version" in tables(database_url, schema_name)
    assert "alembic_version" not in tables(database_url, schema_name)
    assert "(head)" in alembic(database_url, schema_name, "current").stdout

    alembic(database_url, schema_name, "upgrade", "head")  # a no-op at head
    assert query("SELECT count(*) FROM pool_snapshots") == [(80,)]

    # The newest revision steps down and up again with the core tables' data in place.
    alembic(database_url, schema_name, "downgrade", "-1")
    assert query("SELECT count(*) FROM pool_snapshots") == [(80,)]
    alembic(database_url, schema_name, "upgrade", "head")
    assert query("SELECT count(*) FROM pool_snapshots") == [(80,)]
    # Every revision steps down to an empty schema.
    heads = alembic(database_url, schema_name, "history").stdout.count("->")
    for _ in range(heads):
        alembic(database_url, schema_name, "downgrade", "-1")
    assert tables(database_url, schema_name) == {"llama_alembic_version"}
    alembic(database_url, schema_name, "upgrade", "head")
    alembic(database_url, schema_name, "downgrade", "base")
    assert "pools" not in tables(database_url, schema_name)
    alembic(database_url, schema_name, "upgrade", "head")
    assert {"raw_payloads", "chains", "projects", "pools", "pool_snapshots", "rejects"} <= tables(
        database_url, schema_name)
    # And the pipeline works again on the rebuilt schema.
    archive_payloads(warehouse, day, payload, protocols)
    assert materialize(warehouse_assets(), resources, day).success
    assert query("SELECT count(*) FROM pool_snapshots") == [(80,)]


def test_concurrent_upgrades_end_at_head_once(database_url, schema_name):
    # Separate processes, as separate runs would be (Alembic's context is process-global).
    env = {**os.environ, "DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name}
    processes = [subprocess.Popen([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT version_num FROM "{schema_name}".llama_alembic_version')
        versions = cur.fetchall()
    assert len(versions) == 1 and "(head)" in alembic(database_url, schema_name, "current").stdout


def test_0008_keys_chart_points_by_pool_and_indexes_rejects_by_key_and_steps_down(warehouse, database_url,
                                                                                 schema_name, query):
    def indexes() -> dict[tuple[str, str], str]:
        rows = query("SELECT tablename::text, indexname::text, indexdef FROM pg_indexes WHERE schemaname = %s",
                     (schema_name,))
        return {(table, name): definition.split(" USING ")[1] for table, name, definition in rows}

    def points() -> list[tuple]:
        return query("SELECT pool_id::text, snapshot_date FROM pool_chart_points ORDER BY 1, 2")

    query("INSERT INTO pool_chart_points (pool_id, snapshot_date, tvl_usd) VALUES "
          "('00000000-0000-0000-0000-000000000001', '2026-11-01', 1), "
          "('00000000-0000-0000-0000-000000000001', '2026-11-02', 2)")
    at_head = indexes()
    assert at_head[("pool_chart_points", "pool_chart_points_pkey")] == "btree (pool_id, snapshot_date)"
    assert at_head[("pool_chart_points", "ix_pool_chart_points_snapshot_date")] == "btree (snapshot_date)"
    assert at_head[("rejects", "ix_rejects_asset_record_key")] == "btree (asset, record_key)"
    before = points()

    alembic(database_url, schema_name, "downgrade", "0007")
    at_0007 = indexes()
    assert at_0007[("pool_chart_points", "pool_chart_points_pkey")] == "btree (snapshot_date, pool_id)"
    assert set(at_head) - set(at_0007) == {("pool_chart_points", "ix_pool_chart_points_snapshot_date"),
                                           ("rejects", "ix_rejects_asset_record_key")}
    assert points() == before
    alembic(database_url, schema_name, "upgrade", "head")
    assert indexes() == at_head and points() == before


def test_0009_leaves_the_one_row_per_pool_analytics_tables_their_primary_key_and_steps_down(database_url,
                                                                                           schema_name, query):
    def indexes() -> dict[str, set[str]]:
        rows = query("SELECT tablename::text, indexname::text FROM pg_indexes WHERE schemaname = %s "
                     "AND tablename IN ('pool_latest', 'pool_apy_stats')", (schema_name,))
        return {table: {name for t, name in rows if t == table} for table in ("pool_latest", "pool_apy_stats")}

    query("INSERT INTO pool_apy_stats (pool_id, chain, project, as_of_date, apy_days_7d, apy_days_30d) VALUES "
          "('00000000-0000-0000-0000-000000000001', 'Ethereum', 'aave', '2026-11-01', 1, 1)")
    assert indexes() == {"pool_latest": {"pool_latest_pkey"}, "pool_apy_stats": {"pool_apy_stats_pkey"}}
    alembic(database_url, schema_name, "downgrade", "0008")
    assert indexes() == {"pool_latest": {"pool_latest_pkey", "ix_pool_latest_chain", "ix_pool_latest_project"},
                         "pool_apy_stats": {"pool_apy_stats_pkey", "ix_pool_apy_stats_chain",
                                            "ix_pool_apy_stats_project"}}
    alembic(database_url, schema_name, "upgrade", "head")
    assert indexes() == {"pool_latest": {"pool_latest_pkey"}, "pool_apy_stats": {"pool_apy_stats_pkey"}}
    assert query("SELECT pool_id::text, chain FROM pool_apy_stats") == [
        ("00000000-0000-0000-0000-000000000001", "Ethereum")]


# --- the check every run starts with (Warehouse.setup_for_execution) ----------------------------


def _versions(database_url: str, schema_name: str) -> list[str]:
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT version_num FROM "{schema_name}".llama_alembic_version')
        return [row[0] for row in cur.fetchall()]


def test_a_schema_at_head_is_checked_without_alembic_or_its_lock(database_url, schema_name):
    """At head, a run's start reads the version table and goes on: it does not queue behind a migration
    that holds the lock (Alembic's path would wait for it)."""
    migrate_to_head(database_url, schema_name)
    holder = psycopg2.connect(database_url)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        checked = threading.Thread(target=migrate_to_head, args=(database_url, schema_name), daemon=True)
        checked.start()
        checked.join(timeout=60)
        assert not checked.is_alive(), "the at-head check waited for the migration lock"
    finally:
        holder.close()  # releases the lock (and a check stuck behind it)


def test_a_schema_behind_head_or_missing_is_migrated_at_run_start(database_url, schema_name):
    migrate_to_head(database_url, schema_name)
    alembic(database_url, schema_name, "downgrade", "-1")
    behind = _versions(database_url, schema_name)
    migrate_to_head(database_url, schema_name)
    assert behind != _versions(database_url, schema_name)
    assert "(head)" in alembic(database_url, schema_name, "current").stdout
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f'DROP TABLE "{schema_name}".llama_alembic_version')  # the tables stay: Alembic must say so
    with pytest.raises(sa.exc.ProgrammingError, match="already exists"):
        migrate_to_head(database_url, schema_name)


def test_a_revision_this_code_does_not_know_fails_the_run_start(database_url, schema_name):
    migrate_to_head(database_url, schema_name)
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE \"{schema_name}\".llama_alembic_version SET version_num = 'f00d'")
    with pytest.raises(Exception, match="f00d"):
        migrate_to_head(database_url, schema_name)
