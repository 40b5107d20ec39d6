"""Lending history from the paid /chartLendBorrow: off without an API key; with one, it fills the days
without a /lendBorrow payload from the recorded samples, and the key is stored and shown nowhere."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import dagster as dg
import pytest

from llama_pipeline.defs.lend_borrow.history import lend_borrow_history
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.conftest import FIXTURES, all_assets, dataset_assets, materialize
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.testing.payload_server import Response

KEY = "k3y5ecret0123456789abcdef"
SAMPLES = {  # pool id -> recorded /chartLendBorrow sample
    "c4b05318-88af-4536-a834-f5fc8940d2d3": "chartLendBorrow_c4b05318-88af-4536-a834-f5fc8940d2d3_aave-v3_avax_usdc.json",
    "e96cbd55-a0a0-446a-89ba-ada6e2991d50": "chartLendBorrow_e96cbd55-a0a0-446a-89ba-ada6e2991d50_spark_avax_usdc.json",
}
TODAY = utc_today()

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")


def serve(http, small_day) -> None:
    pools_payload, protocols = small_day
    pools = [dict(p) for p in pools_payload["data"]]
    for pool, pool_id in zip(pools, SAMPLES):
        pool["pool"] = pool_id
    http.set("/pools", synthetic.dumps({**pools_payload, "data": pools}))
    http.set("/protocols", synthetic.dumps(protocols))
    http.set("/v2/chains", synthetic.dumps([{"name": "Ethereum", "gecko_id": "ethereum", "tvl": 1, "tokenSymbol": "ETH",
                                              "cmcId": "1027", "chainId": 1}]))
    http.set("/lendBorrow", synthetic.dumps([{"pool": pool_id, "apyBaseBorrow": 4.2, "totalSupplyUsd": 1e6,
                                              "totalBorrowUsd": 5e5, "ltv": 0.8} for pool_id in SAMPLES]))

    def chart(path: str) -> Response:
        parts = path.split("/")
        if parts[1] != KEY:
            return Response(status=402, body={"error": "a paid route: API key required"})
        name = SAMPLES.get(parts[-1])
        return Response(body=(FIXTURES / name).read_bytes()) if name else Response(status=400, body="invalid configID!")

    http.set_handler("/", chart)


def with_key(resources: dict, key: str) -> dict:
    client = resources["defillama"]
    fields = {name: getattr(client, name) for name in type(client).model_fields}
    return {**resources, "defillama": type(client)(**{**fields, "api_key": key})}


def backfill(resources, config: dict | None = None) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": (TODAY - dt.timedelta(days=1)).isoformat(),
            "dagster/asset_partition_range_end": TODAY.isoformat()}
    return dg.materialize([*all_assets(), *dataset_assets()], selection=[lend_borrow_history.key],
                          resources=resources, tags=tags, raise_on_error=False,
                          run_config={"ops": {"lend_borrow_history": {"config": {"requests_per_second": 0,
                                                                                 **(config or {})}}}})


def chart_requests(http) -> int:
    return sum(1 for _, path, _ in http.requests if "chartLendBorrow" in path)


def test_without_an_api_key_lending_history_is_off(resources, http, query, small_day):
    serve(http, small_day)
    assert materialize([*all_assets(), *dataset_assets()], resources).success
    result = backfill(resources)
    assert result.success
    assert chart_requests(http) == 0
    assert query("SELECT count(*) FROM lend_borrow_snapshots WHERE source = 'chart'") == [(0,)]


def test_with_a_key_history_fills_days_without_a_payload_and_the_key_stays_secret(resources, http, query,
                                                                                   small_day):
    serve(http, small_day)
    resources = with_key(resources, KEY)
    assert materialize([*all_assets(), *dataset_assets()], resources).success
    result = backfill(resources)
    assert result.success
    assert chart_requests(http) == 2
    aave = json.loads((FIXTURES / SAMPLES["c4b05318-88af-4536-a834-f5fc8940d2d3"]).read_bytes())
    days = {p["timestamp"][:10] for p in aave}
    rows = query("SELECT count(*), min(snapshot_date) FROM lend_borrow_snapshots WHERE source = 'chart' "
                 "AND pool_id = 'c4b05318-88af-4536-a834-f5fc8940d2d3'")
    assert rows == [(len(days - {TODAY.isoformat()}), dt.date(2022, 8, 8))]
    # today's row is the /lendBorrow payload's, never replaced by the chart
    assert query("SELECT source, apy_base_borrow FROM lend_borrow_snapshots WHERE snapshot_date = %s "
                 "AND pool_id = 'c4b05318-88af-4536-a834-f5fc8940d2d3'", (TODAY,)) == [("lend_borrow", 4.2)]
    # a supply-only pool has no borrow side
    assert query("SELECT count(*) FILTER (WHERE total_borrow_usd IS NOT NULL) FROM lend_borrow_snapshots "
                 "WHERE pool_id = 'e96cbd55-a0a0-446a-89ba-ada6e2991d50' AND source = 'chart'") == [(0,)]
    urls = [r[0] for r in query("SELECT url FROM raw_series WHERE endpoint = 'lend_borrow_chart'")]
    assert len(urls) == 2 and all("/***/yields/chartLendBorrow/" in url for url in urls)
    events = json.dumps([str(e) for e in result.all_events])
    assert KEY not in events and KEY not in json.dumps(query("SELECT * FROM raw_series"), default=str)


def test_a_wrong_key_is_recorded_without_the_key(resources, http, query, small_day):
    serve(http, small_day)
    assert materialize([*all_assets(), *dataset_assets()], resources).success
    resources = with_key(resources, "wrong" + KEY)
    assert backfill(resources).success
    errors = [r[0] for r in query("SELECT error FROM raw_series WHERE endpoint = 'lend_borrow_chart'")]
    assert len(errors) == 2 and all("HTTP 402" in e and KEY not in e for e in errors)
