"""A range run (a backfill is one run) gives each day its own figures and its own check results, as
Dagster's instance stores them and the UI reads them: materializations by partition
(``fetch_materializations``) and check executions by partition."""

from __future__ import annotations

import datetime as dt
import statistics

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter

from llama_pipeline.defs.analytics import assets as analytics
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline_tests.conftest import all_assets, asset_keys, archive_payloads
from llama_pipeline_tests.defs.test_checks import all_checks
from llama_pipeline_tests.testing import synthetic

DAYS = (dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20))
SIZES = (120, 150, 90)  # pools per day: pool i keeps its id across days, so day 2 adds 30 and day 3 drops 60


def _range_tags(first: dt.date, last: dt.date) -> dict:
    return {"dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat()}


def _latest(instance: dg.DagsterInstance, asset: str, day: dt.date) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day.isoformat()]), limit=1).records
    assert records, f"no materialization of {asset} for {day}"
    return {key: getattr(value, "value", value) for key, value in records[0].asset_materialization.metadata.items()}


def _check(instance: dg.DagsterInstance, asset: str, name: str, day: dt.date):
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=day.isoformat())).get(key)
    assert record is not None, f"no execution of {asset}:{name} for {day}"
    return record


@pytest.fixture
def three_days(warehouse):
    protocols = synthetic.generate_protocols(60, seed=41)
    payloads = {day: synthetic.generate_pools(n, seed=41, protocols=protocols, day=day) for day, n in zip(DAYS, SIZES)}
    for day, payload in payloads.items():
        archive_payloads(warehouse, day, payload, protocols)
    return payloads


def test_each_day_of_a_range_run_carries_its_own_figures_and_checks(resources, query, three_days):
    assets = [*all_assets(), analytics.analytics]
    some_analytics = [dg.AssetKey(name) for name in ("pool_latest", "chain_daily_stats", "pool_apy_rolling")]
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*assets, *all_checks()], resources=resources, instance=instance,
                                selection=dg.AssetSelection.assets(*asset_keys(all_assets()), *some_analytics),
                                tags=_range_tags(DAYS[0], DAYS[-1]))
        assert result.success
        # One run: the backfill stays fast.
        assert len(instance.get_runs()) == 1

        inserted_so_far = 0
        for day, payload in three_days.items():
            snapshots = parse_pools(synthetic.dumps(payload), day).snapshots
            rows, tvl = query("SELECT count(*), sum(tvl_usd) FROM pool_snapshots WHERE snapshot_date = %s", (day,))[0]
            assert rows == len(snapshots) == len(payload["data"])

            facts = _latest(instance, "pool_snapshots", day)
            assert facts["dagster/row_count"] == rows
            assert facts["inserted"] == rows and facts["replaced"] == 0
            assert facts["pool_count"] == rows
            assert facts["total_tvl_usd"] == pytest.approx(float(tvl))
            assert facts["median_apy"] == pytest.approx(statistics.median(p["apy"] for p in payload["data"]))
            assert facts["rejected"] == 0 and facts["days"] == len(DAYS)

            raw = _latest(instance, "raw_pools", day)
            assert raw["dagster/row_count"] == len(payload["data"])
            assert raw["payload"] == "stored earlier, kept as it was"

            pools = _latest(instance, "pools", day)
            assert pools["dagster/row_count"] == len(payload["data"])
            # New keys are counted on the first day they appear: 120, then the 30 new pools, then none.
            expected_new = max(0, len(payload["data"]) - inserted_so_far)
            assert pools["inserted"] == expected_new
            inserted_so_far += expected_new

            chains_on_day, chain_tvl = query("SELECT count(*), sum(total_tvl_usd) FROM chain_daily_stats "
                                             "WHERE snapshot_date = %s", (day,))[0]
            stats = _latest(instance, "chain_daily_stats", day)
            assert stats["dagster/row_count"] == stats["chain_count"] == chains_on_day
            assert stats["total_tvl_usd"] == pytest.approx(float(chain_tvl))
            assert _latest(instance, "pool_apy_rolling", day)["dagster/row_count"] == rows
            latest = _latest(instance, "pool_latest", day)
            if day == DAYS[-1]:
                assert latest["current_pools"] == rows
            else:  # the newest day's state is not repeated as if it were this day's
                assert "current_pools" not in latest and DAYS[-1].isoformat() in latest["figures_on"]
            assert latest["as_of_date"] == DAYS[-1].isoformat()

            for asset, name in (("pool_snapshots", "counts_add_up"), ("pools", "keys_unique"),
                                ("raw_pools", "pool_count_not_collapsed"), ("pool_snapshots", "values_in_range")):
                record = _check(instance, asset, name, day)
                assert record.status.value == "SUCCEEDED", (asset, name, day, record.status)
                evaluation = record.event.dagster_event.event_specific_data
                assert evaluation.partition == day.isoformat()
                assert evaluation.target_materialization_data is not None
        assert query("SELECT count(*) FROM pools") == [(max(SIZES),)]
        # The counts check judged each day on its own figures.
        counts = _check(instance, "pool_snapshots", "counts_add_up", DAYS[1]).event.dagster_event.event_specific_data
        assert counts.metadata["rows_loaded"].value == SIZES[1]


def test_a_range_whose_last_day_collapsed_fails_that_day_only(resources, warehouse, three_days):
    collapsed = dt.date(2026, 11, 21)
    protocols = synthetic.generate_protocols(60, seed=41)
    archive_payloads(warehouse, collapsed, synthetic.generate_pools(10, seed=41, protocols=protocols, day=collapsed),
                     protocols)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*all_assets(), *all_checks()], resources=resources, instance=instance,
                                selection=dg.AssetSelection.assets(*asset_keys(all_assets())),
                                tags=_range_tags(DAYS[0], collapsed), raise_on_error=False)
        assert not result.success
        for day in DAYS:
            assert _check(instance, "raw_pools", "pool_count_not_collapsed", day).status.value == "SUCCEEDED"
        failed = _check(instance, "raw_pools", "pool_count_not_collapsed", collapsed)
        assert failed.status.value == "FAILED"
        # The run's failure names the failed day with its reason, on a line of its own.
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        message = failure.step_failure_data.error.message + (failure.step_failure_data.user_failure_data.description
                                                             if failure.step_failure_data.user_failure_data else "")
        assert f"\n{collapsed.isoformat()}: " in message
        assert "failed for 1 of 4 day(s)" in message


def test_a_day_with_nothing_to_load_is_not_a_materialized_day(resources, warehouse, query):
    protocols = synthetic.generate_protocols(60, seed=43)
    empty = DAYS[1]
    for day in (DAYS[0], DAYS[2]):
        archive_payloads(warehouse, day, synthetic.generate_pools(80, seed=43, protocols=protocols, day=day),
                         protocols)
    warehouse_keys = ("chains", "projects", "pools", "pool_snapshots")
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize([*all_assets(), *all_checks()], resources=resources, instance=instance,
                                selection=dg.AssetSelection.assets(*warehouse_keys),
                                tags=_range_tags(DAYS[0], DAYS[-1]), raise_on_error=False)
        assert not result.success
        for asset in warehouse_keys:
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=10).records
            assert not records, f"{asset} reported a materialization for a range with an empty day"
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        # the one step of the four tables fails, before writing anything
        assert failure.step_key == "warehouse_tables"
        message = failure.step_failure_data.user_failure_data.description
        assert message.startswith("chains, pool_snapshots, pools, projects (nothing to load) failed for 1 of 3 day(s):")
        assert f"\n{empty.isoformat()}: neither a stored /pools payload nor stored chart history" in message
    for table in warehouse_keys:
        assert query(f"SELECT count(*) FROM {table}") == [(0,)]
