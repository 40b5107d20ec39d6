"""The synthetic dataset payloads have the real samples' shapes, at full size."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from llama_pipeline.decode.chain_tvl_rows import parse_chain_list, parse_chain_tvl
from llama_pipeline.decode.protocol_tvl_rows import parse_protocol
from llama_pipeline_tests.conftest import FIXTURES
from llama_pipeline_tests.testing import synthetic, synthetic_datasets

AT = dt.datetime(2026, 12, 1, 23, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def pools_payload() -> dict:
    return synthetic.generate_pools(6000, seed=3)


def test_full_size_lending_and_chain_list(pools_payload):
    lending = synthetic_datasets.generate_lend_borrow(pools_payload, 2400, seed=3)
    assert len(lending) == 2400 and len({r["pool"] for r in lending}) == 2400
    assert {r["pool"] for r in lending} <= {p["pool"] for p in pools_payload["data"]}
    chains = synthetic_datasets.generate_chain_list(430)
    assert len(chains) == 430
    parsed = parse_chain_list(chains, AT.date())
    assert len(parsed.rows) == 428 and parsed.rejects == []  # 'BSC'/'Binance' and 'Avax'/'Avalanche' fold
    if FIXTURES.is_dir():  # the same fields as the recorded samples
        real_lending = json.loads((FIXTURES / "lendBorrow_sample_aave-strat_2026-05-28.json").read_bytes())
        assert set(lending[0]) == set(real_lending[0])
        real_chains = json.loads((FIXTURES / "v2_chains_2026-03-04.json").read_bytes())
        assert set(chains[0]) == set(real_chains[0])


def test_a_chain_has_3000_days_ending_with_today_s_live_point():
    series = synthetic_datasets.generate_chain_tvl("Ethereum", 3000, today=AT.date())
    parsed = parse_chain_tvl("Ethereum", synthetic.dumps(series), AT)
    assert len(parsed.rows) == 3000 and parsed.rows["day"].max() == AT.date()
    assert series[-1]["date"] % 86400 != 0  # the live point is not at midnight


def test_a_large_protocol_is_tens_of_mb_and_parses_once():
    detail = synthetic_datasets.generate_protocol("aave-v3", days=1200, chains=14, tokens=40, today=AT.date())
    body = synthetic.dumps(detail)
    assert len(body) > 20_000_000  # like aave-v3's 28 MB
    parsed = parse_protocol("aave-v3", body, AT)
    assert parsed.rejects == []
    assert len(parsed.rows) == 1200 * (1 + 14 + 2)  # the total, 14 chains, -staking and borrowed
    if FIXTURES.is_dir():
        real = json.loads((FIXTURES / "protocol_giza_2026-03-04.json").read_bytes())
        assert {"tvl", "chainTvls", "currentChainTvls"} <= set(detail) <= set(real) | {"isParentProtocol"}
        assert set(next(iter(detail["chainTvls"].values()))) == set(next(iter(real["chainTvls"].values())))
