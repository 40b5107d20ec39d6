"""Archive first, quarantine: every capture that arrives whole is kept before it is parsed; an unusable
one is kept aside with its reason, never replaces the day's good payload, and fails the run saying so.
A day that has ended is never fetched. Against the real payload server and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading

import pytest

from llama_pipeline import clock
from llama_pipeline.fetch.payloads import RawPayload
from llama_pipeline.fetch.raw_archive import store
from llama_pipeline_tests.conftest import all_assets, archive_payloads, materialize
from llama_pipeline_tests.defs.test_bad_input import failure_message
from llama_pipeline_tests.defs.test_pipeline import serve, snapshot_of
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import Response


def store_today(warehouse, pools_payload, protocols, hours_ago: float = 1.0) -> dt.datetime:
    """A good capture of today, fetched ``hours_ago`` (as an earlier run would have stored it)."""
    fetched_at = clock.now() - dt.timedelta(hours=hours_ago)
    payloads = []
    for endpoint, document in (("pools", pools_payload), ("protocols", protocols)):
        body = synthetic.dumps(document)
        count = len(document["data"]) if endpoint == "pools" else len(document)
        payloads.append(RawPayload(endpoint, clock.today(), f"http://127.0.0.1/{endpoint}", fetched_at, 200,
                                   "application/json", body, count))
    with warehouse.connection() as conn:
        store(conn, warehouse.schema_name, payloads)
    return fetched_at


def quarantined(query) -> list[tuple]:
    return query("SELECT endpoint, partition_date, status, reason, sha256 FROM raw_payload_quarantine ORDER BY id")


def retried(result) -> bool:
    return any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "is not JSON"),
        (None, "is truncated or malformed JSON"),
        (b'{"status": "error", "data": [{"pool": "x"}]}', "has status 'error'"),
        (b"[" * 100_000 + b"]" * 100_000, "RecursionError"),  # the decoder itself gives up
        ("collapsed", "fewer than 50%"),
    ],
    ids=["not-json", "truncated", "status-error", "decoder-error", "collapsed"],
)
def test_an_unusable_capture_is_quarantined_and_the_earlier_one_kept(
        resources, http, query, warehouse, small_day, body, reason):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success  # today's good capture and tables
    before = snapshot_of(query)
    kept_at = query("SELECT fetched_at FROM raw_payloads WHERE endpoint = 'pools'")[0][0]
    if body is None:
        body = synthetic.dumps(pools_payload)[:5000]  # arrives whole (its Content-Length), but cut short
    elif body == "collapsed":
        body = synthetic.dumps({"status": "success", "data": pools_payload["data"][:100]})
        archive_payloads(warehouse, clock.today() - dt.timedelta(days=1), pools_payload, protocols)
        before = snapshot_of(query)
    http.set("/pools", body)

    result = materialize(all_assets(), resources, raise_on_error=False)

    message = failure_message(result)
    assert reason in message and "raw_payload_quarantine id" in message and "fetched at" in message
    assert not retried(result)  # the same response would be refused again
    assert snapshot_of(query) == before  # the good capture and every table as they were
    assert query("SELECT fetched_at FROM raw_payloads WHERE endpoint = 'pools' AND partition_date = %s",
                 (clock.today(),)) == [(kept_at,)]
    (row,) = quarantined(query)
    assert row[:3] == ("pools", clock.today(), "refused") and reason in row[3]
    assert row[4] == hashlib.sha256(body).hexdigest()  # the body itself is kept, byte for byte
    stored = query("SELECT size_bytes FROM raw_payload_quarantine")[0][0]
    assert stored == len(body)


def test_a_later_good_capture_replaces_an_earlier_one_and_leaves_nothing_pending(
        resources, http, query, warehouse, small_day):
    pools_payload, protocols = small_day
    earlier = store_today(warehouse, pools_payload, protocols, hours_ago=4)
    newer = synthetic.evolve_pools(pools_payload, seed=3)
    serve(http, newer, protocols)
    result = materialize(all_assets(), resources)
    assert result.success
    (sha, fetched_at), = query("SELECT sha256, fetched_at FROM raw_payloads WHERE endpoint = 'pools'")
    assert sha == hashlib.sha256(synthetic.dumps(newer)).hexdigest() and fetched_at > earlier
    assert quarantined(query) == []  # the pending rows were released with the upsert


def test_the_quarantine_keeps_a_bounded_number_of_refused_captures(resources, http, query, small_day, monkeypatch):
    monkeypatch.setenv("LLAMA_QUARANTINE_KEEP", "2")
    serve(http, *small_day)
    for attempt in range(4):
        http.set("/pools", f"<html>outage {attempt}</html>".encode())
        assert not materialize(all_assets()[:1], resources, raise_on_error=False).success
    reasons = [row[3] for row in quarantined(query)]
    assert len(reasons) == 2 and all("is not JSON" in r for r in reasons)
    sizes = query("SELECT size_bytes FROM raw_payload_quarantine ORDER BY id")
    assert sizes == [(len(b"<html>outage 2</html>"),), (len(b"<html>outage 3</html>"),)]  # the newest two


def test_a_response_that_arrives_after_midnight_is_not_stored_under_the_day(
        resources, http, query, small_day, monkeypatch):
    pools_payload, protocols = small_day
    http.set("/protocols", synthetic.dumps(protocols))
    real = dt.datetime.now(dt.timezone.utc)
    day = real.date() - dt.timedelta(days=1)  # stand late on yesterday, a partition that exists
    almost_midnight = dt.datetime.combine(day, dt.time(23, 59, 52), tzinfo=dt.timezone.utc)
    monkeypatch.setenv(clock.OFFSET_ENV, str((almost_midnight - real).total_seconds()))
    midnight = threading.Event()

    def after_midnight(path: str) -> Response:
        # Answers only once the pipeline's clock has passed midnight: the fetch started on the day.
        while clock.today() == day:
            midnight.wait(0.05)
        return Response(body=synthetic.dumps(pools_payload))

    http.set_handler("/pools", after_midnight)
    result = materialize(all_assets(), resources, partition=day, raise_on_error=False)
    message = failure_message(result)
    assert f"after {day.isoformat()} ended" in message
    assert query("SELECT count(*) FROM raw_payloads WHERE endpoint = 'pools'") == [(0,)]
    assert [row[:3] for row in quarantined(query)] == [("pools", day, "refused")]


def test_a_day_that_has_ended_is_never_fetched_and_says_which_capture_it_keeps(
        resources, http, query, warehouse, small_day):
    pools_payload, protocols = small_day
    yesterday = clock.today() - dt.timedelta(days=1)
    archive_payloads(warehouse, yesterday, pools_payload, protocols)  # fetched at 23:00 that day
    before = query("SELECT endpoint, sha256, fetched_at FROM raw_payloads ORDER BY 1")
    serve(http, synthetic.evolve_pools(pools_payload, seed=5), protocols)  # today's data, which must not be used
    result = materialize(all_assets(), resources, partition=yesterday)
    assert result.success
    assert http.count("/pools") == 0 and http.count("/protocols") == 0
    assert query("SELECT endpoint, sha256, fetched_at FROM raw_payloads ORDER BY 1") == before
    metadata = result.asset_materializations_for_node("raw_pools")[0].metadata
    expected_at = dt.datetime.combine(yesterday, dt.time(23), tzinfo=dt.timezone.utc).isoformat()
    assert metadata["fetched_at"].value == expected_at
    assert f"keeps the /pools capture fetched at {expected_at}" in metadata["capture_kept"].value


def test_a_client_error_is_not_retried_by_the_run(resources, http, query, small_day):
    serve(http, *small_day)
    http.set("/pools", {"error": "payment required"}, status=402)
    result = materialize(all_assets()[:1], resources, raise_on_error=False)
    assert "HTTP 402" in failure_message(result)
    assert not retried(result)
    assert quarantined(query) == []  # nothing arrived to keep: a 402 is not a capture


def test_todays_archive_write_never_waits_behind_a_range_runs_table_locks(
        resources, http, query, warehouse, small_day):
    from llama_pipeline import schema
    from llama_pipeline.write.warehouse_lock import partition_lock_key

    serve(http, *small_day)
    # What a long range run holds for its whole write: the lock of every table it writes.
    holder = warehouse.connection()
    conn = holder.__enter__()
    with conn.cursor() as cur:
        for table in schema.metadata.tables:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(warehouse.schema_name, table),))
    outcome: dict = {}
    run = threading.Thread(target=lambda: outcome.update(
        result=materialize(all_assets()[:2], resources, raise_on_error=False)))
    run.start()
    waited = False
    try:
        with conn.cursor() as cur:
            while run.is_alive() and not waited:
                cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                waited = cur.fetchone()[0] > 0
                run.join(0.02)
    finally:
        holder.__exit__(None, None, None)  # let a waiting run go, so the test ends either way
        run.join()
    assert not waited, "today's raw archive write queued behind the range run's locks"
    assert outcome["result"].success
    assert query("SELECT count(*) FROM raw_payloads WHERE partition_date = %s", (clock.today(),)) == [(2,)]


def test_only_what_a_later_attempt_can_get_past_is_retryable():
    from llama_pipeline.fetch.http_client import FetchError

    assert [FetchError("x", status=s).retryable for s in (408, 429, 500, 503)] == [True] * 4
    assert [FetchError("x", status=s).retryable for s in (400, 401, 402, 403, 404, 410)] == [False] * 6
    assert FetchError("connection refused").retryable and not FetchError("x", unresolvable=True).retryable


def test_a_capture_left_pending_by_a_dead_run_is_marked_abandoned(resources, http, query, warehouse, small_day):
    from llama_pipeline.fetch import quarantine

    pools_payload, protocols = small_day
    body = synthetic.dumps(pools_payload)
    two_hours_ago = clock.now() - dt.timedelta(hours=2)
    quarantine.hold(warehouse, RawPayload("pools", clock.today(), "http://127.0.0.1/pools", two_hours_ago, 200,
                                          "application/json", body, 0), run_id="killed-run")
    serve(http, pools_payload, protocols)
    assert materialize(all_assets()[:2], resources).success
    assert [row[2:4] for row in quarantined(query)] == [
        ("refused", "abandoned: the run that fetched it stopped before validating it")]
    assert query("SELECT sha256 FROM raw_payloads WHERE endpoint = 'pools'") == [(hashlib.sha256(body).hexdigest(),)]
