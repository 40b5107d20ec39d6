"""Each day's stored payloads are decoded once per run for all the warehouse tables, nothing is kept
from one run to the next, and a replaced payload is what the next run reads."""

from __future__ import annotations

import datetime as dt

import pytest

from llama_pipeline.decode.warehouse_days import decode_day
from llama_pipeline.defs.warehouse.assets import CHAINS, POOL_SNAPSHOTS, POOLS, PROJECT_RENAMES, PROJECTS
from llama_pipeline_tests.testing import synthetic

from llama_pipeline_tests.conftest import archive_payloads, materialize, warehouse_assets

DAY = dt.date(2026, 3, 1)
TABLES = (CHAINS, PROJECTS, POOLS, POOL_SNAPSHOTS)


def decoded(result, key) -> list[int]:
    """The ``payloads_decoded`` figure of each materialization of ``key`` in the run."""
    return [m.metadata["payloads_decoded"].value
            for m in result.asset_materializations_for_node("warehouse_tables") if m.asset_key == key]


def test_a_day_is_decoded_once_for_every_table(resources, warehouse, query, small_day):
    archive_payloads(warehouse, DAY, *small_day)
    result = materialize(warehouse_assets(), resources, DAY)
    assert result.success
    # One decode of /pools and one of /protocols for the step that writes all four tables.
    assert {key: decoded(result, key) for key in TABLES} == {key: [2] for key in TABLES}
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (DAY,)) == [(300,)]
    assert query("SELECT count(*) FROM pools") == [(300,)]


def test_a_range_decodes_each_day_once_and_every_run_decodes_again(resources, warehouse, query, small_day):
    days = [DAY + dt.timedelta(days=i) for i in range(4)]
    for day in days:
        archive_payloads(warehouse, day, *small_day)
    for _ in range(2):  # the second run finds nothing decoded by the first
        result = materialize(warehouse_assets(), resources, partition_range=(days[0], days[-1]))
        assert result.success
        assert decoded(result, POOL_SNAPSHOTS) == [2 * len(days)] * len(days)  # one event per day
    assert query("SELECT count(*) FROM pool_snapshots") == [(300 * len(days),)]


def test_a_subset_decodes_only_what_it_needs(resources, warehouse, query, small_day):
    archive_payloads(warehouse, DAY, *small_day)
    assert materialize([CHAINS, PROJECTS, PROJECT_RENAMES, POOLS], resources, DAY).success
    result = materialize([POOL_SNAPSHOTS], resources, DAY)
    assert result.success
    assert decoded(result, POOL_SNAPSHOTS) == [1]  # /pools only: no table of the subset needs /protocols
    assert {m.asset_key for m in result.asset_materializations_for_node("warehouse_tables")} == {POOL_SNAPSHOTS}
    assert query("SELECT count(*) FROM pool_snapshots") == [(300,)]


def test_a_replaced_payload_is_read_as_stored(resources, warehouse, query, small_day):
    pools_payload, protocols = small_day
    archive_payloads(warehouse, DAY, pools_payload, protocols)
    assert materialize(warehouse_assets(), resources, DAY).success
    smaller = synthetic.generate_pools(120, seed=8, protocols=protocols)
    archive_payloads(warehouse, DAY, smaller, protocols)  # today fetched again: a different body
    assert materialize(warehouse_assets(), resources, DAY).success
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (DAY,)) == [(120,)]


def test_decode_day_reads_what_is_stored(warehouse, small_day):
    empty = decode_day(warehouse, DAY, protocols=True)
    assert empty.pools is None and empty.protocols is None and empty.payloads_decoded == 0
    archive_payloads(warehouse, DAY, *small_day)
    day = decode_day(warehouse, DAY, protocols=False)
    assert len(day.pools.snapshots) == 300 and day.protocols is None and day.payloads_decoded == 1
    assert day.pool_projects and day.pool_chain_spellings


@pytest.mark.parametrize("value", ["not rows", [object()]])
def test_the_writer_refuses_what_is_not_rows(resources, warehouse, value):
    import dagster as dg

    from llama_pipeline import schema
    from llama_pipeline.partitions import DAILY
    from llama_pipeline.write.table_write import REPLACE_PARTITION, table_metadata

    @dg.asset(name="pool_snapshots", partitions_def=DAILY, io_manager_key="warehouse_io_manager",
              metadata=table_metadata(schema.pool_snapshots, REPLACE_PARTITION, partition_expr="snapshot_date"))
    def odd() -> object:
        return value

    with pytest.raises(TypeError, match="expected a list of DailyBatch"):
        dg.materialize([odd], resources=resources, partition_key=DAY.isoformat())


def test_a_range_spooled_to_disk_writes_every_day_with_its_own_figures(resources, warehouse, query, small_day,
                                                                       monkeypatch):
    from llama_pipeline.write import copy_ahead

    monkeypatch.setattr(copy_ahead, "MAX_IN_MEMORY", 4096)  # a few rows: the range's rows go to disk
    pools_payload, protocols = small_day
    days = [DAY + dt.timedelta(days=i) for i in range(3)]
    for i, day in enumerate(days):
        archive_payloads(warehouse, day, synthetic.generate_pools(100 + 50 * i, seed=8, protocols=protocols,
                                                                  day=day), protocols)
    result = materialize(warehouse_assets(), resources, partition_range=(days[0], days[-1]))
    assert result.success
    assert query("SELECT snapshot_date, count(*) FROM pool_snapshots GROUP BY 1 ORDER BY 1") == [
        (day, 100 + 50 * i) for i, day in enumerate(days)]
    counts = {m.partition: m.metadata["dagster/row_count"].value
              for m in result.asset_materializations_for_node("warehouse_tables") if m.asset_key == POOL_SNAPSHOTS}
    assert counts == {day.isoformat(): 100 + 50 * i for i, day in enumerate(days)}
