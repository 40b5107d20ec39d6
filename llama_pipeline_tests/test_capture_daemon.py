"""Never lose a day, with a real ``dagster-daemon`` on a real instance (PostgreSQL storage, queued runs):
the capture sensor captures today at start and refreshes it, a refused capture keeps the earlier one,
a run for yesterday started after midnight fetches nothing, and a daemon SIGKILLed mid-run and
restarted still captures the day with nothing half-written. The pipeline's clock is shifted through
LLAMA_CLOCK_OFFSET_SECONDS in the daemon's environment (never libfaketime)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import threading
from pathlib import Path

import dagster as dg
import pytest

from llama_pipeline import clock
from llama_pipeline_tests.conftest import archive_payloads
from llama_pipeline_tests.daemon_server import dagster_daemon, launch, wait_until
from llama_pipeline_tests.defs.test_capture import store_today
from llama_pipeline_tests.testing import synthetic, synthetic_datasets
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response
from llama_pipeline_tests.test_ui_browser import query_schema  # noqa: F401 - a fixture
from llama_pipeline_tests.ui_server import dagster_database


@pytest.fixture(scope="module")
def day_payloads() -> tuple[dict, dict, list]:
    protocols = synthetic.generate_protocols(40, seed=23)
    first = synthetic.generate_pools(60, seed=23, protocols=protocols)
    return first, synthetic.evolve_pools(first, seed=24), protocols


@pytest.fixture
def http(day_payloads) -> PayloadServer:
    with PayloadServer() as server:
        # the whole graph captures the datasets beside the yields too
        synthetic_datasets.serve(server, day_payloads[0], lending=20, chains=10, chain_days=10, protocol_days=10)
        yield server


@pytest.fixture
def dagster_pg(server_url: str) -> str:
    with dagster_database(server_url) as url:
        yield url


def daemon_env(database_url: str, schema_name: str, http: PayloadServer, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name, **synthetic_datasets.source_settings(http),
            "LLAMA_CAPTURE_SENSOR_SECONDS": "2", "LLAMA_FETCH_RETRY_DELAY": "0.5", **extra}


@contextlib.contextmanager
def instance_at(home: Path):
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance


def refresh_runs(home: Path, *statuses: dg.DagsterRunStatus) -> list[dg.DagsterRun]:
    with instance_at(home) as instance:
        return list(instance.get_runs(dg.RunsFilter(job_name="daily_refresh", statuses=list(statuses) or None)))


def sha(document) -> str:
    return hashlib.sha256(synthetic.dumps(document)).hexdigest()


def test_the_daemon_captures_today_at_start_on_a_warehouse_never_migrated(
        http, dagster_pg, database_url, schema_name, query_schema, day_payloads, tmp_path):
    pools_payload, _, protocols = day_payloads
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    home = tmp_path / "home"
    with dagster_daemon(home, dagster_pg, daemon_env(database_url, schema_name, http)) as daemon:
        (run,) = wait_until(lambda: refresh_runs(home, dg.DagsterRunStatus.SUCCESS), "successful capture run",
                            daemon)
    today = clock.today()
    assert run.tags["dagster/partition"] == today.isoformat()
    assert run.tags["dagster/sensor_name"] == "capture_today_sensor"
    assert query_schema("SELECT endpoint, sha256 FROM raw_payloads WHERE partition_date = %s AND endpoint IN ('pools', 'protocols') ORDER BY 1",
                        (today,)) == [("pools", sha(pools_payload)), ("protocols", sha(protocols))]
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (today,)) == [
        (len(pools_payload["data"]),)]
    assert query_schema("SELECT snapshots_source FROM capture_coverage WHERE day = %s", (today,)) == [("payload",)]


def test_the_daemon_refreshes_a_stale_capture_and_a_refused_one_keeps_the_earlier(
        http, dagster_pg, database_url, schema_name, query_schema, warehouse, day_payloads, tmp_path):
    first, later, protocols = day_payloads
    earlier_at = store_today(warehouse, first, protocols, hours_ago=4)
    http.set("/pools", b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
    http.set("/protocols", synthetic.dumps(protocols))
    home = tmp_path / "home"
    env = daemon_env(database_url, schema_name, http, LLAMA_CAPTURE_RETRY_MINUTES="0.05")
    with dagster_daemon(home, dagster_pg, env) as daemon:
        # The refresh is due (4 h > 3 h); the CDN serves an error page: refused, kept aside, not stored.
        wait_until(lambda: refresh_runs(home, dg.DagsterRunStatus.FAILURE), "failed refresh run", daemon)
        assert query_schema("SELECT sha256, fetched_at FROM raw_payloads WHERE endpoint = 'pools'") == [
            (sha(first), earlier_at)]
        assert {row for row in query_schema(
            "SELECT status, reason LIKE '%%is not JSON%%' FROM raw_payload_quarantine")} == {("refused", True)}
        # The API recovers: the sensor tries again in the next interval and the later capture replaces it.
        http.set("/pools", synthetic.dumps(later))
        wait_until(lambda: refresh_runs(home, dg.DagsterRunStatus.SUCCESS), "successful refresh run", daemon)
    (sha256, fetched_at), = query_schema("SELECT sha256, fetched_at FROM raw_payloads WHERE endpoint = 'pools'")
    assert sha256 == sha(later) and fetched_at > earlier_at
    assert {row for row in query_schema("SELECT status FROM raw_payload_quarantine")} == {("refused",)}  # none pending
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (clock.today(),)) == [
        (len(later["data"]),)]


def test_a_run_for_yesterday_started_after_midnight_fetches_nothing_and_keeps_its_capture(
        http, dagster_pg, database_url, schema_name, query_schema, warehouse, day_payloads, tmp_path):
    first, later, protocols = day_payloads
    real = dt.datetime.now(dt.timezone.utc)
    today = real.date()
    yesterday = today - dt.timedelta(days=1)
    just_after_midnight = dt.datetime.combine(today, dt.time(0, 5), tzinfo=dt.timezone.utc)
    offset = str((just_after_midnight - real).total_seconds())
    archive_payloads(warehouse, yesterday, first, protocols)  # captured at 23:00 yesterday
    http.set("/pools", synthetic.dumps(later))  # what /pools says now: today's data
    http.set("/protocols", synthetic.dumps(protocols))
    home = tmp_path / "home"
    env = daemon_env(database_url, schema_name, http, LLAMA_CLOCK_OFFSET_SECONDS=offset)
    with dagster_daemon(home, dagster_pg, env) as daemon:
        (captured,) = wait_until(lambda: refresh_runs(home, dg.DagsterRunStatus.SUCCESS), "today's capture", daemon)
        assert captured.tags["dagster/partition"] == today.isoformat()
        fetches = http.count("/pools")
        launch(home, env, "daily_refresh", yesterday.isoformat())  # a late tick, a retry, a UI launch
        wait_until(lambda: [r for r in refresh_runs(home, dg.DagsterRunStatus.SUCCESS)
                            if r.tags["dagster/partition"] == yesterday.isoformat()], "yesterday's run", daemon)
        with instance_at(home) as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey("raw_pools"))
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_pools"), asset_partitions=[yesterday.isoformat()]),
                limit=1).records
    assert event is not None
    assert http.count("/pools") == fetches  # yesterday's run fetched nothing
    at_23 = dt.datetime.combine(yesterday, dt.time(23), tzinfo=dt.timezone.utc)
    assert query_schema("SELECT sha256, fetched_at FROM raw_payloads WHERE endpoint = 'pools' AND partition_date = %s",
                        (yesterday,)) == [(sha(first), at_23)]
    metadata = records[0].asset_materialization.metadata
    assert metadata["fetched_at"].value == at_23.isoformat()
    assert "keeps the /pools capture fetched at" in metadata["capture_kept"].value
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (yesterday,)) == [
        (len(first["data"]),)]


def test_a_daemon_killed_mid_run_and_restarted_still_captures_the_day_whole(
        http, dagster_pg, database_url, schema_name, query_schema, day_payloads, tmp_path):
    pools_payload, _, protocols = day_payloads
    http.set("/protocols", synthetic.dumps(protocols))
    first_request = threading.Event()
    hold = threading.Event()
    served = {"count": 0}

    def pools(path: str) -> Response:
        served["count"] += 1
        if served["count"] == 1:  # the first run hangs in its fetch until the daemon is gone
            first_request.set()
            hold.wait()
        return Response(body=synthetic.dumps(pools_payload))

    http.set_handler("/pools", pools)
    home = tmp_path / "home"
    env = daemon_env(database_url, schema_name, http, LLAMA_CAPTURE_RETRY_MINUTES="0.05",
                     LLAMA_CAPTURE_MAX_RUNTIME_MINUTES="0.3")
    try:
        with dagster_daemon(home, dagster_pg, env) as daemon:
            wait_until(first_request.is_set, "a capture run fetching /pools", daemon)
            (killed,) = refresh_runs(home, dg.DagsterRunStatus.STARTED)
            daemon.kill()
        assert query_schema("SELECT count(*) FROM raw_payloads WHERE endpoint = 'pools'") == [(0,)]
        with dagster_daemon(home, dagster_pg, env, log_name="daemon2.log") as daemon:
            (run,) = wait_until(lambda: refresh_runs(home, dg.DagsterRunStatus.SUCCESS), "capture after restart",
                                daemon)
    finally:
        hold.set()
    assert run.run_id != killed.run_id
    today = clock.today()
    assert query_schema("SELECT endpoint, sha256 FROM raw_payloads WHERE partition_date = %s AND endpoint IN ('pools', 'protocols') ORDER BY 1",
                        (today,)) == [("pools", sha(pools_payload)), ("protocols", sha(protocols))]
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (today,)) == [
        (len(pools_payload["data"]),)]
    assert query_schema("SELECT count(*) FROM raw_payload_quarantine WHERE status = 'pending'") == [(0,)]
