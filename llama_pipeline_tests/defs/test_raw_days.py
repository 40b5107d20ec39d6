"""The raw assets on past days without a stored capture: a day that nothing fills fails, naming the
day, before anything is fetched or written; a day filled from chart history (stored before the raw
assets run) or, for /protocols, from the day's /pools capture is materialized and says where its rows
come from. Read back through Dagster's instance API, as the UI reads it."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from llama_pipeline.partitions import DAILY, utc_today
from llama_pipeline_tests.conftest import all_assets, archive_payloads, asset_keys, materialize
from llama_pipeline_tests.defs.test_capture import quarantined, retried
from llama_pipeline_tests.defs.test_history import chart_server
from llama_pipeline_tests.defs.test_pipeline import serve
from llama_pipeline_tests.testing import synthetic

TODAY = utc_today()
DAYS = tuple(TODAY - dt.timedelta(days=n) for n in (6, 5, 4))
RAW = [dg.AssetKey("raw_pools"), dg.AssetKey("raw_protocols")]
WAREHOUSE = [dg.AssetKey(name) for name in ("chains", "projects", "pools", "pool_snapshots")]


def _run(resources, instance, first: dt.date, last: dt.date, selection, config: dict | None = None):
    return dg.materialize(
        all_assets(), resources=resources, instance=instance, selection=selection, raise_on_error=False,
        tags={"dagster/asset_partition_range_start": first.isoformat(),
              "dagster/asset_partition_range_end": last.isoformat()},
        run_config={"ops": {"raw_pool_charts": {"config": {"requests_per_second": 1000, "concurrency": 8,
                                                             **(config or {})}}}} if config is not None else None,
    )


def _failure(result: dg.ExecuteInProcessResult):
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "the run did not fail"
    return failures[0]


def _materializations(instance: dg.DagsterInstance, asset: str, day: dt.date) -> list:
    return instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day.isoformat()]), limit=5).records


def _day_metadata(instance: dg.DagsterInstance, asset: str, day: dt.date) -> dict:
    records = _materializations(instance, asset, day)
    assert records, f"no materialization of {asset} for {day}"
    return {key: getattr(value, "value", value) for key, value in records[0].asset_materialization.metadata.items()}


def _tables(query) -> dict:
    return {table: query(f"SELECT count(*) FROM {table}")[0][0]
            for table in ("raw_payloads", "raw_payload_quarantine", "chains", "projects", "pools", "pool_snapshots")}


def test_a_past_day_with_nothing_to_load_fails_raw_pools_naming_it_and_writes_nothing(resources, http, query,
                                                                                        small_day):
    serve(http, *small_day)  # today's data is served: it must not stand for the past day
    empty = DAYS[0]
    before = _tables(query)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(resources, instance, empty, empty, [*RAW, *WAREHOUSE])
        assert not result.success
        failure = _failure(result)
        assert failure.step_key in {"raw_pools", "raw_protocols"}
        message = failure.step_failure_data.user_failure_data.description
        assert message.startswith(f"{failure.step_key} (nothing to load) failed for 1 of 1 day(s):")
        assert f"\n{empty.isoformat()}: " in message and "chart history" in message
        assert "Materialize raw_pool_charts" in message  # what to do
        assert not retried(result)  # allow_retries=False: a retry could not change the answer
        for asset in ("raw_pools", "raw_protocols", "chains", "pool_snapshots"):
            assert not _materializations(instance, asset, empty), asset
        assert instance.get_latest_materialization_event(dg.AssetKey("raw_pools")) is None
    assert http.count("/pools") == 0 and http.count("/protocols") == 0
    assert _tables(query) == before
    assert quarantined(query) == []


def test_a_range_mixing_captured_and_empty_days_fails_listing_only_the_empty_days(resources, http, query, warehouse):
    protocols = synthetic.generate_protocols(40, seed=61)
    archive_payloads(warehouse, DAYS[1], synthetic.generate_pools(60, seed=61, protocols=protocols, day=DAYS[1]),
                     protocols)
    before = _tables(query)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(resources, instance, DAYS[0], DAYS[2], [RAW[0]])
        assert not result.success
        message = _failure(result).step_failure_data.user_failure_data.description
        lines = message.splitlines()
        assert lines[0] == "raw_pools (nothing to load) failed for 2 of 3 day(s):"
        assert [line.split(":")[0] for line in lines[1:]] == [DAYS[0].isoformat(), DAYS[2].isoformat()]
        assert all("neither a stored /pools payload nor stored chart history" in line for line in lines[1:])
        # One step for the range: none of its days is reported materialized, the captured one included.
        for day in DAYS:
            assert not _materializations(instance, "raw_pools", day), day
    assert _tables(query) == before


def test_a_past_day_with_a_stored_capture_materializes_with_its_fetched_at(resources, http, query, warehouse):
    protocols = synthetic.generate_protocols(40, seed=62)
    for day in DAYS:
        archive_payloads(warehouse, day, synthetic.generate_pools(50, seed=62, protocols=protocols, day=day), protocols)
    # /protocols missing on a day whose /pools capture is stored is not a day without data.
    query("DELETE FROM raw_payloads WHERE endpoint = 'protocols' AND partition_date = %s RETURNING 1", (DAYS[1],))
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(resources, instance, DAYS[0], DAYS[2], [*RAW, *WAREHOUSE])
        assert result.success
        for day in DAYS:
            pools = _day_metadata(instance, "raw_pools", day)
            at_23 = dt.datetime.combine(day, dt.time(23), tzinfo=dt.timezone.utc)
            assert pools["fetched_at"] == at_23.isoformat()
            assert pools["payload"] == "stored earlier, kept as it was"
            assert pools["rows_from"] == "the day's /pools capture"
        protocols_day = _day_metadata(instance, "raw_protocols", DAYS[1])
        assert protocols_day["payload"].startswith("none: no /protocols capture is stored for this day")
        assert protocols_day["rows_from"].startswith("the day's stored /pools capture; projects keep")
        assert _day_metadata(instance, "raw_protocols", DAYS[0])["rows_from"] == "the day's /protocols capture"
    assert http.count("/pools") == 0
    assert query("SELECT snapshot_date, count(*) FROM pool_snapshots GROUP BY 1 ORDER BY 1") == [
        (day, 50) for day in DAYS]


def test_a_range_filled_from_history_in_the_same_run_says_so_on_each_day(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success  # today: the warehouse learns its pools
    chart_server(http)
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(resources, instance, DAYS[0], DAYS[2], asset_keys(all_assets()), config={"limit": 30})
        assert result.success
        for day in DAYS:
            for asset in ("raw_pools", "raw_protocols"):
                metadata = _day_metadata(instance, asset, day)
                endpoint = asset.removeprefix("raw_")
                assert metadata["payload"].startswith(f"none: no /{endpoint} capture is stored for this day")
                assert metadata["rows_from"].startswith("chart history: ")
                assert metadata["fetched_at"] == "never"
            assert _day_metadata(instance, "pool_snapshots", day)["dagster/row_count"] > 0
    assert http.count("/pools") == 1  # today's run only
    assert query("SELECT count(*) FROM raw_payloads WHERE partition_date <> %s", (TODAY,)) == [(0,)]


def test_the_whole_graph_fails_a_day_its_history_does_not_reach(resources, http, query, small_day):
    """raw_pool_charts in the run is not enough: the day must have chart points once it has run."""
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    http.set_handler("/chart/", lambda path: None)  # every chart unknown (404): nothing fills the day
    before = query("SELECT count(*) FROM pool_snapshots")
    with dg.DagsterInstance.ephemeral() as instance:
        result = _run(resources, instance, DAYS[0], DAYS[0], asset_keys(all_assets()), config={"limit": 10})
        assert not result.success
        failure = _failure(result)
        assert failure.step_key in {"raw_pools", "raw_protocols"}
        assert f"\n{DAYS[0].isoformat()}: " in failure.step_failure_data.user_failure_data.description
        assert _materializations(instance, "raw_pool_charts", DAYS[0])  # it ran and found nothing
        for asset in ("raw_pools", "raw_protocols", "chains", "pools", "pool_snapshots"):
            assert not _materializations(instance, asset, DAYS[0]), asset
            # The status the UI's Partitions view shows: failed (red), for the warehouse tables too,
            # whose step did not run.
            status = instance.get_status_by_partition(dg.AssetKey(asset), [DAYS[0].isoformat()], DAILY)
            assert status == {DAYS[0].isoformat(): dg.AssetPartitionStatus.FAILED}, asset
    assert query("SELECT count(*) FROM pool_snapshots") == before
