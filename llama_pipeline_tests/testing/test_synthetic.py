"""The synthetic generator must reproduce the real payloads' shapes, quirks and sizes."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from llama_pipeline_tests.testing import synthetic

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "defillama"
DAY = dt.date(2025, 10, 6)


def _fixture(pattern: str) -> Path:
    matches = sorted(FIXTURES.glob(pattern)) if FIXTURES.is_dir() else []
    if not matches:
        pytest.skip(f"real DeFiLlama samples not available at {FIXTURES}")
    return matches[0]


@pytest.fixture(scope="module")
def full_day() -> dict:
    """One full-size day (generate + serialize both endpoints); its speed is measured in benchmarks/."""
    protocols = synthetic.generate_protocols(seed=0)
    pools = synthetic.generate_pools(seed=0, protocols=protocols, day=DAY)
    protocols_bytes, pools_bytes = synthetic.dumps(protocols), synthetic.dumps(pools)
    return {"protocols": protocols, "pools": pools, "protocols_bytes": protocols_bytes,
            "pools_bytes": pools_bytes}


@pytest.fixture(scope="module")
def pools(full_day: dict) -> list[dict]:
    return full_day["pools"]["data"]


@pytest.fixture(scope="module")
def protocols(full_day: dict) -> list[dict]:
    return full_day["protocols"]


# -- size, speed, determinism ---------------------------------------------------------------------
def test_full_size_day_is_realistic_in_size(full_day: dict) -> None:
    assert len(full_day["pools"]["data"]) == 17000
    assert len(full_day["protocols"]) == 7000
    assert 10e6 <= len(full_day["pools_bytes"]) <= 12e6
    assert 6e6 <= len(full_day["protocols_bytes"]) <= 8e6


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    a = synthetic.dumps(synthetic.generate_pools(2000, seed=3, day=DAY))
    b = synthetic.dumps(synthetic.generate_pools(2000, seed=3, day=DAY))
    c = synthetic.dumps(synthetic.generate_pools(2000, seed=4, day=DAY))
    assert a == b
    assert a != c
    assert synthetic.dumps(synthetic.generate_protocols(500, seed=3)) == synthetic.dumps(
        synthetic.generate_protocols(500, seed=3))
    assert synthetic.generate_protocols(500, seed=3) != synthetic.generate_protocols(500, seed=4)


def test_dumps_is_compact_utf8_json() -> None:
    out = synthetic.dumps({"a": [1, 2.5, None], "d": "déjà — ok"})
    assert out == '{"a":[1,2.5,null],"d":"déjà — ok"}'.encode()


# -- /pools ---------------------------------------------------------------------------------------
def test_pool_fields_equal_the_real_sample() -> None:
    real = json.loads(_fixture("pools_aujl-*.json").read_text())["data"]
    real_fields = {k for p in real for k in p}
    generated = synthetic.generate_pools(200, seed=1)["data"]
    assert {k for p in generated for k in p} == real_fields
    assert all(tuple(p) == tuple(real[0]) for p in generated)  # same key order as the API


def test_pool_envelope_fields_and_types(full_day: dict, pools: list[dict]) -> None:
    assert set(full_day["pools"]) == {"status", "data"} and full_day["pools"]["status"] == "success"
    num_or_null = ("apyBase", "apyReward", "apyPct1D", "apyPct7D", "apyPct30D", "il7d", "apyBase7d",
                   "apyMean30d", "volumeUsd1d", "volumeUsd7d", "apyBaseInception")
    for p in pools:
        assert tuple(p) == synthetic.POOL_FIELDS
        assert all(isinstance(p[k], str) for k in ("chain", "project", "symbol", "pool"))
        assert type(p["tvlUsd"]) is int and type(p["count"]) is int
        assert type(p["apy"]) in (int, float)
        assert all(p[k] is None or type(p[k]) in (int, float) for k in num_or_null)
        assert type(p["mu"]) in (int, float) and type(p["sigma"]) in (int, float)
        assert type(p["stablecoin"]) is bool and type(p["outlier"]) is bool
        assert p["ilRisk"] in ("yes", "no") and p["exposure"] in ("single", "multi")
        assert p["poolMeta"] is None or isinstance(p["poolMeta"], str)
        for k in ("rewardTokens", "underlyingTokens"):
            assert p[k] is None or (isinstance(p[k], list) and all(isinstance(t, str) for t in p[k]))
        assert set(p["predictions"]) == {"predictedClass", "predictedProbability", "binnedConfidence"}
        assert str(uuid.UUID(p["pool"])) == p["pool"]
    assert len({p["pool"] for p in pools}) == len(pools)


def test_pool_quirks_are_present(pools: list[dict]) -> None:
    tvl = [p["tvlUsd"] for p in pools]
    assert tvl == sorted(tvl, reverse=True)
    assert tvl[0] > 2e10
    assert 1e5 < max(p["apy"] for p in pools) < 4e5
    assert any(p["predictions"]["predictedProbability"] == 56.00000000000001 for p in pools)
    assert any(p["predictions"]["predictedClass"] is None for p in pools)
    assert any((p["apyBaseInception"] or 0) < 0 for p in pools)
    assert any(p["apy"] == 0 and p["apyBase"] is None and p["apyReward"] is None for p in pools)
    for key in ("underlyingTokens", "rewardTokens"):
        kinds = Counter("null" if p[key] is None else ("empty" if p[key] == [] else "list") for p in pools)
        assert set(kinds) == {"null", "empty", "list"}, key
    assert {"single", "multi"} == {p["exposure"] for p in pools}
    assert any(p["outlier"] for p in pools) and any(p["stablecoin"] for p in pools)


def test_pool_numbers_are_rounded_to_five_decimals(pools: list[dict]) -> None:
    too_long = re.compile(r"\.\d{6,}")
    for p in pools:
        for k, v in p.items():
            if isinstance(v, float):
                assert not too_long.search(repr(v)), (k, v)


def test_pools_share_project_chain_symbol_and_differ_by_pool_meta(pools: list[dict]) -> None:
    groups: dict[tuple, set] = defaultdict(set)
    for p in pools:
        groups[(p["project"], p["chain"], p["symbol"])].add(p["poolMeta"])
    assert sum(len(metas) > 1 for metas in groups.values()) >= 5


def test_pools_use_pools_chain_spellings(pools: list[dict]) -> None:
    chains = Counter(p["chain"] for p in pools)
    assert {"BSC", "Gnosis", "Avalanche", "ZKsync Era", "XRPL", "opBNB", "Opbnb", "Op_bnb", "Zksync"} <= set(chains)
    assert not {"Binance", "xDai", "Avax", "zkSync Era", "Ripple", "Op_Bnb"} & set(chains)
    assert all(chains[c] <= 10 for c in ("Opbnb", "Op_bnb", "Zksync"))  # rare, as in the real sample


def test_pool_projects_mostly_join_protocol_slugs(pools: list[dict], protocols: list[dict]) -> None:
    slugs = {p["slug"] for p in protocols}
    projects = Counter(p["project"] for p in pools)
    absent = [name for name in projects if name not in slugs]
    assert absent, "some pool projects must have no /protocols entry"
    assert sum(projects[name] for name in absent) < 0.25 * len(pools)
    assert len(projects) > 200


def test_days_keep_ids_and_dimensions_and_move_metrics() -> None:
    a = {p["pool"]: p for p in synthetic.generate_pools(3000, seed=5, day=DAY)["data"]}
    b = {p["pool"]: p for p in synthetic.generate_pools(3000, seed=5, day=DAY + dt.timedelta(days=1))["data"]}
    assert a.keys() == b.keys()
    dims = ("chain", "project", "symbol", "poolMeta", "underlyingTokens", "exposure", "ilRisk", "stablecoin")
    assert all(tuple(a[k][d] for d in dims) == tuple(b[k][d] for d in dims) for k in a)
    assert sum(a[k]["tvlUsd"] != b[k]["tvlUsd"] for k in a) > 0.9 * len(a)
    assert sum(b[k]["count"] == a[k]["count"] + 1 for k in a) > 0.95 * len(a)
    # Pool i's id depends on (seed, i) only, not on n.
    small = {p["pool"] for p in synthetic.generate_pools(100, seed=5, day=DAY)["data"]}
    assert small <= a.keys()


def test_evolve_pools(full_day: dict) -> None:
    before = full_day["pools"]
    snapshot = synthetic.dumps(before)
    after = synthetic.evolve_pools(before, seed=11)
    assert synthetic.dumps(before) == snapshot, "input must not be mutated"
    assert synthetic.dumps(after) == synthetic.dumps(synthetic.evolve_pools(before, seed=11))
    old = {p["pool"]: p for p in before["data"]}
    new = {p["pool"]: p for p in after["data"]}
    n = len(old)
    gone, added = old.keys() - new.keys(), new.keys() - old.keys()
    assert 0.005 * n < len(gone) < 0.015 * n
    assert len(added) == round(0.02 * n)
    dims = ("chain", "project", "symbol", "poolMeta", "underlyingTokens", "exposure")
    changed = sum(tuple(old[k][d] for d in dims) != tuple(new[k][d] for d in dims) for k in old.keys() & new.keys())
    assert 0.03 * n < changed < 0.07 * n
    assert any(old[k]["project"] != new[k]["project"] for k in old.keys() & new.keys())
    assert sum(old[k]["tvlUsd"] != new[k]["tvlUsd"] for k in old.keys() & new.keys()) > 0.9 * n
    assert tuple(after["data"][0]) == synthetic.POOL_FIELDS and after["status"] == "success"
    tvl = [p["tvlUsd"] for p in after["data"]]
    assert tvl == sorted(tvl, reverse=True)
    assert all(new[k]["count"] == 1 for k in added)


# -- /protocols -----------------------------------------------------------------------------------
def test_protocol_keys_overlap_the_real_sample(protocols: list[dict]) -> None:
    real = json.loads(_fixture("protocols_Jolina1205-*.json").read_text())
    real_keys = {k for p in real for k in p}
    generated_keys = {k for p in protocols for k in p}
    assert real_keys <= generated_keys
    assert len(real_keys & generated_keys) / len(real_keys | generated_keys) >= 0.9


def test_protocol_types_and_quirks(protocols: list[dict]) -> None:
    def types(key: str) -> set[type]:
        return {type(p[key]) for p in protocols if key in p}

    assert types("id") == {str} and types("cmcId") == {str, type(None)}
    assert types("audits") == {str, type(None)}
    assert types("deadFrom") == {int, str}
    assert types("methodology") == {str, bool} and sum(p.get("methodology") is True for p in protocols) == 1
    assert any(p["tvl"] is None for p in protocols) and any(p["tvl"] == 0 for p in protocols)
    assert sum(p["mcap"] is None for p in protocols) > 0.4 * len(protocols)
    assert any("chain" not in p for p in protocols) and any("listedAt" not in p for p in protocols)
    assert any(p["symbol"] == "-" for p in protocols)
    assert any(re.fullmatch(r"bsc:0x[0-9a-f]{40}", p["address"] or "") for p in protocols)
    assert all(k in p for p in protocols for k in ("change_1h", "change_1d", "change_7d", "chainTvls", "slug"))
    assert len({p["slug"] for p in protocols}) == len(protocols)
    assert len({p["id"] for p in protocols}) == len(protocols)
    tvl = [p["tvl"] for p in protocols if p["tvl"] is not None]
    assert tvl == sorted(tvl, reverse=True)


def test_protocol_chain_spellings_and_chain_tvls(protocols: list[dict]) -> None:
    chains = {c for p in protocols for c in p["chains"]}
    assert {"Binance", "xDai", "Avax", "Avalanche", "zkSync Era", "Ripple", "Op_Bnb", "Ethereum", "Arbitrum"} <= chains
    assert not {"BSC", "Gnosis", "XRPL", "opBNB", "ZKsync Era"} & chains
    keys = {k for p in protocols for k in p["chainTvls"]}
    for suffix in ("staking", "pool2", "borrowed", "vesting", "treasury", "offers"):
        assert f"Ethereum-{suffix}" in keys or any(k.endswith(f"-{suffix}") for k in keys), suffix
    assert {"staking", "pool2", "borrowed"} <= keys
    assert any(k in chains for k in keys)
    for p in protocols:  # bare totals are mirrored at the top level, as in the API
        for bare in ("staking", "pool2"):
            assert (bare in p) == (bare in p["chainTvls"])


def test_parent_protocols_and_key_drift(protocols: list[dict]) -> None:
    slugs = {p["slug"] for p in protocols}
    parents = [p["parentProtocol"] for p in protocols if "parentProtocol" in p]
    assert len(parents) > 0.1 * len(protocols)
    assert all(re.fullmatch(r"parent#[a-z0-9-]+", s) for s in parents)
    assert not {s.split("#", 1)[1] for s in parents} & slugs
    for key in ("fdv", "oraclesBreakdown", "parentProtocolSlug"):
        count = sum(key in p for p in protocols)
        assert 0 < count < len(protocols), key


# -- /chart/{pool} --------------------------------------------------------------------------------
def test_chart_points_are_daily_late_and_ascending() -> None:
    start, end = dt.date(2023, 1, 1), dt.date(2024, 6, 30)
    chart = synthetic.generate_chart("66985a81-9c51-46ca-9977-42b4fe7bc6df", start, end, seed=1)
    assert chart["status"] == "success"
    points = chart["data"]
    days = [dt.date.fromisoformat(p["timestamp"][:10]) for p in points]
    assert days[0] == start and days[-1] == end
    assert days == sorted(set(days))
    assert 0.9 * 547 < len(points) < 547  # a few gaps
    for p in points:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p["timestamp"])
        assert set(p) == {"timestamp", "tvlUsd", "apy", "apyBase", "apyReward", "il7d", "apyBase7d", "pricePerShare"}
        assert type(p["tvlUsd"]) is int and p["il7d"] is None and p["apyBase7d"] is None
    assert sum(p["timestamp"][11:13] == "23" for p in points) > 0.8 * len(points)


def test_chart_is_deterministic_and_range_independent() -> None:
    pid = "29932dea-cd71-44c3-95bd-3e1525f4e3dd"
    long = synthetic.generate_chart(pid, dt.date(2024, 1, 1), dt.date(2024, 3, 31))["data"]
    short = synthetic.generate_chart(pid, dt.date(2024, 2, 1), dt.date(2024, 2, 28))["data"]
    by_ts = {p["timestamp"]: p for p in long}
    assert all(by_ts[p["timestamp"]] == p for p in short[1:-1])  # ends are never gaps, so skip them
    assert synthetic.generate_chart(pid, dt.date(2024, 1, 1), dt.date(2024, 3, 31)) == {"status": "success",
                                                                                        "data": long}
    assert synthetic.generate_chart(pid, dt.date(2024, 2, 1), dt.date(2024, 1, 1))["data"] == []
