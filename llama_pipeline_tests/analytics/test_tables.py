"""The analytics SQL's own settings stay inside it (real PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import pytest

from llama_pipeline.analytics import tables
from llama_pipeline.write.warehouse import Warehouse


@pytest.mark.parametrize("session", ["on", "off"])
@pytest.mark.parametrize("table", ["chain_daily_stats", "project_daily_stats"])
def test_the_daily_stats_put_the_join_setting_back_as_the_transaction_had_it(warehouse: Warehouse, table, session):
    """The daily stats are planned without nested loops (``tables._hash_joins``); what the caller's
    transaction runs next is planned as before."""
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT set_config('enable_nestloop', %s, false)", (session,))
        day = dt.date(2026, 11, 5)
        assert tables.refresh_daily_stats(cur, warehouse.schema_name, table, day, day) == 0
        cur.execute("SELECT current_setting('enable_nestloop')")
        assert cur.fetchone() == (session,)
        conn.rollback()
