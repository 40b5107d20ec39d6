"""Judging a run's past days without a capture, against a real PostgreSQL: chart points or (for
/protocols) the day's /pools capture fill a day; nothing else does; the datasets' endpoints are not
judged."""

from __future__ import annotations

import datetime as dt

from llama_pipeline.fetch import day_sources
from llama_pipeline_tests.conftest import archive_payloads
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.write.test_chart_store import POOLS, chart, fetched, store

DAYS = (dt.date(2026, 9, 1), dt.date(2026, 9, 2), dt.date(2026, 9, 3))


def test_chart_points_and_the_pools_capture_fill_a_day_and_nothing_else_does(warehouse, query):
    store(warehouse, [fetched(POOLS[0], chart(POOLS[0], DAYS[0], DAYS[0])),
                      fetched(POOLS[1], chart(POOLS[1], DAYS[0], DAYS[0]))])
    protocols = synthetic.generate_protocols(10, seed=3)
    archive_payloads(warehouse, DAYS[1], synthetic.generate_pools(20, seed=3, protocols=protocols, day=DAYS[1]),
                     protocols)
    query("DELETE FROM raw_payloads WHERE endpoint = 'protocols' RETURNING 1")

    pools = day_sources.judge(warehouse, "pools", 3, [DAYS[0], DAYS[2]])
    assert pools.filled == {DAYS[0]: "chart history: 2 pools' chart points stored for the day (pool_chart_points)"}
    assert list(pools.empty) == [DAYS[2]]
    assert pools.failure_message().splitlines() == [
        "raw_pools (nothing to load) failed for 1 of 3 day(s):",
        f"{DAYS[2].isoformat()}: neither a stored /pools payload nor stored chart history, {day_sources.WHAT_TO_DO}"]

    protocols_days = day_sources.judge(warehouse, "protocols", 3, list(DAYS))
    assert set(protocols_days.filled) == {DAYS[0], DAYS[1]}
    assert protocols_days.filled[DAYS[1]].startswith("the day's stored /pools capture")
    assert list(protocols_days.empty) == [DAYS[2]]

    for endpoint in ("lend_borrow", "chain_list"):  # built from their own histories, not from /pools
        judged = day_sources.judge(warehouse, endpoint, 3, list(DAYS))
        assert judged.filled == {} and judged.empty == {}
