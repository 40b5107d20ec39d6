"""Lending and chain ids load with the yields in the daily graph, on a real PostgreSQL and a real HTTP
server; bad input fails clearly and writes nothing; bad records are set aside with reasons."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from llama_pipeline.defs.chain_tvl import checks as chain_checks
from llama_pipeline.defs.lend_borrow import checks as lend_checks
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.conftest import all_assets, dataset_assets, materialize
from llama_pipeline_tests.testing import synthetic, synthetic_datasets

DAILY = [*all_assets(), *dataset_assets()]


def serve_day(http, small_day, **sizes) -> tuple[dict, list]:
    pools_payload, protocols = small_day
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols))
    synthetic_datasets.serve(http, pools_payload, **{"lending": 120, "chains": 60, **sizes})
    return pools_payload, protocols


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def run_with_checks(resources, partition=None) -> dg.ExecuteInProcessResult:
    checks = [c for module in (lend_checks, chain_checks) for c in vars(module).values()
              if isinstance(c, dg.AssetChecksDefinition)]
    return dg.materialize([*DAILY, *checks], resources=resources,
                          partition_key=(partition or utc_today()).isoformat(), raise_on_error=False)


def test_daily_graph_loads_lending_and_chain_ids_with_the_yields(resources, http, query, small_day):
    pools_payload, _ = serve_day(http, small_day)
    result = run_with_checks(resources)
    assert result.success
    today = utc_today()
    lending = synthetic_datasets.generate_lend_borrow(pools_payload, 120)
    assert query("SELECT count(*), min(snapshot_date) FROM lend_borrow_snapshots") == [(120, today)]
    first = lending[0]
    assert query("SELECT apy_base_borrow, total_supply_usd, ltv, borrowable FROM lend_borrow_snapshots "
                 "WHERE pool_id = %s", (first["pool"],)) == [
        (first["apyBaseBorrow"], float(first["totalSupplyUsd"]), first["ltv"], first["borrowable"])]
    # tokens are kept only where they differ from the pool's own
    differ = [r for r in lending if r["rewardTokens"] != next(p for p in pools_payload["data"]
                                                               if p["pool"] == r["pool"])["rewardTokens"]]
    assert differ
    assert query("SELECT count(*) FROM lend_borrow_snapshots WHERE reward_tokens IS NOT NULL") == [(len(differ),)]
    # the archive holds both payloads byte for byte, under the same rules as /pools
    assert {r[0] for r in query("SELECT endpoint FROM raw_payloads")} == {"pools", "protocols", "lend_borrow",
                                                                         "chain_list"}
    # /v2/chains enriches chains through the alias map: 'Binance' and 'BSC' are the one BSC row
    assert query("SELECT count(*) FROM chains WHERE name = 'Binance'") == [(0,)]
    bsc = query("SELECT aliases, gecko_id, cmc_id FROM chains WHERE name = 'BSC'")[0]
    assert {"BSC", "Binance"} <= set(bsc[0])
    assert query("SELECT count(*) FROM chains WHERE name LIKE 'Synthchain %%'") == [(60 - 42,)]
    # history is not fetched by the daily run of today
    assert query("SELECT count(*) FROM chain_tvl_daily") == [(0,)]
    assert http.count("/v2/historicalChainTvl/Ethereum") == 0
    evaluations = checks_of(result)
    assert evaluations["lend_borrow_snapshots:lend_borrow_counts_add_up"].passed
    assert evaluations["chain_metadata:chain_list_counts_add_up"].passed
    assert evaluations["lend_borrow_snapshots:lend_borrow_pools_in_pools"].passed


def test_chain_ids_survive_a_later_write_of_chains_from_pools(resources, http, query, small_day):
    serve_day(http, small_day)
    assert materialize(DAILY, resources).success
    before = query("SELECT name, gecko_id, token_symbol, cmc_id, chain_id FROM chains ORDER BY name")
    assert any(row[1] for row in before)
    from llama_pipeline.defs.warehouse.assets import CHAINS
    assert materialize([CHAINS], resources).success  # /pools and /protocols carry no ids
    assert query("SELECT name, gecko_id, token_symbol, cmc_id, chain_id FROM chains ORDER BY name") == before


def test_a_lending_pool_missing_from_pools_still_gets_a_pools_row(resources, http, query, small_day):
    pools_payload, _ = serve_day(http, small_day)
    records = synthetic_datasets.generate_lend_borrow(pools_payload, 50, unknown=3)
    http.set("/lendBorrow", synthetic.dumps(records))
    result = run_with_checks(resources)
    assert result.success
    assert query("SELECT count(*) FROM lend_borrow_snapshots") == [(53,)]
    assert query("SELECT count(*) FROM pools WHERE chain = '(unknown)' AND project = '(unknown)'") == [(3,)]
    warning = checks_of(result)["lend_borrow_snapshots:lend_borrow_pools_in_pools"]
    assert not warning.passed and warning.metadata["pools_unknown_to_pools"].value == 3


def test_bad_records_are_set_aside_with_reasons_and_bad_values_cost_one_value(resources, http, query, small_day):
    pools_payload, _ = serve_day(http, small_day)
    records = synthetic_datasets.generate_lend_borrow(pools_payload, 20)
    records[3]["ltv"] = "eighty percent"
    records[4]["pool"] = "not-a-uuid"
    records.append(dict(records[0]))  # a duplicate id
    records.append("a string")
    http.set("/lendBorrow", synthetic.dumps(records))
    result = run_with_checks(resources)
    assert result.success
    assert query("SELECT count(*) FROM lend_borrow_snapshots") == [(19,)]
    reasons = sorted(r[0] for r in query("SELECT reason FROM rejects WHERE asset = 'lend_borrow_snapshots'"))
    assert len(reasons) == 3
    assert any("malformed pool id" in r for r in reasons) and any("duplicate" in r for r in reasons)
    assert any("expected an object" in r for r in reasons)
    ltv, extra = query("SELECT ltv, extra FROM lend_borrow_snapshots WHERE pool_id = %s", (records[3]["pool"],))[0]
    assert ltv is None and "ltv" in extra["_invalid_fields"]
    assert checks_of(result)["lend_borrow_snapshots:lend_borrow_counts_add_up"].passed


def test_a_broken_lend_borrow_payload_fails_clearly_and_writes_nothing_of_it(resources, http, query, small_day):
    serve_day(http, small_day)
    http.set("/lendBorrow", b'[{"pool": "27296bf9-617a-46e4-9d6d-eefc71e9e0b6", "ltv": 0.')  # cut short
    result = materialize(DAILY, resources, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.get_step_failure_events() if e.step_key == "raw_lend_borrow"][0]
    message = failure.event_specific_data.error.message
    assert "lend_borrow payload" in message and "truncated" in message
    assert query("SELECT count(*) FROM raw_payloads WHERE endpoint = 'lend_borrow'") == [(0,)]
    assert query("SELECT count(*) FROM lend_borrow_snapshots") == [(0,)]
    assert query("SELECT count(*) FROM pool_snapshots") != [(0,)]  # the yields are not held back by it


def test_a_past_day_without_a_lend_borrow_payload_is_never_filled_with_today(resources, http, query, small_day):
    serve_day(http, small_day)
    yesterday = utc_today() - dt.timedelta(days=1)
    from llama_pipeline.defs.lend_borrow.assets import lend_borrow_snapshots, raw_lend_borrow
    result = materialize([raw_lend_borrow, lend_borrow_snapshots], resources, yesterday)
    assert result.success
    assert http.count("/lendBorrow") == 0
    assert query("SELECT count(*) FROM lend_borrow_snapshots") == [(0,)]
