"""Chain and protocol TVL history: fetched once per backfill, archived, upserted, resumable, polite;
failures recorded with their reason; served over real HTTP from the synthetic generators."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from llama_pipeline.defs.chain_tvl import checks as chain_checks
from llama_pipeline.defs.chain_tvl.assets import chain_tvl_daily
from llama_pipeline.defs.protocol_tvl import checks as protocol_checks
from llama_pipeline.defs.protocol_tvl.assets import protocol_tvl_daily
from llama_pipeline.fetch.payloads import decompress
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.conftest import all_assets, dataset_assets, materialize
from llama_pipeline_tests.testing import synthetic, synthetic_datasets
from llama_pipeline_tests.testing.payload_server import Response

DAILY = [*all_assets(), *dataset_assets()]
TODAY = utc_today()
RANGE = (TODAY - dt.timedelta(days=2), TODAY)


def load_today(resources, http, small_day, **sizes) -> dict:
    pools_payload, protocols = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    synthetic_datasets.serve(http, pools_payload, **{"lending": 50, "chains": 30, "chain_days": 400,
                                                      "protocol_days": 300, **sizes})
    assert materialize(DAILY, resources).success
    return pools_payload


def backfill(asset, resources, config: dict | None = None, checks=()) -> dg.ExecuteInProcessResult:
    tags = {"dagster/asset_partition_range_start": RANGE[0].isoformat(),
            "dagster/asset_partition_range_end": RANGE[1].isoformat()}
    return dg.materialize([*DAILY, *checks], selection=dg.AssetSelection.assets(asset), resources=resources,
                          tags=tags, run_config={"ops": {asset.key.path[-1]: {"config": {
                              "requests_per_second": 0, **(config or {})}}}},
                          raise_on_error=False)


def chain_requests(http) -> int:
    return sum(1 for _, path, _ in http.requests if path.startswith("/v2/historicalChainTvl/"))


def checks_of(module) -> list:
    return [c for c in vars(module).values() if isinstance(c, dg.AssetChecksDefinition)]


def test_every_chain_s_whole_history_is_fetched_once_and_archived(resources, http, query, small_day):
    load_today(resources, http, small_day)
    chains = [r[0] for r in query("SELECT name FROM chains WHERE name <> '(unknown)' ORDER BY name")]
    result = backfill(chain_tvl_daily, resources, {"requests_per_second": 50}, checks=checks_of(chain_checks))
    assert result.success
    assert chain_requests(http) == len(chains)  # once per chain, not once per day of the range
    assert query("SELECT count(DISTINCT chain), count(*), max(day) FROM chain_tvl_daily") == [
        (len(chains), len(chains) * 400, TODAY)]
    # every day the chain has, not only the range's; values arrive unchanged, the live point included
    series = synthetic_datasets.generate_chain_tvl("Ethereum", 400)
    assert query("SELECT min(day), tvl_usd FROM chain_tvl_daily WHERE chain = 'Ethereum' AND day = "
                 "(SELECT max(day) FROM chain_tvl_daily) GROUP BY tvl_usd") == [(TODAY, float(series[-1]["tvl"]))]
    assert query("SELECT min(day) FROM chain_tvl_daily WHERE chain = 'Ethereum'") == [(TODAY - dt.timedelta(days=399),)]
    # BSC is fetched under the /v2/chains spelling with the larger TVL ('BSC'; 'Binance' says 0, as in the real list)
    assert http.count("/v2/historicalChainTvl/BSC") == 1 and http.count("/v2/historicalChainTvl/Binance") == 0
    body, compression = query("SELECT body, compression FROM raw_series WHERE endpoint = 'chain_tvl' "
                              "AND series_key = 'Ethereum'")[0]
    assert decompress(bytes(body), compression) == synthetic.dumps(series)
    meta = result.asset_materializations_for_node("chain_tvl_daily")[0].metadata
    assert meta["series_fetched"].value == len(chains) and meta["requests_per_second"].value > 0
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_a_second_run_resumes_and_a_refetch_upserts(resources, http, query, small_day):
    load_today(resources, http, small_day)
    first = chain_requests(http)
    assert backfill(chain_tvl_daily, resources, {"chains": ["Ethereum", "Arbitrum"]}).success
    assert chain_requests(http) == first + 2
    assert backfill(chain_tvl_daily, resources).success  # the two fetched already are not fetched again
    chains = query("SELECT count(*) FROM chains WHERE name <> '(unknown)'")[0][0]
    assert chain_requests(http) == first + chains
    before = query("SELECT count(*) FROM chain_tvl_daily")
    assert backfill(chain_tvl_daily, resources, {"refetch_after_hours": 0, "chains": ["Ethereum"]}).success
    assert chain_requests(http) == first + chains + 1
    assert query("SELECT count(*) FROM chain_tvl_daily") == before  # upserted, not duplicated


def test_a_failing_chain_is_recorded_with_its_reason_and_the_rest_load(resources, http, query, small_day):
    load_today(resources, http, small_day)
    http.set("/v2/historicalChainTvl/Arbitrum", {"error": "unknown chain"}, status=400)
    http.set("/v2/historicalChainTvl/Ethereum", b"<html>maintenance</html>")
    result = backfill(chain_tvl_daily, resources, checks=checks_of(chain_checks))
    assert result.success
    errors = dict(query("SELECT series_key, error FROM raw_series WHERE error IS NOT NULL"))
    assert set(errors) == {"Arbitrum", "Ethereum"}
    assert "HTTP 400" in errors["Arbitrum"] and "not JSON" in errors["Ethereum"]
    assert query("SELECT count(*) FROM chain_tvl_daily WHERE chain IN ('Arbitrum', 'Ethereum')") == [(0,)]
    assert query("SELECT count(DISTINCT chain) FROM chain_tvl_daily")[0][0] > 10
    warning = [e for e in result.get_asset_check_evaluations() if e.check_name == "chain_tvl_series_healthy"][0]
    assert not warning.passed and warning.metadata["series_failed"].value == 2
    # the failures are fetched again by the next backfill, and a good response replaces them
    http.set("/v2/historicalChainTvl/Arbitrum", synthetic.dumps(synthetic_datasets.generate_chain_tvl("Arbitrum", 5)))
    assert backfill(chain_tvl_daily, resources, {"chains": ["Arbitrum"]}).success
    assert query("SELECT error IS NULL, point_count FROM raw_series WHERE series_key = 'Arbitrum'") == [(True, 5)]


def test_bad_points_are_set_aside_with_their_reason(resources, http, query, small_day):
    load_today(resources, http, small_day)
    series = synthetic_datasets.generate_chain_tvl("Ethereum", 10)
    series[2]["tvl"] = "lots"
    series[5] = {"tvl": 1}
    http.set("/v2/historicalChainTvl/Ethereum", synthetic.dumps(series))
    assert backfill(chain_tvl_daily, resources, {"chains": ["Ethereum"]}).success
    # a value that is not a number keeps its day (NULL) only through rejects: the point is set aside
    assert query("SELECT count(*) FROM chain_tvl_daily WHERE chain = 'Ethereum'") == [(8,)]
    reasons = [r[0] for r in query("SELECT reason FROM rejects WHERE asset = 'chain_tvl_daily' ORDER BY record_index")]
    assert len(reasons) == 2 and "tvl" in reasons[0] and "date: missing" in reasons[1]
    assert query("SELECT rejected_points FROM raw_series WHERE series_key = 'Ethereum'") == [(2,)]


def test_today_alone_fetches_no_history(resources, http, query, small_day):
    load_today(resources, http, small_day)
    assert chain_requests(http) == 0
    assert materialize([chain_tvl_daily], resources).success
    assert chain_requests(http) == 0


def test_protocols_by_pool_tvl_with_totals_and_suffixed_series_apart(resources, http, query, small_day):
    load_today(resources, http, small_day)
    result = backfill(protocol_tvl_daily, resources, {"limit": 5}, checks=checks_of(protocol_checks))
    assert result.success
    expected = [r[0] for r in query(
        "SELECT p.project FROM pool_snapshots s JOIN pools p USING (pool_id) GROUP BY 1 "
        "ORDER BY sum(s.tvl_usd) DESC, 1 LIMIT 5")]
    assert sorted(r[0] for r in query("SELECT DISTINCT slug FROM protocol_tvl_daily")) == sorted(expected)
    slug = expected[0]
    series = dict(query("SELECT chain, tvl_kind FROM protocol_tvl_daily WHERE slug = %s GROUP BY 1, 2", (slug,)))
    assert series["(total)"] == "tvl" and series["Ethereum"] == "tvl" and series["BSC"] == "tvl"  # Binance folded
    assert series["Ethereum-staking"] == "staking" and series["(total)-borrowed"] == "borrowed"
    assert query("SELECT count(*) FROM protocol_tvl_daily WHERE slug = %s AND chain = '(total)'", (slug,)) == [(300,)]
    assert all(e.passed for e in result.get_asset_check_evaluations())


def test_unknown_configured_slugs_fail_clearly(resources, http, query, small_day):
    load_today(resources, http, small_day)
    result = backfill(protocol_tvl_daily, resources, {"slugs": ["no-such-protocol"]})
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "no-such-protocol" in message and "not in projects" in message
    assert query("SELECT count(*) FROM raw_series") == [(0,)]
