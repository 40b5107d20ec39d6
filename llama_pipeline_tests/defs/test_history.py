"""Backfilling past days from /chart/{pool}: each chart fetched once, archived, resumable, failures
recorded, payload days untouched."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import dagster as dg

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import Response
from llama_pipeline_tests.conftest import all_assets, archive_payloads, materialize
from llama_pipeline_tests.defs.test_pipeline import serve

HISTORY_START = utc_today() - dt.timedelta(days=90)  # short charts keep the tests quick


def chart_server(http, *, bad: set[str] = frozenset(), flaky: set[str] = frozenset()):
    """Serve every pool's chart; ``bad`` ids get DeFiLlama's HTTP 400, ``flaky`` ones HTTP 503."""

    def handler(path: str) -> Response:
        pool_id = path.rsplit("/", 1)[-1]
        if pool_id in bad:
            return Response(status=400, body='"invalid configID!"')
        if pool_id in flaky:
            return Response(status=503, body="try later")
        return Response(body=synthetic.dumps(synthetic.generate_chart(pool_id, HISTORY_START, utc_today())))

    http.set_handler("/chart/", handler)


def run_history(resources, first: dt.date, last: dt.date, config: dict | None = None, raise_on_error=True):
    return dg.materialize(
        all_assets(),
        resources=resources,
        tags={"dagster/asset_partition_range_start": first.isoformat(),
              "dagster/asset_partition_range_end": last.isoformat()},
        # A local server needs no politeness: lift the default 5 requests a second.
        run_config={"ops": {"raw_pool_charts": {"config": {"requests_per_second": 1000, "concurrency": 8,
                                                             **(config or {})}}}},
        raise_on_error=raise_on_error,
    )


def expected_point(pool_id: str, day: dt.date) -> dict | None:
    chart = synthetic.generate_chart(pool_id, HISTORY_START, utc_today())
    points = [p for p in chart["data"] if p["timestamp"].startswith(day.isoformat())]
    return points[-1] if points else None


def test_backfill_fills_past_days_from_charts_fetched_once(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success  # today: the warehouse learns its pools
    ids = [p["pool"] for p in pools_payload["data"]]
    bad = set(ids[:3])
    chart_server(http, bad=bad)

    first, last = utc_today() - dt.timedelta(days=12), utc_today() - dt.timedelta(days=10)
    result = run_history(resources, first, last)
    assert result.success
    # Each chart once for the whole range, not once per day; /pools never fetched for the past.
    assert all(http.count(f"/chart/{pool_id}") == 1 for pool_id in ids)
    assert http.count("/pools") == 1

    days = dict(query("SELECT snapshot_date, count(*) FROM pool_snapshots WHERE source = 'chart' GROUP BY 1"))
    assert sorted(days) == [first, first + dt.timedelta(days=1), last]
    sample = ids[5]
    point = expected_point(sample, first)
    if point:
        assert query("SELECT tvl_usd, apy, apy_base, mu, outlier FROM pool_snapshots "
                     "WHERE pool_id = %s AND snapshot_date = %s", (sample, first)) == [
            (float(point["tvlUsd"]), point["apy"], point["apyBase"], None, None)]
    # Failures are recorded with their reason and do not fail the range.
    failed = dict(query("SELECT pool_id::text, error FROM raw_pool_charts WHERE error IS NOT NULL"))
    assert set(failed) == bad and all("HTTP 400" in e and "invalid configID" in e for e in failed.values())
    assert query("SELECT count(*) FROM pool_snapshots WHERE pool_id = ANY(%s::uuid[]) AND source = 'chart'",
                 (sorted(bad),)) == [(0,)]
    # The chart is archived byte for byte.
    import zlib
    body = query("SELECT body FROM raw_pool_charts WHERE pool_id = %s", (sample,))[0][0]
    assert json.loads(zlib.decompress(bytes(body), 47)) == synthetic.generate_chart(sample, HISTORY_START, utc_today())
    # Pools seen in history widen their first-seen day; today's attributes stay.
    assert query("SELECT first_seen_date, last_seen_date FROM pools WHERE pool_id = %s", (sample,))[0][1] == utc_today()
    snapshots = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["pool_snapshots"]]
    assert snapshots[0].materialization.metadata["source"].value == "chart"
    assert "mu" in snapshots[0].materialization.metadata["columns_not_in_chart"].value


def test_backfill_resumes_with_only_what_is_missing(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    ids = [p["pool"] for p in pools_payload["data"]]
    flaky = set(ids[10:40])
    chart_server(http, flaky=flaky)
    day = utc_today() - dt.timedelta(days=30)
    assert run_history(resources, day, day).success  # 503s are recorded, the range still loads
    assert query("SELECT count(*) FROM raw_pool_charts WHERE http_status = 503") == [(len(flaky),)]
    before = {pool_id: http.count(f"/chart/{pool_id}") for pool_id in ids}
    assert all(before[p] > 1 for p in flaky)  # retried within the run first

    chart_server(http)  # the API recovers
    assert run_history(resources, day, day).success
    fetched_again = {pool_id for pool_id in ids if http.count(f"/chart/{pool_id}") > before[pool_id]}
    assert fetched_again == flaky  # only what was missing
    assert query("SELECT count(*) FROM raw_pool_charts WHERE error IS NOT NULL") == [(0,)]


def test_days_with_a_stored_payload_keep_it_and_selection_limits_pools(resources, http, query, warehouse):
    protocols = synthetic.generate_protocols(60, seed=9)
    payload = synthetic.generate_pools(100, seed=9, protocols=protocols)
    stored_day = utc_today() - dt.timedelta(days=20)
    archive_payloads(warehouse, stored_day, payload, protocols)
    assert materialize(all_assets()[3:], resources, stored_day).success
    chart_server(http)
    chosen_project = payload["data"][0]["project"]
    stranger = "0badc0de-0000-4000-8000-00000000beef"  # a pool only history knows

    result = run_history(resources, stored_day - dt.timedelta(days=1), stored_day,
                         {"projects": [chosen_project], "pool_ids": [stranger]})
    assert result.success
    in_project = {p["pool"] for p in payload["data"] if p["project"] == chosen_project}
    fetched = {r[0] for r in query("SELECT pool_id::text FROM raw_pool_charts")}
    assert fetched == in_project | {stranger}
    by_source = dict(query("SELECT snapshot_date, string_agg(DISTINCT source, ',') FROM pool_snapshots GROUP BY 1"))
    assert by_source == {stored_day - dt.timedelta(days=1): "chart", stored_day: "pools"}
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (stored_day,)) == [(100,)]
    # The pool known only from history still joins a chain and a project.
    assert query("SELECT chain, project FROM pools WHERE pool_id = %s", (stranger,)) == [("(unknown)", "(unknown)")]
    assert query("SELECT count(*) FROM pool_snapshots s JOIN pools p USING (pool_id) JOIN chains c ON c.name = p.chain "
                 "JOIN projects j ON j.slug = p.project") == query("SELECT count(*) FROM pool_snapshots")


def test_chart_points_that_cannot_be_read_are_counted_logged_and_kept_aside(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    spoiled = pools_payload["data"][0]["pool"]

    def handler(path: str) -> Response:
        pool_id = path.rsplit("/", 1)[-1]
        chart = synthetic.generate_chart(pool_id, HISTORY_START, utc_today())
        if pool_id == spoiled:
            chart["data"][3:3] = [{"timestamp": "not a time", "apy": 1.0}, "not a point",
                                  {"timestamp": chart["data"][3]["timestamp"], "tvlUsd": "lots"}]
        return Response(body=synthetic.dumps(chart))

    http.set_handler("/chart/", handler)
    instance = dg.DagsterInstance.ephemeral()
    day = utc_today() - dt.timedelta(days=30)
    result = dg.materialize(
        all_assets(), resources=resources, instance=instance, partition_key=day.isoformat(),
        run_config={"ops": {"raw_pool_charts": {"config": {"requests_per_second": 1000, "concurrency": 8}}}})
    assert result.success
    charts = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["raw_pool_charts"]][0]
    assert charts.materialization.metadata["chart_points_rejected"].value == 3
    kept = query("SELECT record_index, record_key, reason, record FROM rejects WHERE asset = 'raw_pool_charts' "
                 "ORDER BY record_index")
    assert [(index, key) for index, key, _, _ in kept] == [(3, spoiled), (4, spoiled), (5, spoiled)]
    assert "timestamp" in kept[0][2] and "not an object" in kept[1][2] and "tvlUsd: expected a number" in kept[2][2]
    assert json.loads(kept[2][3])["tvlUsd"] == "lots"
    logged = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any(spoiled in message and "3 point(s)" in message for message in logged), logged
    # The chart is still usable: its other points load; a clean refetch clears what was kept aside.
    assert query("SELECT error FROM raw_pool_charts WHERE pool_id = %s", (spoiled,)) == [(None,)]
    chart_server(http)
    query("UPDATE raw_pool_charts SET fetched_at = fetched_at - interval '400 days'")  # due for a refetch
    assert run_history(resources, day, day, {"pool_ids": [spoiled]}).success
    assert query("SELECT count(*) FROM rejects WHERE asset = 'raw_pool_charts'") == [(0,)]


def slow_charts_after_today(resources, http, small_day, delay: float) -> Callable[[], int]:
    """Today loaded (the warehouse knows its pools), then every chart served after ``delay`` seconds;
    returns a function counting the chart requests made."""
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    ids = [p["pool"] for p in pools_payload["data"]]

    def slow(path: str) -> Response:
        pool_id = path.rsplit("/", 1)[-1]
        return Response(body=synthetic.dumps(synthetic.generate_chart(pool_id, HISTORY_START, utc_today())), delay=delay)

    http.set_handler("/chart/", slow)
    return lambda: sum(http.count(f"/chart/{pool_id}") for pool_id in ids)


def test_a_failing_write_cancels_the_pending_fetches(resources, http, query, small_day):
    requested = slow_charts_after_today(resources, http, small_day, delay=0.05)
    # A real failing write: the database refuses every new chart row.
    query("ALTER TABLE raw_pool_charts ADD CONSTRAINT refuse_writes CHECK (false) NOT VALID")
    day = utc_today() - dt.timedelta(days=30)
    result = run_history(resources, day, day, {"concurrency": 4}, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert failure.step_key == "raw_pool_charts" and "refuse_writes" in str(failure.step_failure_data.error.to_string())
    # The first batch (50 charts) failed to commit: the fetches still queued were cancelled, only those
    # in flight finished (today's shutdown waited for all 300).
    assert 50 <= requested() <= 50 + 4 * 4, requested()
    assert query("SELECT count(*) FROM raw_pool_charts") == [(0,)]


def test_a_terminated_backfill_stops_fetching(resources, http, query, small_day, database_url, schema_name):
    import signal
    import time

    from llama_pipeline_tests.fault_helpers import finish, start_run

    requested = slow_charts_after_today(resources, http, small_day, delay=0.2)
    run = start_run(database_url, schema_name, select="charts", partition=utc_today() - dt.timedelta(days=30),
                    chart_url=http.url("/chart/{pool}"),
                    run_config={"ops": {"raw_pool_charts": {"config": {"requests_per_second": 1000, "concurrency": 4}}}})
    while requested() < 20 and run.poll() is None:
        time.sleep(0.01)
    at_signal = requested()
    run.send_signal(signal.SIGINT)  # how Dagster's run worker is told to terminate a run
    code, _, output = finish(run, timeout=120)
    assert code != 0, output[-3000:]
    # Only the fetches in flight when the run was stopped finished; the ~280 queued were cancelled.
    assert at_signal < 60 and requested() <= at_signal + 4 * 2, (at_signal, requested())
