"""COPY text rendered ahead on a second thread is the same text, fails the same way, and is written in
order; the warehouse step's tables read back the same through it (test_pipeline, test_warehouse_days)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading

import dagster as dg
import pandas as pd
import psycopg2
import pytest
import sqlalchemy as sa

from llama_pipeline import schema
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline.partitions import DAILY
from llama_pipeline.write.batches import DailyBatch
from llama_pipeline.write.copy_ahead import CopyAhead, RenderedCopy
from llama_pipeline.write.dimension_merge import FoldedDays
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline.write.pg_copy import copy_buffer
from llama_pipeline.write.spooled_rows import SpooledDays
from llama_pipeline.write.table_write import UPSERT, table_metadata
from llama_pipeline_tests.testing import synthetic

DAY = dt.date(2026, 9, 1)


def _day(day: dt.date, pools: int = 3_000, seed: int = 5):
    """A day's decoded /pools (pools and snapshots rows), as the warehouse step gets it."""
    protocols = synthetic.generate_protocols(60, seed=seed)
    payload = synthetic.generate_pools(pools, seed=seed, protocols=protocols, day=day)
    return parse_pools(json.dumps(payload).encode(), day)


def test_text_rendered_ahead_is_the_text_rendered_in_line() -> None:
    parsed = _day(DAY)
    with CopyAhead() as ahead:
        for frame, table in ((parsed.pools, schema.pools), (parsed.snapshots, schema.pool_snapshots)):
            columns = list(table.columns)
            assert len(frame) == 3_000
            rendered = RenderedCopy(ahead.render(frame, columns))
            assert rendered.read() == copy_buffer(frame, columns).getvalue()
            rendered.close()


def test_a_range_spooled_ahead_is_the_range_spooled_in_line() -> None:
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    batches = [DailyBatch(day, _day(day, pools=500 + 200 * i, seed=i).snapshots) for i, day in enumerate(days)]
    in_line = SpooledDays(schema.pool_snapshots)
    with CopyAhead() as ahead:
        spooled = SpooledDays(schema.pool_snapshots, ahead)
        for batch in batches:
            in_line.add(batch)
            spooled.add(batch)
        ahead_text = spooled.rows().read()  # the last day is rendered when first read
    assert ahead_text == in_line.rows().read()
    assert ahead_text.count(b"\n") == 500 + 700 + 900
    assert [d.row_count for d in spooled.days] == [500, 700, 900]
    with pytest.raises(ValueError, match="added after"):
        spooled.add(batches[0])
    spooled.close()
    in_line.close()


def test_tables_are_rendered_in_the_order_they_are_asked_for() -> None:
    big = _day(DAY, pools=6_000).snapshots
    small = big.head(10)
    finished: list[str] = []
    with CopyAhead() as ahead:
        first = ahead.render(big, schema.pool_snapshots.columns)
        second = ahead.render(small, schema.pool_snapshots.columns)
        first.add_done_callback(lambda _: finished.append("big"))
        second.add_done_callback(lambda _: finished.append("small"))
        second.result()
    assert finished == ["big", "small"]  # the table written next is never behind one written later
    assert not [t for t in threading.enumerate() if t.name.startswith("copy-ahead")]  # the thread is gone


def test_a_closed_text_closes_its_file_when_rendering_ends() -> None:
    frame = _day(DAY).snapshots
    with CopyAhead() as ahead:
        future = ahead.render(frame, schema.pool_snapshots.columns)
        RenderedCopy(future).close()  # as when the write failed before reading it
        assert future.result().closed


def test_a_value_copy_cannot_take_fails_the_copy_as_before(database_url: str) -> None:
    frame = pd.DataFrame({"n": pd.Series([1.0, float("inf")], dtype="float64")})
    column = sa.Column("n", sa.BigInteger)
    with CopyAhead() as ahead:
        rendered = RenderedCopy(ahead.render(frame, [column]))
        with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE copied (n bigint)")
            with pytest.raises(psycopg2.Error, match="OverflowError"):
                cur.copy_expert("COPY copied (n) FROM STDIN", rendered)
            conn.rollback()


def test_a_dimension_rendered_ahead_that_fails_rolls_back_and_names_the_table(warehouse, query) -> None:
    bad = pd.DataFrame([{"name": "Ethereum", "aliases": ["Ethereum"], "gecko_id": None, "token_symbol": None,
                         "cmc_id": None, "chain_id": float("inf"), "first_seen_date": DAY, "last_seen_date": DAY}])
    bad = bad.reindex(columns=[c.name for c in schema.chains.columns])  # chain_id is a BIGINT: inf cannot be one

    @dg.asset(name="chains", partitions_def=DAILY, io_manager_key="warehouse_io_manager",
              metadata=table_metadata(schema.chains, UPSERT))
    def chains() -> FoldedDays:
        folded = FoldedDays(schema.chains)
        folded.add(DailyBatch(DAY, bad))
        with CopyAhead() as ahead:  # rendered (and failed) before the IO manager reads it
            folded.render_ahead(ahead)
        return folded

    with pytest.raises(Exception, match=r"writing t_\w+\.chains failed and was rolled back"):
        dg.materialize([chains], resources={"warehouse_io_manager": WarehouseIOManager(warehouse=warehouse)},
                       partition_key=DAY.isoformat())
    assert query("SELECT count(*) FROM chains") == [(0,)]
