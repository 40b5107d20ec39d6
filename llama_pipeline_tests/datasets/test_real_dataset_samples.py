"""The recorded samples of /lendBorrow, /v2/chains, /v2/historicalChainTvl and /protocol load as the
synthetic ones do, parsed directly and through the graph over real HTTP."""

from __future__ import annotations

import datetime as dt

import pytest

from llama_pipeline.decode.chain_tvl_rows import parse_chain_list, parse_chain_tvl
from llama_pipeline.decode.lend_borrow_rows import parse_lend_borrow
from llama_pipeline.decode.protocol_tvl_rows import parse_protocol
from llama_pipeline.fetch.payloads import decode_records
from llama_pipeline.schema_datasets import TOTAL_CHAIN
from llama_pipeline_tests.conftest import FIXTURES, all_assets, dataset_assets, materialize

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")

LEND_BORROW = "lendBorrow_sample_aave-strat_2026-05-28.json"
POOLS_120 = "pools_sample120_aave-strat_2026-05-28.json"
CHAINS = "v2_chains_2026-03-04.json"
AVALANCHE = "historicalChainTvl_Avalanche_2026-03-04.json"
GIZA = "protocol_giza_2026-03-04.json"
UNISWAP = "protocol_uniswap_wrapped_2026-07-22.json"
AT = dt.datetime(2026, 3, 4, 23, tzinfo=dt.timezone.utc)


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_lend_borrow_sample_parses_completely_and_joins_the_pools_sample():
    records = decode_records("lend_borrow", read(LEND_BORROW), LEND_BORROW)
    pools = {p["pool"]: (p["rewardTokens"], p["underlyingTokens"])
             for p in decode_records("pools", read(POOLS_120), POOLS_120)}
    parsed = parse_lend_borrow(records, dt.date(2026, 5, 28), pools)
    assert len(records) == 41 and parsed.rejects == [] and parsed.invalid_values == 0
    assert set(parsed.rows["pool_id"]) <= set(pools)
    rows = parsed.rows.set_index("pool_id")
    assert rows.loc["27296bf9-617a-46e4-9d6d-eefc71e9e0b6", "apy_base_borrow"] == 4.88305
    assert int(rows["debt_ceiling_usd"].notna().sum()) == 1 and rows["borrow_factor"].isna().all()
    assert set(rows["minted_coin"].dropna()) == {"GHO", "WBTC"}
    assert rows["extra"].isna().all()  # every field has a column


def test_chains_sample_folds_spellings_and_keeps_ids():
    records = decode_records("chain_list", read(CHAINS), CHAINS)
    parsed = parse_chain_list(records, dt.date(2026, 3, 4))
    assert len(records) == 434 and parsed.rejects == [] and parsed.invalid_values == 0
    rows = parsed.rows.set_index("name")
    assert len(rows) == 432  # BSC/Binance and OP Mainnet/Optimism are one network each
    assert (rows.loc["Avalanche", "chain_id"], rows.loc["Avalanche", "gecko_id"]) == (43114, "avalanche-2")
    assert {"BSC", "Binance"} <= set(rows.loc["BSC", "aliases"])
    assert parsed.api_names["BSC"] == "BSC"  # the spelling with TVL ('Binance' says 0)
    assert int(rows["chain_id"].notna().sum()) >= 229


def test_avalanche_history_has_one_point_per_day_back_to_2021():
    parsed = parse_chain_tvl("Avalanche", read(AVALANCHE), AT)
    assert parsed.rejects == []
    days = sorted(parsed.rows["day"])
    assert len(days) == 1857 and days[0] == dt.date(2021, 2, 3) and days[-1] == dt.date(2026, 3, 5)
    assert len(set(days)) == len(days)


def test_protocol_samples_keep_total_chains_and_suffixed_series_apart():
    giza = parse_protocol("giza", read(GIZA), AT)
    assert giza.rejects == []
    assert set(giza.rows["chain"]) == {TOTAL_CHAIN, "Plasma", "Hyperliquid L1", "Arbitrum", "Base"}
    # the sample's last two points fall on one day: the later (live) one is kept
    total = giza.rows[giza.rows["chain"] == TOTAL_CHAIN].set_index("day")["tvl_usd"]
    assert len(total) == 148 and total[dt.date(2026, 3, 4)] == 9697707
    uniswap = parse_protocol("uniswap", read(UNISWAP), AT)  # wrapped as {"chain", "raw"} by its recorder
    kinds = uniswap.rows.groupby("tvl_kind")["chain"].nunique()
    assert kinds["tvl"] >= 40 and (uniswap.rows["tvl_kind"] != "tvl").sum() >= 0
    assert uniswap.rows.groupby(["chain", "day"]).size().max() == 1


def test_lend_borrow_sample_through_the_graph_over_http(resources, http, query):
    http.set("/pools", read(POOLS_120))
    http.set("/protocols", read("protocols_openbb-cassette_2022-01-29_first10.json"))
    http.set("/lendBorrow", read(LEND_BORROW))
    http.set("/v2/chains", read(CHAINS))
    assert materialize([*all_assets(), *dataset_assets()], resources).success
    assert query("SELECT count(*) FROM lend_borrow_snapshots l JOIN pools p USING (pool_id) "
                 "WHERE p.project <> '(unknown)'") == [(41,)]
    assert query("SELECT count(*) FROM rejects") == [(0,)]
    assert query("SELECT chain_id, token_symbol FROM chains WHERE name = 'Ethereum'") == [(1, "ETH")]
