"""The capture sensor's decisions, the gap alarm and capture_coverage, evaluated against a real Dagster
instance and a real warehouse (the daemon itself is exercised in test_capture_daemon.py)."""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pytest

from llama_pipeline import clock
from llama_pipeline.defs.ingestion.capture import capture_today_sensor
from llama_pipeline.fetch import capture_plan
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline_tests.conftest import all_assets, archive_payloads, materialize
from llama_pipeline_tests.defs.test_capture import store_today
from llama_pipeline_tests.defs.test_pipeline import serve


def evaluate(instance: dg.DagsterInstance, warehouse: Warehouse):
    # The Warehouse resource opens and closes its connections around an evaluation (setup/teardown).
    with dg.build_sensor_context(instance=instance, resources={"warehouse_reader": warehouse}) as context:
        return capture_today_sensor(context)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_a_warehouse_not_migrated_yet_asks_for_todays_capture(instance, database_url):
    bare = Warehouse(database_url=database_url, schema_name=f"never_{uuid.uuid4().hex[:8]}")
    request = evaluate(instance, bare)
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == clock.today().isoformat()
    assert request.run_key.startswith(f"{clock.today().isoformat()}/capture/")
    assert "has no /pools or /protocols capture" in request.tags["llama/capture"]


def test_fresh_captures_skip_and_stale_ones_refresh(instance, warehouse, small_day, monkeypatch):
    store_today(warehouse, *small_day, hours_ago=0.5)
    skipped = evaluate(instance, warehouse)
    assert isinstance(skipped, dg.SkipReason) and "next refresh is due at 3.00 h" in skipped.skip_message
    monkeypatch.setenv("LLAMA_CAPTURE_REFRESH_HOURS", "0.25")
    request = evaluate(instance, warehouse)
    assert isinstance(request, dg.RunRequest) and "/refresh/" in request.run_key


def test_a_run_in_progress_holds_the_next_capture_back_until_it_is_presumed_dead(
        instance, warehouse, monkeypatch):
    run = instance.add_run(dg.DagsterRun(job_name="daily_refresh", run_id=str(uuid.uuid4()),
                                         status=dg.DagsterRunStatus.STARTED))
    skipped = evaluate(instance, warehouse)
    assert isinstance(skipped, dg.SkipReason) and run.run_id in skipped.skip_message
    monkeypatch.setenv("LLAMA_CAPTURE_MAX_RUNTIME_MINUTES", "0")  # a run killed with the daemon
    assert isinstance(evaluate(instance, warehouse), dg.RunRequest)


def test_the_plan_tries_again_in_the_next_interval_not_twice_in_one():
    midnight = dt.datetime.combine(dt.date(2026, 11, 20), dt.time(0), tzinfo=dt.timezone.utc)
    refresh, retry = dt.timedelta(hours=3), dt.timedelta(minutes=15)
    keys = [capture_plan.plan(midnight + dt.timedelta(minutes=m), {}, refresh, retry).run_key for m in (1, 14, 16)]
    assert keys[0] == keys[1] != keys[2]
    fetched = {"pools": midnight + dt.timedelta(hours=1), "protocols": midnight + dt.timedelta(hours=2)}
    assert capture_plan.plan(midnight + dt.timedelta(hours=3, minutes=59), fetched, refresh, retry).run_key is None
    later = capture_plan.plan(midnight + dt.timedelta(hours=4, minutes=1), fetched, refresh, retry)
    assert later.run_key == "2026-11-20/refresh/16" and "3.02 h old" in later.reason


def check_result(resources: dict, instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    from llama_pipeline.defs.ingestion.checks import yesterday_captured
    from llama_pipeline.defs.warehouse.checks import freshness_checks_job, pool_snapshots_fresh

    defs = dg.Definitions(assets=all_assets(), asset_checks=[yesterday_captured, pool_snapshots_fresh],
                          jobs=[freshness_checks_job], resources=resources)
    result = defs.resolve_job_def("freshness_checks").execute_in_process(instance=instance, raise_on_error=False)
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "yesterday_captured"]
    return evaluation


def test_the_gap_alarm_names_a_day_that_ended_without_a_capture(resources, instance, warehouse, small_day):
    pools_payload, protocols = small_day
    yesterday = clock.today() - dt.timedelta(days=1)
    assert check_result(resources, instance).passed  # an empty warehouse has no day to miss yet
    archive_payloads(warehouse, yesterday - dt.timedelta(days=1), pools_payload, protocols)
    evaluation = check_result(resources, instance)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert f"{yesterday.isoformat()} ended with no /pools and no /protocols capture" in evaluation.description
    archive_payloads(warehouse, yesterday, pools_payload, protocols)
    assert check_result(resources, instance).passed


def test_capture_coverage_has_a_row_per_day_with_its_captures_and_source(
        resources, http, query, warehouse, small_day):
    pools_payload, protocols = small_day
    today = clock.today()
    first = today - dt.timedelta(days=3)
    archive_payloads(warehouse, first, pools_payload, protocols)
    assert materialize(all_assets(), resources, first).success
    serve(http, pools_payload, protocols)
    http.set("/pools", b"<html>down</html>")
    assert not materialize(all_assets(), resources, raise_on_error=False).success  # today refused once
    http.set("/pools", pools_payload)
    assert materialize(all_assets(), resources).success
    rows = query("SELECT day, pools_fetched_at IS NOT NULL, protocols_fetched_at IS NOT NULL, snapshots_source, "
                 "pool_count, rejects, quarantined FROM capture_coverage ORDER BY day")
    n = len(pools_payload["data"])
    assert rows == [
        (first, True, True, "payload", n, 0, 0),
        (first + dt.timedelta(days=1), False, False, "none", 0, 0, 0),  # the lost days show up
        (first + dt.timedelta(days=2), False, False, "none", 0, 0, 0),
        (today, True, True, "payload", n, 0, 1),
    ]
    assert query("SELECT pools_fetched_at FROM capture_coverage WHERE day = %s", (first,)) == [
        (dt.datetime.combine(first, dt.time(23), tzinfo=dt.timezone.utc),)]


def test_the_sensor_runs_by_default_beside_the_daily_schedule(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:s3cret@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs as load

    defs = load()
    sensor = defs.resolve_sensor_def("capture_today_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "daily_refresh"
    assert defs.resolve_schedule_def("daily_refresh_schedule").cron_schedule == "0 23 * * *"
    assert defs.resources["warehouse_reader"].migrate_on_start is False  # a sensor tick never migrates
