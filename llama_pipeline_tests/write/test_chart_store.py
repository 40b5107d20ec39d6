"""Storing charts against a real PostgreSQL: a re-fetched chart replaces exactly its own pool's points
and set-aside points, a failed re-fetch keeps what was stored, and a pool twice in a batch keeps its last."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from llama_pipeline.fetch.chart_fetch import Fetched
from llama_pipeline.write.chart_store import CHART_ASSET, store_charts
from llama_pipeline_tests.testing import synthetic

START = dt.date(2026, 8, 1)
FETCHED_AT = dt.datetime(2026, 11, 20, 12, tzinfo=dt.timezone.utc)
POOLS = [str(uuid.UUID(int=n)) for n in (1, 2, 3)]


def chart(pool_id: str, start: dt.date, end: dt.date, *, seed: int = 0, bad_points: int = 0) -> bytes:
    document = synthetic.generate_chart(pool_id, start, end, seed=seed)
    for point in document["data"][:bad_points]:
        point["tvlUsd"] = "lots"
    return json.dumps(document).encode()


def fetched(pool_id: str, body: bytes | None, *, status: int = 200, error: str | None = None,
            at: dt.datetime = FETCHED_AT) -> Fetched:
    return Fetched(pool_id, f"http://127.0.0.1/chart/{pool_id}", at, status, body, error)


def store(warehouse, results: list[Fetched]) -> dict:
    with warehouse.connection() as conn:
        return store_charts(conn, warehouse.schema_name, results)


def points_of(query, pool_id: str) -> list[tuple]:
    return query("SELECT snapshot_date, tvl_usd, apy FROM pool_chart_points WHERE pool_id = %s "
                 "ORDER BY snapshot_date", (pool_id,))


def rejects_of(query, pool_id: str) -> list[tuple]:
    return query("SELECT partition_date, reason FROM rejects WHERE asset = %s AND record_key = %s ORDER BY id",
                 (CHART_ASSET, pool_id))


def expected(pool_id: str, start: dt.date, end: dt.date, *, seed: int = 0, bad_points: int = 0) -> list[tuple]:
    by_day: dict[dt.date, tuple] = {}
    for point in synthetic.generate_chart(pool_id, start, end, seed=seed)["data"][bad_points:]:
        day = dt.datetime.fromisoformat(point["timestamp"].replace("Z", "+00:00")).date()
        by_day[day] = (day, point["tvlUsd"], point["apy"])
    return [by_day[day] for day in sorted(by_day)]


def test_a_second_fetch_replaces_exactly_that_pools_points_and_rejects(warehouse, query):
    end = dt.date(2026, 11, 19)
    first = [fetched(POOLS[0], chart(POOLS[0], START, end, bad_points=2)),
             fetched(POOLS[1], chart(POOLS[1], START, end, bad_points=1)),
             fetched(POOLS[2], chart(POOLS[2], START, end))]
    spoiled = store(warehouse, first)
    assert {pool: parsed.rejected for pool, parsed in spoiled.items()} == {POOLS[0]: 2, POOLS[1]: 1}
    others_before = {pool: (points_of(query, pool), rejects_of(query, pool)) for pool in POOLS[1:]}
    assert len(others_before[POOLS[1]][0]) > 100 and len(others_before[POOLS[1]][1]) == 1

    # The pool's chart again, a day later: a shorter range, other values, one bad point instead of two.
    later = FETCHED_AT + dt.timedelta(days=1)
    again = chart(POOLS[0], dt.date(2026, 10, 1), end + dt.timedelta(days=1), seed=7, bad_points=1)
    assert store(warehouse, [fetched(POOLS[0], again, at=later)])[POOLS[0]].rejected == 1

    assert points_of(query, POOLS[0]) == expected(POOLS[0], dt.date(2026, 10, 1), end + dt.timedelta(days=1),
                                                  seed=7, bad_points=1)
    assert [day for day, _ in rejects_of(query, POOLS[0])] == [later.date()]
    assert {pool: (points_of(query, pool), rejects_of(query, pool)) for pool in POOLS[1:]} == others_before
    stored = points_of(query, POOLS[0])  # the first point was the bad one: the chart starts a day later
    assert query("SELECT point_count, first_day, fetched_at FROM raw_pool_charts WHERE pool_id = %s",
                 (POOLS[0],)) == [(len(stored), dt.date(2026, 10, 2), later)]


def test_a_failed_refetch_keeps_the_stored_chart_and_points(warehouse, query):
    end = dt.date(2026, 11, 19)
    store(warehouse, [fetched(POOLS[0], chart(POOLS[0], START, end, bad_points=1))])
    before = points_of(query, POOLS[0]), rejects_of(query, POOLS[0])
    store(warehouse, [fetched(POOLS[0], b"try later", status=503, error="HTTP 503",
                              at=FETCHED_AT + dt.timedelta(days=1))])
    assert (points_of(query, POOLS[0]), rejects_of(query, POOLS[0])) == before
    assert query("SELECT error, fetched_at FROM raw_pool_charts WHERE pool_id = %s", (POOLS[0],)) == [
        (None, FETCHED_AT)]


def test_a_pool_twice_in_one_batch_keeps_its_last_chart(warehouse, query):
    end = dt.date(2026, 11, 19)
    store(warehouse, [fetched(POOLS[0], chart(POOLS[0], START, end)),
                      fetched(POOLS[0], chart(POOLS[0], dt.date(2026, 11, 1), end, seed=3))])
    assert points_of(query, POOLS[0]) == expected(POOLS[0], dt.date(2026, 11, 1), end, seed=3)
