"""Synthetic full-size payloads of the datasets beside the yields, shaped like the recorded samples:
/lendBorrow (about 2,400 lending pools keyed by /pools ids), /v2/chains (about 430 chains, the two
spellings of a network included), /v2/historicalChainTvl/{chain} (3,000 days each) and /protocol/{slug}
(a total, chains, -staking/-borrowed series and per-token breakdowns, up to tens of MB).

Deterministic for a given seed; ``serve`` installs them on a PayloadServer.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
import zlib
from urllib.parse import unquote, urlsplit

from llama_pipeline import clock
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response
from llama_pipeline_tests.testing.synthetic import PROTOCOL_TO_POOL_CHAIN, dumps

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _rng(*parts: object) -> random.Random:
    return random.Random(zlib.crc32(repr(parts).encode()))


def _r5(x: float | None) -> float | None:
    return None if x is None else round(x, 5)


def generate_lend_borrow(pools_payload: dict, n: int = 2400, seed: int = 0, unknown: int = 0) -> list[dict]:
    """``n`` lending records for pools of ``pools_payload`` (the lending projects' first, as DeFiLlama
    lists lending markets), plus ``unknown`` records for pool ids /pools does not list."""
    pools = pools_payload["data"]
    lending = [p for p in pools if "lend" in p["project"] or "aave" in p["project"]]
    chosen = (lending + [p for p in pools if p not in lending])[:n] if len(lending) < n else lending[:n]
    records = []
    for index, pool in enumerate(chosen):
        rng = _rng(seed, "lend", pool["pool"])
        supply = max(10_000.0, float(pool["tvlUsd"]) * rng.uniform(1.0, 2.5))
        borrowable = rng.random() < 0.7
        records.append({
            "pool": pool["pool"],
            "apyBaseBorrow": _r5(rng.uniform(0.5, 12)) if borrowable else None,
            "apyRewardBorrow": _r5(rng.uniform(0, 2)) if borrowable and rng.random() < 0.3 else None,
            "totalSupplyUsd": round(supply),
            "totalBorrowUsd": round(supply * rng.uniform(0.1, 0.9)) if borrowable else None,
            "debtCeilingUsd": round(supply * 3) if rng.random() < 0.03 else None,
            "ltv": round(rng.choice((0, 0.5, 0.7, 0.75, 0.8, 0.825, 0.9)), 3),
            "borrowable": borrowable if rng.random() < 0.65 else None,
            "mintedCoin": rng.choice(("GHO", "WBTC")) if rng.random() < 0.02 else None,
            "rewardTokens": pool.get("rewardTokens") if rng.random() < 0.9 else ["0xreward" + pool["pool"][:8]],
            "underlyingTokens": pool.get("underlyingTokens"),
            "borrowFactor": None if rng.random() < 0.95 else _r5(rng.uniform(1, 1.5)),
        })
    for extra in range(unknown):
        records.append({"pool": f"00000000-0000-4000-8000-{extra:012d}", "apyBaseBorrow": 3.0, "apyRewardBorrow": None,
                        "totalSupplyUsd": 1_000_000, "totalBorrowUsd": 400_000, "debtCeilingUsd": None, "ltv": 0.8,
                        "borrowable": True, "mintedCoin": None, "rewardTokens": None, "underlyingTokens": None,
                        "borrowFactor": None})
    return records


def chain_names(n: int = 430) -> list[str]:
    """The /v2/chains spellings: every network the yields generator uses (the /protocols spelling, as
    /v2/chains has it, and 'BSC' beside 'Binance' as the real list has both), then made-up chains."""
    names = [spelling for name in PROTOCOL_TO_POOL_CHAIN for spelling in ((name, "BSC") if name == "Binance" else (name,))]
    names += [f"Synthchain {i}" for i in range(max(0, n - len(names)))]
    return names[:n]


def generate_chain_list(n: int = 430, seed: int = 0) -> list[dict]:
    records = []
    for index, name in enumerate(chain_names(n)):
        rng = _rng(seed, "chain", name)
        records.append({
            "gecko_id": name.lower().replace(" ", "-") if rng.random() < 0.75 else None,
            "tvl": 0 if name == "Binance" else rng.lognormvariate(17, 3),  # as in the real list
            "tokenSymbol": name[:4].upper() if rng.random() < 0.8 else None,
            "cmcId": str(1000 + index) if rng.random() < 0.6 else None,
            "name": name,
            "chainId": 1000 + index if rng.random() < 0.55 else None,
        })
    return records


def _daily(days: int, today: dt.date, level: float, rng: random.Random, value: str) -> list[dict]:
    """``days`` daily points up to today, the last one at today's live moment (as DeFiLlama sends it)."""
    start = today - dt.timedelta(days=days - 1)
    points = []
    walk = level
    for i in range(days):
        walk *= math.exp(rng.gauss(0, 0.03))
        moment = dt.datetime.combine(start + dt.timedelta(days=i), dt.time(), tzinfo=dt.timezone.utc)
        if i == days - 1:
            moment += dt.timedelta(hours=13, minutes=7)
        points.append({"date": int((moment - _EPOCH).total_seconds()), value: round(walk)})
    return points


def generate_chain_tvl(chain: str, days: int = 3000, seed: int = 0, today: dt.date | None = None) -> list[dict]:
    rng = _rng(seed, "chain_tvl", chain)
    return _daily(days, today or clock.today(), rng.lognormvariate(17, 2), rng, "tvl")


def generate_protocol(slug: str, days: int = 1000, chains: int = 6, tokens: int = 4, seed: int = 0,
                      today: dt.date | None = None) -> dict:
    """A /protocol/{slug} detail: ``tvl`` total, a ``chainTvls`` series per chain (with ``tokens`` and
    ``tokensInUsd`` breakdowns of ``tokens`` tokens per day, which is what makes real ones large), one
    ``-staking`` and one bare ``borrowed`` series. The total is the sum of the plain chains."""
    rng = _rng(seed, "protocol", slug)
    today = today or clock.today()
    names = list(PROTOCOL_TO_POOL_CHAIN)[:chains]
    chain_tvls: dict[str, dict] = {}
    totals: dict[int, float] = {}
    for chain in names:
        series = _daily(days, today, rng.lognormvariate(15, 2), rng, "totalLiquidityUSD")
        breakdown = [{"date": p["date"], "tokens": {f"TOK{t}": round(p["totalLiquidityUSD"] / tokens / 2.1, 2)
                                                    for t in range(tokens)}} for p in series]
        chain_tvls[chain] = {"tvl": series, "tokens": breakdown, "tokensInUsd": breakdown}
        for point in series:
            totals[point["date"]] = totals.get(point["date"], 0) + point["totalLiquidityUSD"]
    chain_tvls[f"{names[0]}-staking"] = {"tvl": _daily(days, today, 1e6, rng, "totalLiquidityUSD"),
                                         "tokens": [], "tokensInUsd": []}
    chain_tvls["borrowed"] = {"tvl": _daily(days, today, 2e6, rng, "totalLiquidityUSD"), "tokens": [],
                              "tokensInUsd": []}
    return {
        "id": str(zlib.crc32(slug.encode())), "name": slug.replace("-", " ").title(), "symbol": "-",
        "category": "Lending", "chains": names, "chainTvls": chain_tvls,
        "tvl": [{"date": d, "totalLiquidityUSD": round(v)} for d, v in sorted(totals.items())],
        "currentChainTvls": {c: s["tvl"][-1]["totalLiquidityUSD"] for c, s in chain_tvls.items()},
        "raises": [], "mcap": None,
    }


def source_settings(server: PayloadServer) -> dict[str, str]:
    """The pipeline's URL settings pointed at the test server's routes (yields and datasets alike)."""
    return {"SOURCE_URL": server.url("/pools"), "PROTOCOLS_URL": server.url("/protocols"),
            "CHART_URL": server.url("/chart/{pool}"), "LEND_BORROW_URL": server.url("/lendBorrow"),
            "CHAINS_URL": server.url("/v2/chains"), "CHAIN_TVL_URL": server.url("/v2/historicalChainTvl/{chain}"),
            "PROTOCOL_URL": server.url("/protocol/{slug}")}


def serve(server: PayloadServer, pools_payload: dict, *, lending: int = 2400, chains: int = 430,
          chain_days: int = 3000, protocol_days: int = 1000, protocol_chains: int = 6, protocol_tokens: int = 4,
          seed: int = 0, large: dict[str, dict] | None = None) -> None:
    """Serve /lendBorrow and /v2/chains for the day, and every chain's and protocol's history on request
    (generated when asked, the same for the same name). ``large`` maps slugs to the sizes of their
    detail (``generate_protocol`` arguments), read when asked, so a caller may fill it later."""
    large = large if large is not None else {}
    server.set("/lendBorrow", dumps(generate_lend_borrow(pools_payload, lending, seed)))
    server.set("/v2/chains", dumps(generate_chain_list(chains, seed)))

    @functools.lru_cache(maxsize=64)  # per serve() call: a handler's own cache, dropped with it
    def body(kind: str, name: str) -> bytes:
        if kind == "chain":
            return dumps(generate_chain_tvl(name, chain_days, seed))
        sized = {"days": protocol_days, "chains": protocol_chains, "tokens": protocol_tokens, **large.get(name, {})}
        return dumps(generate_protocol(name, seed=seed, **sized))

    def last_part(path: str) -> str:
        return unquote(urlsplit(path).path.rsplit("/", 1)[1])

    server.set_handler("/v2/historicalChainTvl/", lambda path: Response(body=body("chain", last_part(path))))
    server.set_handler("/protocol/", lambda path: Response(body=body("protocol", last_part(path))))
