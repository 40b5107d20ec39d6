"""The ``/chart/{pool}`` model against the recorded charts and odd points."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from llama_pipeline.decode.charts import parse_chart
from llama_pipeline_tests.conftest import FIXTURES

POOL = "66985a81-9c51-46ca-9977-42b4fe7bc6df"
CHARTS = "chart_PaulApivat-pipe_converted-from-parquet_2025-10-06_multi-pool.json"


def chart(points: list) -> bytes:
    return json.dumps({"status": "success", "data": points}).encode()


def point(day: int, **values) -> dict:
    return {"timestamp": f"2024-01-{day:02d}T23:01:27.607Z", "tvlUsd": 100 + day, "apy": 1.5, **values}


@pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")
def test_recorded_charts_load_one_point_per_day():
    charts = json.loads((FIXTURES / CHARTS).read_bytes())
    total = 0
    for pool_id, document in charts.items():
        parsed = parse_chart(pool_id, json.dumps(document).encode())
        assert parsed.rejects == []
        days = [p[0] for p in parsed.points]
        assert days == sorted(set(days)) and {p[1] for p in parsed.points} == {pool_id}
        total += len(parsed.points)
    assert len(charts) == 479 and total == 73201
    first = charts["4f715567-420c-400d-9a62-0059331e3940"]["data"][0]
    parsed = parse_chart("4f715567-420c-400d-9a62-0059331e3940",
                         json.dumps(charts["4f715567-420c-400d-9a62-0059331e3940"]).encode())
    assert parsed.points[0][:6] == (dt.date(2025, 6, 16), "4f715567-420c-400d-9a62-0059331e3940",
                                    first["tvlUsd"], first["apy"], first["apyBase"], None)


def test_the_last_point_of_a_day_wins_and_times_are_utc():
    parsed = parse_chart(POOL, chart([point(1, apy=1.0), {**point(1, apy=2.0), "timestamp": "2024-01-01T23:59:00Z"},
                                      {**point(2), "timestamp": "2024-01-03T01:00:00+05:00"},
                                      {**point(4), "pricePerShare": 1.25, "unknown": 1}]))
    assert [(p[0], p[3]) for p in parsed.points] == [(dt.date(2024, 1, 1), 2.0), (dt.date(2024, 1, 2), 1.5),
                                                     (dt.date(2024, 1, 4), 1.5)]
    assert parsed.points[-1][-1] == 1.25 and parsed.rejects == []


@pytest.mark.parametrize(("odd", "reason"), [
    (None, "point 1 is not an object"),
    ({"tvlUsd": 5}, "timestamp: missing or empty"),
    ({"timestamp": "yesterday"}, "timestamp: not an ISO 8601 time 'yesterday'"),
    ({"timestamp": "2024-01-02T00:00:00Z", "apy": "abc"}, "apy: expected a number, got 'abc'"),
    ({"timestamp": "2024-01-02T00:00:00Z", "apy": math.nan}, "apy: not a finite number"),
    ({"timestamp": "2024-01-02T00:00:00Z", "tvlUsd": 10**400}, "tvlUsd: number out of range"),
])
def test_an_unreadable_point_is_set_aside_the_rest_loads(odd, reason):
    parsed = parse_chart(POOL, chart([point(1), odd, point(3)]))
    assert [p[0].day for p in parsed.points] == [1, 3]
    assert parsed.rejected == 1 and parsed.rejects[0].record_index == 1 and reason in parsed.rejects[0].reason
    assert parsed.rejects[0].reason.startswith("point 1: ") and parsed.rejects[0].record_key == POOL


def test_numeric_strings_are_numbers():
    parsed = parse_chart(POOL, chart([point(1, apy="12.5")]))
    assert parsed.points[0][3] == 12.5 and parsed.rejects == []


@pytest.mark.parametrize(("raw", "reason"), [
    (b"<html>", "is not JSON"),
    (b'{"status": "error", "data": []}', "is not a successful"),
    (b'"invalid configID!"', "is not a successful"),
    (b'{"status": "success", "data": 5}', "has no list of points"),
])
def test_a_body_that_is_not_a_chart_raises(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_chart(POOL, raw)
