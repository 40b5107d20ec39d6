"""The IO manager writes a day in one transaction: a failure part-way leaves every table as it was."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from llama_pipeline import schema
from llama_pipeline.partitions import DAILY
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline.write.table_write import REPLACE_PARTITION, UPSERT, table_metadata
from llama_pipeline_tests.testing import synthetic
from llama_pipeline.decode.protocols import CHAIN_COLUMNS
from llama_pipeline.write.batches import DailyBatch
from llama_pipeline_tests.conftest import archive_payloads, materialize, warehouse_assets
from llama_pipeline_tests.defs.test_pipeline import snapshot_of


def chain_frame(day: dt.date, *names: str) -> pd.DataFrame:
    return pd.DataFrame([(n, [n], day, day) for n in names], columns=CHAIN_COLUMNS)


def test_failure_mid_range_rolls_back_every_day(resources, warehouse, query):
    protocols = synthetic.generate_protocols(40, seed=2)
    payload = synthetic.generate_pools(60, seed=2, protocols=protocols)
    days = [dt.date(2026, 9, 1), dt.date(2026, 9, 2), dt.date(2026, 9, 3)]
    for day in days:
        archive_payloads(warehouse, day, payload, protocols)
    assert materialize(warehouse_assets(), resources, partition_range=(days[0], days[-1])).success
    before = snapshot_of(query)

    @dg.asset(name="pool_snapshots", partitions_def=DAILY, io_manager_key="warehouse_io_manager",
              metadata=table_metadata(schema.pool_snapshots, REPLACE_PARTITION, partition_expr="snapshot_date"),
              backfill_policy=dg.BackfillPolicy.single_run())
    def failing_snapshots(context) -> dg.MaterializeResult:
        rows = pd.DataFrame(query("SELECT * FROM pool_snapshots WHERE snapshot_date = %s", (days[0],)),
                            columns=[c.name for c in schema.pool_snapshots.columns])

        batches = [DailyBatch(day, rows.assign(snapshot_date=day, apy=-1.0)) for day in days]
        # The last day's rows break a constraint after the first two days are deleted and rewritten.
        batches[-1] = DailyBatch(days[-1], rows.assign(snapshot_date=days[-1], pool_id=None))
        return dg.MaterializeResult(value=batches)

    result = dg.materialize(
        [failing_snapshots], resources=resources, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": days[0].isoformat(),
              "dagster/asset_partition_range_end": days[-1].isoformat()},
    )
    assert not result.success
    assert snapshot_of(query) == before  # the first two days' deletes and inserts were rolled back


def test_constraint_violation_rolls_back_and_names_the_table(resources, warehouse, query):
    day = dt.date(2026, 9, 1)
    io = WarehouseIOManager(warehouse=warehouse)

    @dg.asset(name="pools", partitions_def=DAILY, io_manager_key="warehouse_io_manager",
              metadata=table_metadata(schema.pools, UPSERT))
    def orphan_pools() -> pd.DataFrame:
        # A pool whose chain and project do not exist: the foreign keys refuse it.
        return pd.DataFrame([{
            "pool_id": "00000000-0000-4000-8000-000000000001", "chain": "Nowhere", "project": "nobody",
            "symbol": "X", "pool_meta": None, "exposure": None, "il_risk": None, "stablecoin": None,
            "underlying_tokens": None, "reward_tokens": None, "first_seen_date": day, "last_seen_date": day,
        }])

    with pytest.raises(Exception, match=r"writing t_\w+\.pools failed and was rolled back") as raised:
        dg.materialize([orphan_pools], resources={"warehouse_io_manager": io}, partition_key=day.isoformat())
    assert query("SELECT count(*) FROM pools") == [(0,)]
    # The driver's error is kept as the cause (scrubbed), not thrown away.
    causes, error = [], raised.value
    while error is not None:
        causes.append(f"{type(error).__name__}: {error}")
        error = error.__cause__
    assert any("ForeignKeyViolation" in cause for cause in causes[1:]), causes


def test_upsert_keeps_newer_attributes_and_merges_aliases(warehouse, query):
    io = WarehouseIOManager(warehouse=warehouse)
    newer, older = dt.date(2026, 9, 10), dt.date(2026, 9, 1)

    def write(day: dt.date, frame: pd.DataFrame) -> None:
        @dg.asset(name="chains", partitions_def=DAILY, io_manager_key="warehouse_io_manager",
                  metadata=table_metadata(schema.chains, UPSERT))
        def chains_asset() -> pd.DataFrame:
            return frame

        assert dg.materialize([chains_asset], resources={"warehouse_io_manager": io},
                              partition_key=day.isoformat()).success

    write(newer, pd.DataFrame([("BSC", ["BSC", "Binance"], newer, newer)], columns=CHAIN_COLUMNS))
    write(older, pd.DataFrame([("BSC", ["BNB"], older, older)], columns=CHAIN_COLUMNS))
    assert query("SELECT name, aliases, first_seen_date, last_seen_date FROM chains") == [
        ("BSC", ["BNB", "BSC", "Binance"], older, newer)]


def test_carried_rows_in_a_range_never_overwrite_a_newer_days_attributes():
    from llama_pipeline.write.dimension_merge import fold_days as _fold_days

    d1, d2 = dt.date(2026, 9, 1), dt.date(2026, 9, 2)
    columns = [c.name for c in schema.pools.columns]

    def row(pool: str, symbol: str, day: dt.date) -> dict:
        return dict(dict.fromkeys(columns), pool_id=pool, chain="BSC", project="p", symbol=symbol,
                    first_seen_date=day, last_seen_date=day)

    day1 = pd.DataFrame([row("a", "NEW", d1)], columns=columns)  # read from day 1's payload
    day2 = pd.DataFrame([row("a", "OLD", d2), row("b", "B", d2)], columns=columns)  # carried from the table
    folded = _fold_days(_fold_days(None, day1, schema.pools), day2, schema.pools, seen_only=True)
    by_id = folded.set_index("pool_id")
    assert by_id.loc["a", "symbol"] == "NEW" and by_id.loc["a", "last_seen_date"] == d2
    assert by_id.loc["a", "first_seen_date"] == d1 and by_id.loc["b", "symbol"] == "B"
