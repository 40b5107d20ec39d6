"""Deterministic synthetic DeFiLlama payloads for tests and benchmarks.

The shapes and quirks mirror real recorded responses (see ``/work/shared/API_NOTES.md``):
``/protocols`` (bare list, ~48 drifting keys, mixed types), ``/pools`` (envelope, 28 fields,
5-decimal numbers, sorted by TVL) and ``/chart/{pool}`` (one point per UTC day).

Randomness is *counter based*: every draw is a hash of ``(seed, stream name, index)``. That keeps
pool ``i``'s identity independent of ``n`` and of the day, makes output identical across numpy
versions, and lets whole columns be drawn at once with numpy (a full-size day takes well under a
second). Only stdlib + numpy are used.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import random
import uuid
import zlib
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "DEFAULT_DAY",
    "POOL_FIELDS",
    "PROTOCOL_TO_POOL_CHAIN",
    "dumps",
    "evolve_pools",
    "generate_chart",
    "generate_pools",
    "generate_protocols",
]

#: Day used when ``generate_pools(day=None)``; the date of the recorded samples.
DEFAULT_DAY = _dt.date(2025, 10, 6)

#: The 28 ``/pools`` fields, in the order the API sends them.
POOL_FIELDS = (
    "chain", "project", "symbol", "tvlUsd", "apyBase", "apyReward", "apy", "rewardTokens", "pool",
    "apyPct1D", "apyPct7D", "apyPct30D", "stablecoin", "ilRisk", "exposure", "predictions",
    "poolMeta", "mu", "sigma", "count", "outlier", "underlyingTokens", "il7d", "apyBase7d",
    "apyMean30d", "volumeUsd1d", "volumeUsd7d", "apyBaseInception",
)

# (/protocols spelling, /pools spelling, weight). The two endpoints spell networks differently,
# which is exactly what the pipeline's alias map has to absorb, so both spellings are generated.
_CHAINS: tuple[tuple[str, str, float], ...] = (
    ("Ethereum", "Ethereum", 26), ("Binance", "BSC", 18), ("Arbitrum", "Arbitrum", 14),
    ("Polygon", "Polygon", 13), ("Base", "Base", 10), ("Avalanche", "Avalanche", 9),
    ("Fantom", "Fantom", 6), ("Optimism", "Optimism", 6), ("Solana", "Solana", 6),
    ("Sonic", "Sonic", 3), ("Kava", "Kava", 3), ("Cronos", "Cronos", 2.5),
    ("zkSync Era", "ZKsync Era", 2.5), ("Linea", "Linea", 2), ("Mantle", "Mantle", 1.6),
    ("xDai", "Gnosis", 1.5), ("Sui", "Sui", 1.5), ("Aptos", "Aptos", 1.2), ("Scroll", "Scroll", 1.3),
    ("Blast", "Blast", 1.3), ("Hyperliquid L1", "Hyperliquid L1", 1.5), ("Berachain", "Berachain", 1),
    ("Unichain", "Unichain", 0.8), ("Celo", "Celo", 1.1), ("Metis", "Metis", 1.1),
    ("Moonbeam", "Moonbeam", 1.2), ("Harmony", "Harmony", 1.2), ("Tron", "Tron", 1.2),
    ("Bitcoin", "Bitcoin", 1.2), ("Cardano", "Cardano", 1), ("Near", "Near", 0.7),
    ("Starknet", "Starknet", 0.5), ("Mode", "Mode", 0.4), ("Manta", "Manta", 0.9),
    ("Fraxtal", "Fraxtal", 0.5), ("Bob", "Bob", 0.3), ("TON", "TON", 0.6), ("Polygon zkEVM", "Polygon zkEVM", 1.4),
    ("Ripple", "XRPL", 0.4), ("Op_Bnb", "opBNB", 0.4), ("Avax", "Avalanche", 0.15),
)
#: /protocols chain spelling -> /pools chain spelling.
PROTOCOL_TO_POOL_CHAIN = {proto: pool for proto, pool, _ in _CHAINS}
# Spellings seen once or twice inside a single real /pools sample.
_RARE_POOL_CHAINS = ("Opbnb", "Op_bnb", "Zksync")
_NON_EVM = {"Solana", "Sui", "Aptos", "Tron", "Bitcoin", "Cardano", "Near", "Starknet", "TON", "XRPL", "Ripple"}

_CATEGORIES = (
    ("Dexes", 1206), ("Yield", 471), ("Lending", 371), ("Derivatives", 223), ("Services", 190),
    ("Liquid Staking", 157), ("Yield Aggregator", 129), ("CDP", 125), ("Reserve Currency", 124),
    ("Farm", 114), ("Algo-Stables", 113), ("Bridge", 58), ("Indexes", 57), ("Options", 48),
    ("SoFi", 44), ("Gaming", 44), ("RWA", 43), ("Launchpad", 43), ("Chain", 41), ("Synthetics", 39),
    ("Prediction Market", 39), ("CEX", 38), ("NFT Marketplace", 38), ("Liquidity manager", 36),
    ("Cross Chain", 31), ("NFT Lending", 30), ("DEX Aggregator", 30), ("Staking Pool", 25),
    ("Insurance", 25), ("Leveraged Farming", 23), ("Liquid Restaking", 12), ("RWA Lending", 5),
)
# Pool "kind" shapes symbols, poolMeta and which metrics are filled.
_KIND_OF_CATEGORY = {"Dexes": "dex", "Liquidity manager": "dex", "Lending": "lending", "CDP": "lending",
                     "RWA Lending": "lending", "NFT Lending": "lending", "Liquid Staking": "lst",
                     "Liquid Restaking": "lst", "Staking Pool": "lst"}
_NO_POOLS = {"CEX", "Chain", "Bridge", "Services", "NFT Marketplace", "Gaming", "Launchpad"}

_SYLLABLES = ("ze", "ra", "lo", "vex", "kor", "ti", "nu", "mar", "sol", "qua", "fi", "bel", "dra", "on",
              "pix", "ly", "tor", "ka", "me", "zu", "rin", "ax", "vo", "lu", "sen", "ta", "gri", "mo",
              "pe", "hex", "ni", "cal", "do", "ver", "sy", "xo", "bri", "um", "ja", "fen")
_NAME_WORDS = ("Finance", "Swap", "Protocol", "DAO", "Lend", "Yield", "Labs", "Exchange", "Bridge",
               "Staking", "Money", "Markets", "Vault", "Fi", "Capital", "Network", "", "", "", "")
_FAMILY_SUFFIXES = ("V2", "V3", "V4", "Lending", "Swap", "Perps", "Staking", "Vaults", "CDP", "Bridge", "AMM")

_STABLES = ("USDC", "USDT", "DAI", "USDE", "SUSDE", "USDS", "SUSDS", "FRAX", "GHO", "PYUSD", "LUSD",
            "CRVUSD", "USD0", "RLUSD", "FDUSD", "USDC.E", "DOLA", "USDT0", "EURC", "USDBC")
_MAJORS = ("WETH", "ETH", "WBTC", "CBBTC", "STETH", "WSTETH", "RETH", "WEETH", "EZETH", "SOL", "JITOSOL",
           "MSOL", "WBNB", "BNB", "AVAX", "WAVAX", "POL", "ARB", "OP", "AERO", "CRV", "CVX", "BAL", "AAVE",
           "UNI", "LINK", "PEPE", "GMX", "PENDLE", "S", "SUI", "APT", "HYPE", "BERA", "MNT", "TBTC",
           "LBTC", "SOLVBTC", "XRP", "TRX")
_FEE_TIERS = ("0.01%", "0.05%", "0.3%", "1%", "0.25%", "0.02%")
_POOL_META = {
    "dex": ("0.05%", "0.3%", "1%", "stable", "volatile", "Concentrated", "Gauge"),
    "lending": ("Main Market", "Isolated", "E-Mode", "Prime", "Core Instance", "Lido Market"),
    "lst": ("7 days unstaking", "Liquid Staking", "Restaked", "14 days cooldown"),
    "yield": ("Vault", "Syrup USDC", "Auto-compound", "Curve LP", "Leveraged 3x", "Boosted", "Fixed Rate"),
}
_ANCHOR = _dt.date(2022, 1, 1)  # day 0 of the smooth metric curves


# ----------------------------------------------------------------------------------------------
# Counter-based randomness
# ----------------------------------------------------------------------------------------------
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _key(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def _uniform(key: int, idx: np.ndarray) -> np.ndarray:
    """splitmix64(key + idx*golden) mapped to [0, 1); a pure function of (key, idx)."""
    with np.errstate(over="ignore"):
        x = idx.astype(np.uint64) * _GOLDEN + np.uint64(key)
        x ^= x >> np.uint64(30)
        x *= _MIX1
        x ^= x >> np.uint64(27)
        x *= _MIX2
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class _Draws:
    """Named columns of draws over ``idx``; the same name always gives the same column."""

    def __init__(self, seed: int, idx: np.ndarray, *scope: Any) -> None:
        self.seed, self.idx, self.scope = seed, idx, scope

    def u(self, *name: Any) -> np.ndarray:
        return _uniform(_key(self.seed, *self.scope, *name), self.idx)

    def z(self, *name: Any) -> np.ndarray:
        u1, u2 = self.u(*name, "a"), self.u(*name, "b")
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)  # Box-Muller

    def pick(self, name: str, weights: np.ndarray | list[float]) -> np.ndarray:
        cw = np.cumsum(np.asarray(weights, dtype=float))
        return np.minimum(np.searchsorted(cw / cw[-1], self.u(name), side="right"), len(cw) - 1)


def _r5(x: float | None) -> float | int | None:
    """Round like the API (5 decimals) and print integral values as JSON integers, as JS does."""
    if x is None:
        return None
    r = round(x, 5)
    return int(r) if r == int(r) else r


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON bytes, byte-for-byte in the style of the real API."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _pool_id(*parts: Any) -> str:
    return str(uuid.UUID(bytes=hashlib.blake2b(repr(parts).encode(), digest_size=16).digest(), version=4))


_ADDR_CACHE: dict[tuple[str, str], str] = {}
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _address(token: str, chain: str) -> str:
    """A fixed fake address per (token, chain), so the same token looks the same in every pool."""
    k = (token, chain)
    if k not in _ADDR_CACHE:
        h = hashlib.blake2b(f"{token}@{chain}".encode(), digest_size=32).digest()
        if chain == "Solana":
            _ADDR_CACHE[k] = "".join(_B58[b % 58] for b in h[:44 - 12]) + "".join(_B58[b % 58] for b in h[:12])
        elif chain in ("Sui", "Aptos", "Starknet"):
            _ADDR_CACHE[k] = "0x" + h.hex() + ("" if chain == "Starknet" else f"::{token.lower()}::{token}")
        elif chain == "Tron":
            _ADDR_CACHE[k] = "T" + "".join(_B58[b % 58] for b in h[:33])
        else:  # EVM: real payloads mix lower-case and checksummed spellings
            hx = h[:20].hex()
            mixed = "".join(c.upper() if (h[(n + 20) % 32] >> (n % 8)) & 1 else c for n, c in enumerate(hx))
            _ADDR_CACHE[k] = "0x" + (hx if h[31] & 1 else mixed)
    return _ADDR_CACHE[k]


# ----------------------------------------------------------------------------------------------
# /protocols
# ----------------------------------------------------------------------------------------------
class _Ident(NamedTuple):
    name: str
    slug: str
    category: str
    chains: list[str]  # /protocols spelling
    parent: str | None  # parent slug (never itself a protocol slug)


def _slugify(name: str) -> str:
    return "-".join(name.lower().replace(".", "").split())


def _identities(n: int, seed: int) -> list[_Ident]:
    """Names, slugs, categories and chains: shared by protocols and by pools(protocols=None)."""
    rng = random.Random(f"{seed}:identities")
    cats, cat_w = zip(*_CATEGORIES)
    chains, chain_w = [c[0] for c in _CHAINS], [c[2] for c in _CHAINS]
    out: list[_Ident] = []
    slugs: set[str] = set()
    parents: set[str] = set()

    def fresh_base() -> str:
        while True:
            base = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()
            if _slugify(base) not in parents and _slugify(base) not in slugs:
                return base

    while len(out) < n:
        base = fresh_base()
        family = rng.random() < 0.06  # ~19% of protocols end up with a parentProtocol
        members = [f"{base} {s}" for s in rng.sample(_FAMILY_SUFFIXES, rng.randint(2, 6))] if family else [
            f"{base} {rng.choice(_NAME_WORDS)}".strip() + (rng.choice(("", "", "", "", " V2", " V3")))]
        parent = _slugify(base) if family else None
        if parent:
            parents.add(parent)
        for name in members:
            slug = _slugify(name)
            if slug in slugs or slug in parents or len(out) >= n:
                continue
            category = rng.choices(cats, cat_w)[0]
            k = rng.choices((0, 1, 2, 3, 4, 6, 9, 14), (3.4, 73, 10, 4.6, 2.7, 2.7, 2, 1.6))[0]
            if category == "CEX":
                k = max(k, 8)
            picked = list(dict.fromkeys(rng.choices(chains, chain_w, k=k)))
            out.append(_Ident(name, slug, category, picked, parent))
            slugs.add(slug)
    return out


_WORDS = ("decentralized", "non-custodial", "permissionless", "cross-chain", "capital-efficient",
          "community-owned", "modular", "automated", "multi-strategy", "omnichain")
_VERBS = ("earn yield on", "borrow against", "swap", "stake", "provide liquidity for", "hedge",
          "leverage", "bridge", "tokenize", "auto-compound")
_ORACLES = ("Chainlink", "Pyth", "TWAP", "Internal", "RedStone", "Chronicle", "API3", "Switchboard")
_FORKS = ("Uniswap V2", "Compound V2", "Olympus DAO", "Uniswap V3", "Aave V2", "Curve", "Solidly", "Liquity")
_PREFIX = {"Binance": "bsc", "Arbitrum": "arbitrum", "Fantom": "fantom", "Avalanche": "avax",
           "Polygon": "polygon", "Base": "base", "Cronos": "cronos", "Solana": "solana",
           "zkSync Era": "era", "Optimism": "optimism"}


def _money(rng: random.Random, x: float) -> float | int:
    # The API sends raw doubles, and integral ones (often 0) as JSON integers.
    return int(x) if x == int(x) or rng.random() < 0.01 else x


def _chain_tvls(rng: random.Random, ident: _Ident, tvl: float | None, forced: str | None) -> dict[str, Any]:
    """Chain names + ``<Chain>-<kind>`` keys + bare totals, in a shuffled order like the API."""
    if tvl is None or not ident.chains:
        return {}
    w = [rng.expovariate(1.0) for _ in ident.chains]
    plain = {c: (tvl * x / sum(w) if tvl else 0) for c, x in zip(ident.chains, w)}
    out: dict[str, Any] = {}
    for c, v in plain.items():
        # Real dumps carry lower-cased duplicates for a few chains (op_bnb next to Op_Bnb).
        out["op_bnb" if c == "Op_Bnb" and rng.random() < 0.5 else c] = _money(rng, v)
    p = {"staking": 0.33, "pool2": 0.14, "vesting": 0.012, "treasury": 0.003, "offers": 0.001,
         "borrowed": 0.85 if ident.category in ("Lending", "CDP", "RWA Lending", "NFT Lending") else 0.01}
    for kind, prob in p.items():
        if rng.random() >= prob and forced != kind:
            continue
        total = 0.0
        for c in ident.chains:
            v = (tvl or 1e5) * rng.uniform(0.01, 0.6) / len(ident.chains)
            out[f"{c}-{kind}"] = v
            total += v
        out[kind] = total
    items = list(out.items())
    rng.shuffle(items)
    return dict(items)


def generate_protocols(n: int = 7000, seed: int = 0) -> list[dict]:
    """The ``/protocols`` bare list: ``n`` records with the real key set, type mix and drift.

    Sorted by ``tvl`` descending (null last) like the API. ``parentProtocol`` points at slugs that
    are not in the list; a few records carry the drift keys ``fdv``, ``oraclesBreakdown`` and
    ``parentProtocolSlug``.
    """
    idents = _identities(n, seed)
    rng = random.Random(f"{seed}:protocols")
    ids = rng.sample(range(1, int(n * 1.08) + 10), len(idents))
    # Rare quirks are pinned to fixed records so they appear at every size >= ~10.
    forced = {kind: i % max(len(idents), 1) for i, kind in
              zip((3, 5, 7, 11, 13, 17, 19),
                  ("vesting", "treasury", "offers", "borrowed", "pool2", "staking", "methodology"))}
    out = []
    for i, (ident, pid) in enumerate(zip(idents, ids)):
        r = rng.random
        tvl: float | None
        if r() < 0.009:
            tvl = None
        elif r() < 0.16:
            tvl = 0
        else:
            tvl = min(math.exp(rng.gauss(12.5, 3.2)), 1.2e11 * rng.uniform(0.3, 1))
        word = rng.choice(_WORDS)
        chain_txt = ident.chains[0] if ident.chains else "multiple chains"
        article = "an" if word[0] in "aeiou" else "a"
        desc = (f"{ident.name} is {article} {word} {ident.category.lower()} protocol on {chain_txt} that lets "
                f"users {rng.choice(_VERBS)} {rng.choice(_STABLES + _MAJORS)} and "
                f"{rng.choice(_VERBS)} {rng.choice(_MAJORS)}" + rng.choice(
                    (".", ".", ".", " — with no lock-up.", " (déjà audité).", ".\r\n", " – simple and fast.")))
        sym = "-" if r() < 0.32 else rng.choice(_SYLLABLES).upper() + rng.choice(_SYLLABLES).upper()
        addr = None
        if (sym != "-" and r() > 0.03) or r() < 0.03:  # in practice "no token" means no address
            addr = "0x" + rng.getrandbits(160).to_bytes(20, "big").hex()
            if ident.chains and ident.chains[0] in _PREFIX and r() < 0.45:
                addr = f"{_PREFIX[ident.chains[0]]}:{addr}"
        rec: dict[str, Any] = {
            "id": str(pid), "name": ident.name, "address": addr, "symbol": sym,
            "url": f"https://{ident.slug.replace('-', '')}.{rng.choice(('fi', 'finance', 'xyz', 'io', 'com'))}"
                   + rng.choice(("", "", "/", "/app", "\r\n" if r() < 0.05 else "")),
            "description": desc if r() > 0.0003 else None,
        }
        if ident.chains:
            rec["chain"] = "Multi-Chain" if len(ident.chains) > 1 else ident.chains[0]
        rec.update({
            "logo": f"https://icons.llama.fi/{ident.slug}.{rng.choice(('png', 'jpg', 'svg'))}",
            "audits": None if r() < 0.0025 else rng.choices(("0", "2", "3", "1", "6"), (53, 44, 1.6, 1, 0.03))[0],
        })
        if r() > 0.0005:
            rec["audit_note"] = None if r() > 0.002 else "Audited by a third party"
        rec.update({
            "gecko_id": None if r() < 0.58 else ident.slug.split("-")[0] + rng.choice(("", "-token", "-finance")),
            "cmcId": None if r() < 0.66 else str(rng.randint(1, 32000)),
            "category": ident.category, "chains": ident.chains,
        })
        if r() < 0.72:
            rec["oracles"] = [] if r() < 0.82 else rng.sample(_ORACLES, rng.randint(1, 2))
        if r() < 0.79:
            rec["forkedFrom"] = [] if r() < 0.83 else [rng.choice(_FORKS)]
        rec["module"] = f"{ident.slug}/index.js"
        if r() > 0.0003 or i == 23:
            rec["twitter"] = None if r() < 0.017 else ident.name.replace(" ", "") + rng.choice(("", "Fi", "_xyz"))
        if r() < 0.47:
            rec["audit_links"] = [f"https://github.com/{ident.slug}/audits/blob/main/audit-{k}.pdf"
                                  for k in range(rng.randint(1, 3))]
        if ident.parent:
            rec["parentProtocol"] = f"parent#{ident.parent}"
            if r() < 0.3:
                rec["parentProtocolSlug"] = ident.parent  # newer payloads
        if r() < 0.83:
            rec["listedAt"] = rng.randint(1634027456, 1759700000)
        if r() < 0.31:
            rec["misrepresentedTokens"] = r() < 0.5
        if r() < 0.27:
            rec["github"] = [ident.slug.replace("-", "")]
        if r() < 0.136:
            rec["hallmarks"] = sorted([[rng.randint(1600000000, 1759000000), rng.choice(
                ("UST depeg", "FTX collapse", "Token launch", "Hacked: oracle exploit", "Start of incentives"))]
                for _ in range(rng.randint(1, 4))])
        if r() < 0.054:
            rec["governanceID"] = [f"snapshot:{ident.slug}.eth"]
        if r() < 0.055:
            rec["treasury"] = f"{ident.slug}.js" if r() > 0.01 else None
        if r() < 0.019:
            rec["stablecoins"] = [rng.choice(_STABLES).lower()]
        if r() < 0.016:
            rec["language"] = rng.choice(("Solidity", "Vyper", "Cairo", "Move", "Rust", "Clarity"))
        if r() < 0.013:
            rec["openSource"] = r() < 0.5
        if r() < 0.007:
            rec["oraclesByChain"] = {(ident.chains[0] if ident.chains else "ethereum").lower(): ["Chainlink"]}
        if r() < 0.10:  # newer payloads describe oracles in detail
            rec["oraclesBreakdown"] = [{"name": o, "type": rng.choice(("Primary", "Fallback")),
                                        "proof": [f"https://docs.{ident.slug}.xyz/oracles"]}
                                       for o in rng.sample(_ORACLES, rng.randint(1, 2))]
        if r() < 0.08:
            rec["deadUrl"] = True
        if r() < 0.035:  # int in old records, "YYYY-MM-DD" string in newer ones
            rec["deadFrom"] = 1648765747 if r() < 0.3 else f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if r() < 0.025:
            rec["rugged"] = True
        if r() < 0.02:
            rec["assetToken"] = rng.choice(_MAJORS)
        if r() < 0.006:
            rec["wrongLiquidity"] = True
        if r() < 0.0025:
            rec["referralUrl"] = f"https://app.{ident.slug}.fi/?ref=0x08a3c2A819E3de7ACa384c798269B3Ce1CD0e437"
        if ident.parent and r() < 0.012:
            rec["tokensExcludedFromParent"] = [rng.choice(_STABLES)]
        if i == forced["methodology"]:
            rec["methodology"] = True  # the one record where it was a bool
        elif r() < 0.37:
            rec["methodology"] = (f"TVL is the value of {rng.choice(_MAJORS)} and {rng.choice(_STABLES)} "
                                  f"deposited in {ident.name} contracts, excluding the protocol's own token")
        ctv = _chain_tvls(rng, ident, tvl, next((k for k, v in forced.items() if v == i), None))
        changes = [None if tvl in (None, 0) or r() < 0.05 else (0 if r() < 0.01 else rng.gauss(0, s))
                   for s in (0.8, 3.0, 9.0)]
        rec.update({"slug": ident.slug, "tvl": tvl if tvl is None else _money(rng, tvl), "chainTvls": ctv,
                    "change_1h": changes[0], "change_1d": changes[1], "change_7d": changes[2],
                    "tokenBreakdowns": {}})
        if r() < 0.05:
            rec["fdv"] = int(math.exp(rng.gauss(17, 2.5)))  # older payloads
        rec["mcap"] = None if r() < 0.6 else (0 if r() < 0.1 else _money(rng, math.exp(rng.gauss(17, 2.5))))
        for bare in ("staking", "pool2"):
            if bare in ctv:
                rec[bare] = ctv[bare]
        out.append(rec)
    out.sort(key=lambda p: -(p["tvl"] if p["tvl"] is not None else -1.0))
    return out


# ----------------------------------------------------------------------------------------------
# /pools
# ----------------------------------------------------------------------------------------------
class _Project(NamedTuple):
    slug: str
    chains: tuple[str, ...]  # /pools spelling
    kind: str  # dex | lending | lst | yield
    listed: bool = True  # False: the project has no /protocols entry


def _catalog(protocols: list[dict] | None, n_pools: int, seed: int) -> list[_Project]:
    """Pick pool projects (mostly protocol slugs, ~8% absent from /protocols), most popular first."""
    if protocols is None:
        protocols = [{"slug": i.slug, "category": i.category, "chains": i.chains} for i in _identities(7000, seed)]
    cands = [p for p in protocols if p.get("chains") and p.get("category") not in _NO_POOLS]
    cands = cands or [p for p in protocols if p.get("slug")]
    rng = random.Random(f"{seed}:catalog")
    n_proj = max(8, n_pools // 30)
    n_listed = max(1, min(len(cands), round(n_proj * 0.92)))
    chosen = rng.sample(cands, n_listed)
    slugs = {p.get("slug") for p in protocols}
    out = []
    for p in chosen:
        chains = tuple(dict.fromkeys(PROTOCOL_TO_POOL_CHAIN.get(c, c) for c in p.get("chains") or ["Ethereum"]))
        out.append(_Project(p["slug"], chains, _KIND_OF_CATEGORY.get(p.get("category"), "yield")))
    pool_chains, pool_w = [c[1] for c in _CHAINS[:-1]], [c[2] for c in _CHAINS[:-1]]
    for k in range(n_proj - n_listed):  # pool projects with no /protocols entry (e.g. merkl)
        slug = f"{rng.choice(_SYLLABLES)}{rng.choice(_SYLLABLES)}-{rng.choice(('yield', 'vaults', 'rewards', 'earn'))}"
        while slug in slugs:
            slug += "-x"
        slugs.add(slug)
        chains = tuple(dict.fromkeys(rng.choices(pool_chains, pool_w, k=rng.randint(1, 5))))
        out.insert(rng.randrange(len(out) + 1), _Project(slug, chains, rng.choice(("dex", "yield", "lending")), False))
    return out


_TAIL = tuple(dict.fromkeys(
    (a + b).upper() for a in _SYLLABLES for b in _SYLLABLES if 2 <= len(a + b) <= 6))[:900]


class _Curve:
    """A smooth, day-indexed curve with daily noise: value(t) is a pure function of (seed, i, t)."""

    def __init__(self, d: _Draws, name: str, level: np.ndarray, amp: float, noise: float) -> None:
        self.d, self.name, self.level, self.amp, self.noise = d, name, level, amp, noise
        self.period = 12 + 150 * d.u(name, "period")
        self.phase = d.u(name, "phase")

    def at(self, t: int) -> np.ndarray:
        wave = 1 + self.amp * np.sin(2 * np.pi * (t / self.period + self.phase))
        return self.level * wave * np.exp(self.noise * self.d.z(self.name, "day", t))


def _tokens(rng_u: list[float], kind: str, stable_first: bool) -> list[str]:
    u0, u1, u2, u3 = rng_u
    k = (2 if u0 < 0.85 else (1 if u0 < 0.9 else 3 + (u0 > 0.97))) if kind == "dex" else (1 if u0 < 0.9 else 2)

    def tok(u: float, stable: bool) -> str:
        if stable:
            return _STABLES[min(int(u ** 2.2 * len(_STABLES)), len(_STABLES) - 1)]
        if u < 0.6:
            return _MAJORS[min(int((u / 0.6) ** 2 * len(_MAJORS)), len(_MAJORS) - 1)]
        return _TAIL[int((u - 0.6) / 0.4 * len(_TAIL)) % len(_TAIL)]

    us = (u1, u2, u3, (u1 * 7.3) % 1)
    out = list(dict.fromkeys(tok(us[j], stable_first and (j == 0 or us[j] > 0.4)) for j in range(k)))
    if k > 1 and len(out) == 1:  # "USDC-USDC": pair the token with something else
        out.append("WETH" if out[0] == "USDC" else "USDC")
    return out


# Rare quirks pinned to fixed pools (as fractions of n) so every full-size day carries them.
_QUIRK_SLOTS = (("maxapy", 0.11), ("zero", 0.23), ("negincep", 0.37), ("p56", 0.41), ("absent", 0.53),
                ("Opbnb", 0.61), ("Op_bnb", 0.67), ("Zksync", 0.73), ("sibling", 0.79), ("empty", 0.83))


def _dimensions(d: _Draws, projects: list[_Project], slots: dict[str, int]) -> list[dict]:
    """Per-pool identity: chain, project, symbol, tokens, poolMeta, exposure (no day in the keys)."""
    n = len(d.idx)
    proj_i = d.pick("project", 1.0 / np.arange(1, len(projects) + 1) ** 0.9).tolist()
    chain_u, meta_u, sib_u = d.u("chain").tolist(), d.u("meta").tolist(), d.u("sibling").tolist()
    tok_u = np.stack([d.u("tok", j) for j in range(4)], axis=1).tolist()
    stable_u, ul_u, rare_u, ilr_u = (d.u(k).tolist() for k in ("stable", "underlying", "rare", "ilrisk"))
    pinned = set(slots.values()) - {slots.get("sibling")}
    rows: list[dict] = []
    sib_pos = 0
    for j in range(n):
        pj = projects[proj_i[j]]
        if slots.get("absent") == j:
            pj = next((p for p in projects if not p.listed), pj)
        if j and j not in pinned and (sib_u[j] < 0.03 or slots.get("sibling") == j) and sib_pos < 4:
            # Same project/chain/symbol as the previous pool, different poolMeta only.
            prev = rows[-1]
            sib_pos += 1
            if prev["poolMeta"] is None or sib_pos == 1:
                prev["poolMeta"] = _FEE_TIERS[sib_pos - 1]
            rows.append({**prev, "poolMeta": _FEE_TIERS[sib_pos]})
            continue
        sib_pos = 0
        chain = pj.chains[min(int(chain_u[j] ** 1.8 * len(pj.chains)), len(pj.chains) - 1)]
        rare = next((c for c in _RARE_POOL_CHAINS if slots.get(c) == j), None)
        if rare or rare_u[j] < 0.0002:
            chain = rare or _RARE_POOL_CHAINS[int(rare_u[j] * 1e8) % 3]
        stable_first = stable_u[j] < {"dex": 0.25, "lending": 0.5, "lst": 0.05, "yield": 0.55}[pj.kind]
        toks = _tokens(tok_u[j], pj.kind, stable_first)
        stable = all(tk in _STABLES for tk in toks)
        multi = len(toks) > 1
        metas = _POOL_META[pj.kind]
        meta = metas[int(meta_u[j] * 1e6) % len(metas)] if meta_u[j] < 0.3 else None
        ul = 0.16 if slots.get("empty") == j else ul_u[j]
        underlying = None if ul < 0.15 else ([] if ul < 0.18 else [_address(tk, chain) for tk in toks])
        rows.append({"chain": chain, "project": pj.slug, "symbol": "-".join(toks), "stablecoin": stable,
                     "ilRisk": "yes" if multi and (not stable or ilr_u[j] < 0.2) else "no",
                     "exposure": "multi" if multi else "single", "underlyingTokens": underlying, "poolMeta": meta})
    return rows


def _build_pools(seed: int, idx: np.ndarray, projects: list[_Project], day: _dt.date,
                 id_of: Any, quirks: bool, count_shift: int = 0) -> list[dict]:
    """Pools for indices ``idx``; dimensions depend on (seed, i), metrics on (seed, i, day)."""
    n = len(idx)
    if n == 0:
        return []
    d = _Draws(seed, idx, "pool")
    t = (day - _ANCHOR).days
    slots = {q: int(n * f) for q, f in _QUIRK_SLOTS} if quirks and n >= 16 else {}
    rows = _dimensions(d, projects, slots)
    # -- metric levels (per pool, day independent) ----------------------------------------------
    tvl_level = np.minimum(1e4 * (1.0 - d.u("tvl")) ** (-1 / 0.62), 1.2e10)  # Pareto tail, $10k floor
    apy_base_lvl = np.exp(np.log(3.0) + 1.1 * d.z("apyBase"))
    apy_rew_lvl = np.exp(np.log(2.0) + 1.3 * d.z("apyReward"))
    huge = d.u("huge") < 0.004  # farm APYs in the thousands
    apy_base_lvl = np.where(huge, np.minimum(np.exp(np.log(2e3) + 1.5 * d.z("huge")), 2.5e5), apy_base_lvl)
    count0 = np.where(d.u("young") < 0.06, (d.u("count") * 40).astype(int), 30 + (d.u("count") * 1400).astype(int))
    count0 = count0 + count_shift
    # shape: 0 normal, 1 apy without parts, 2 apy 0 with both parts null, 3 apyBase exactly 0
    shape_u = d.u("shape")
    shape = np.select([shape_u < 0.02, shape_u < 0.03, shape_u < 0.045], [1, 2, 3], 0)
    has_reward = d.u("hasReward") < 0.35
    has_base = d.u("hasBase") < 0.8
    extra_u, rw_u = d.u("extras"), d.u("rewardTokens")
    if slots:
        tvl_level[int(np.argmax(tvl_level))] = 2.4e10  # the real top pool is above 2e10
        shape[slots["zero"]] = 2
        shape[slots["maxapy"]] = 0
        apy_base_lvl[slots["maxapy"]] = 3.3e5
        has_base[slots["maxapy"]] = True
    # -- metrics for `day` -----------------------------------------------------------------
    tvl_c = _Curve(d, "tvl", tvl_level, 0.06, 0.02)
    base_c = _Curve(d, "apyBase", apy_base_lvl, 0.25, 0.06)
    rew_c = _Curve(d, "apyReward", apy_rew_lvl, 0.3, 0.08)
    if "maxapy" in slots:
        base_c.amp = np.where(np.arange(n) == slots["maxapy"], 0.02, 0.25)
        base_c.noise = np.where(np.arange(n) == slots["maxapy"], 0.0, 0.06)

    def apy_at(tt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = np.where(has_base | ~has_reward, base_c.at(tt), np.nan)
        b = np.where(shape == 3, 0.0, b)
        rw = np.where(has_reward & (shape != 3), rew_c.at(tt), np.nan)
        tot = np.nan_to_num(b) + np.nan_to_num(rw)
        b = np.where(shape >= 1, np.where(shape == 3, 0.0, np.nan), b)
        rw = np.where((shape == 1) | (shape == 2), np.nan, rw)
        return b, rw, np.where(shape == 2, 0.0, tot)

    ab, ar, apy = apy_at(t)
    hist = np.stack([apy_at(t - k)[2] for k in range(1, 31)])  # apy on the 30 previous days
    tvl = np.maximum(np.rint(tvl_c.at(t)), 1e4)
    count = np.maximum(1, count0 + (day - DEFAULT_DAY).days)
    dex = np.array([r["exposure"] == "multi" for r in rows])
    vol_u, pred_u, prob_u = d.u("volume"), d.u("pred", t), d.u("prob", t)
    turnover = np.exp(np.log(0.08) + 1.2 * d.z("turnover", t))
    mu = apy * (1 + 0.15 * d.z("mu")) + 0.5 * d.u("mu2")
    sigma = np.abs(apy) * 0.05 * (1 + 3 * d.u("sigma")) + 0.01 * d.u("sigma2")
    inception = np.where(d.u("incepneg") < 0.25, -np.abs(apy) * d.u("incep"), apy * (0.5 + d.u("incep")))
    cols = {
        "tvlUsd": tvl.astype(np.int64).tolist(), "apyBase": ab.tolist(), "apyReward": ar.tolist(), "apy": apy.tolist(),
        "apyPct1D": (apy - hist[0]).tolist(), "apyPct7D": (apy - hist[6]).tolist(),
        "apyPct30D": (apy - hist[29]).tolist(), "mu": np.where(shape == 2, 0, mu).tolist(),
        "sigma": np.where(shape == 2, 0, sigma).tolist(), "count": count.tolist(),
        "apyMean30d": ((hist[:29].sum(axis=0) + apy) / 30).tolist(), "volumeUsd1d": (tvl * turnover).tolist(),
        "il7d": (-np.abs(d.z("il7d", t)) * 0.8).tolist(),
        "apyBase7d": (np.nan_to_num(ab) * (1 + 0.05 * d.z("ab7", t))).tolist(),
        "apyBaseInception": inception.tolist(), "outlier": ((apy > 1000) | (d.u("outlier") < 0.01)).tolist(),
    }
    ext, vol, pred, prob, rwu = extra_u.tolist(), vol_u.tolist(), pred_u.tolist(), prob_u.tolist(), rw_u.tolist()
    for j, row in enumerate(rows):
        c = cols["count"][j]
        a_b, a_r = cols["apyBase"][j], cols["apyReward"][j]
        a_b, a_r = (None if a_b != a_b else a_b), (None if a_r != a_r else a_r)  # NaN -> null
        if a_r is None:
            rewards = [] if rwu[j] < 0.12 else None
        else:
            reward_syms = ("CRV", "CVX") if rwu[j] > 0.9 else (_MAJORS[int(rwu[j] * 1e4) % 28],)
            rewards = None if rwu[j] < 0.05 else [_address(tk, row["chain"]) for tk in reward_syms]
        k = 50 + int(prob[j] * 50)
        if slots.get("p56") == j:
            k = 56
        if pred[j] < 0.15 and k != 56:
            predictions = {"predictedClass": None, "predictedProbability": None, "binnedConfidence": None}
        else:
            p = k / 100 * 100  # float artefact as in the API: 56 -> 56.00000000000001
            predictions = {"predictedClass": "Stable/Up" if pred[j] < 0.72 else "Down",
                           "predictedProbability": int(p) if p == int(p) else p,
                           "binnedConfidence": 1 if k < 66 else (2 if k < 80 else 3)}
        is_dex = bool(dex[j])
        volume = is_dex and vol[j] < 0.6
        inc = cols["apyBaseInception"][j] if (ext[j] < 0.03 or slots.get("negincep") == j) else None
        if slots.get("negincep") == j:
            inc = -abs(inc) - 1.5
        out = {
            "chain": row["chain"], "project": row["project"], "symbol": row["symbol"],
            "tvlUsd": cols["tvlUsd"][j], "apyBase": _r5(a_b), "apyReward": _r5(a_r), "apy": _r5(cols["apy"][j]),
            "rewardTokens": rewards, "pool": id_of(int(idx[j])),
            "apyPct1D": _r5(cols["apyPct1D"][j]) if c >= 2 else None,
            "apyPct7D": _r5(cols["apyPct7D"][j]) if c >= 8 else None,
            "apyPct30D": _r5(cols["apyPct30D"][j]) if c >= 31 else None,
            "stablecoin": row["stablecoin"], "ilRisk": row["ilRisk"], "exposure": row["exposure"],
            "predictions": predictions, "poolMeta": row["poolMeta"], "mu": _r5(cols["mu"][j]),
            "sigma": _r5(cols["sigma"][j]), "count": c, "outlier": cols["outlier"][j],
            "underlyingTokens": row["underlyingTokens"],
            "il7d": _r5(cols["il7d"][j]) if is_dex and ext[j] > 0.85 else None,
            "apyBase7d": _r5(cols["apyBase7d"][j]) if is_dex and ext[j] > 0.85 and a_b is not None else None,
            "apyMean30d": _r5(cols["apyMean30d"][j]) if c >= 2 else None,
            "volumeUsd1d": _r5(cols["volumeUsd1d"][j]) if volume else None,
            "volumeUsd7d": _r5(cols["volumeUsd1d"][j] * (6 + 2 * vol[j])) if volume else None,
            "apyBaseInception": _r5(inc),
        }
        rows[j] = out
    return rows


def _sorted_envelope(pools: list[dict], like: dict | None = None) -> dict:
    pools.sort(key=lambda p: -p["tvlUsd"])
    env = {k: v for k, v in (like or {"status": "success"}).items() if k != "data"}
    env["data"] = pools
    return env


def generate_pools(n: int = 17000, seed: int = 0, protocols: list[dict] | None = None,
                   day: _dt.date | None = None) -> dict:
    """The ``/pools`` envelope ``{"status": "success", "data": [...]}`` for one day.

    Pool ``i`` keeps its id and dimensions (chain, project, symbol, tokens, poolMeta) for a given
    seed on every day; metrics are smooth curves of (seed, pool, day). Without ``protocols`` the
    projects come from the same slugs ``generate_protocols(seed=seed)`` would produce.
    """
    day = day or DEFAULT_DAY
    projects = _catalog(protocols, n, seed)
    pools = _build_pools(seed, np.arange(n), projects, day, lambda i: _pool_id(seed, i), quirks=True)
    return _sorted_envelope(pools)


def _renamed(slug: str) -> str:
    # Deterministic stand-in for a real rename such as makerdao -> sky-lending.
    return f"{slug}-{('v2', 'lending', 'finance', 'protocol')[zlib.crc32(slug.encode()) % 4]}"


def evolve_pools(envelope: dict, seed: int, changed: float = 0.05, new: float = 0.02, gone: float = 0.01) -> dict:
    """The next day's payload: some pools gone, some new, some with changed metadata, metrics moved.

    Pure: the input is not modified; the same (envelope, seed) always gives the same result. Pool
    ids of surviving pools are kept, also when their project is renamed.
    """
    old = envelope["data"]
    n = len(old)
    salt = zlib.crc32("".join(p["pool"] for p in old[:64]).encode()) ^ n
    d = _Draws(seed, np.arange(n), "evolve", salt)
    keep = (d.u("gone") >= gone).tolist()
    chg, what, alt = (d.u("changed") < changed).tolist(), d.u("what").tolist(), d.u("alt").tolist()
    z_tvl, z_b, z_r = (d.z(k) * s for k, s in (("tvl", 0.04), ("b", 0.08), ("r", 0.1)))
    f_tvl, f_b, f_r = np.exp(z_tvl).tolist(), np.exp(z_b).tolist(), np.exp(z_r).tolist()
    pools: list[dict] = []
    for j, p in enumerate(old):
        if not keep[j]:
            continue
        q = dict(p)
        q["predictions"] = dict(p["predictions"])
        b = None if p["apyBase"] is None else p["apyBase"] * f_b[j]
        r = None if p["apyReward"] is None else p["apyReward"] * f_r[j]
        apy = (b or 0) + (r or 0) if (b is not None or r is not None) else p["apy"] * f_b[j]
        q.update(tvlUsd=max(1, round(p["tvlUsd"] * f_tvl[j])), apyBase=_r5(b), apyReward=_r5(r), apy=_r5(apy),
                 count=p["count"] + 1)
        q["apyPct1D"] = _r5(q["apy"] - p["apy"])
        for k, w in (("apyPct7D", 1 / 7), ("apyPct30D", 1 / 30)):
            q[k] = None if p[k] is None else _r5(p[k] * (1 - w) + (q["apy"] - p["apy"]))
        if p["apyMean30d"] is not None:
            q["apyMean30d"] = _r5(p["apyMean30d"] + (q["apy"] - p["apyMean30d"]) / 30)
        for k in ("volumeUsd1d", "volumeUsd7d", "mu"):
            if p[k] is not None:
                q[k] = _r5(p[k] * f_r[j])
        if chg[j]:
            w = what[j]
            if w < 0.3:  # symbol re-spelled or a token added
                q["symbol"] = p["symbol"].lower() if alt[j] < 0.3 else f"{p['symbol']}-{_MAJORS[int(alt[j] * 40) % 40]}"
            elif w < 0.55:
                q["poolMeta"] = None if p["poolMeta"] and alt[j] < 0.5 else _POOL_META["yield"][int(alt[j] * 7) % 7]
            elif w < 0.75:
                q["project"] = _renamed(p["project"])
            elif w < 0.9:
                multi = p["exposure"] == "single"
                q.update(exposure="multi" if multi else "single", ilRisk="yes" if multi else "no")
            else:
                q["underlyingTokens"] = None if p["underlyingTokens"] else [_address(p["symbol"], p["chain"])]
        pools.append(q)
    k_new = round(new * n)
    if k_new:
        seen: dict[str, set[str]] = {}
        for p in old:
            seen.setdefault(p["project"], set()).add(p["chain"])
        projects = [_Project(s, tuple(sorted(c)), "dex" if len(c) > 1 else "yield") for s, c in seen.items()]
        projects.sort(key=lambda pr: -len(seen[pr.slug]))
        idx = np.arange(k_new) + n
        day = DEFAULT_DAY + _dt.timedelta(days=salt % 97)
        pools += _build_pools(seed ^ salt, idx, projects, day, lambda i: _pool_id(seed, salt, "new", i),
                              quirks=False, count_shift=-10_000)
    return _sorted_envelope(pools, like=envelope)


# ----------------------------------------------------------------------------------------------
# /chart/{pool}
# ----------------------------------------------------------------------------------------------
def generate_chart(pool_id: str, start: _dt.date, end: _dt.date, seed: int = 0) -> dict:
    """``/chart/{pool}``: one point per UTC day in [start, end] (late in the day), ascending.

    About 3% of days are missing (never the first or last). Values for a day do not depend on
    the requested range, so overlapping ranges agree.
    """
    days = np.arange(start.toordinal(), end.toordinal() + 1)
    if len(days) == 0:
        return {"status": "success", "data": []}
    d = _Draws(seed, days, "chart", pool_id)
    one = _Draws(seed, np.zeros(1, dtype=np.int64), "chart", pool_id)
    tvl_lvl = float(10 ** (4 + 4.5 * one.u("tvl")[0]))
    apy_lvl = float(np.exp(np.log(4) + one.z("apy")[0]))
    has_reward, has_pps = one.u("reward")[0] < 0.35, one.u("pps")[0] < 0.3
    t = (days - _ANCHOR.toordinal()).astype(float)
    per, ph = 20 + 200 * one.u("per")[0], one.u("ph")[0]
    tvl = tvl_lvl * (1 + 0.3 * np.sin(2 * np.pi * (t / per + ph))) * np.exp(0.03 * d.z("tvl"))
    base = apy_lvl * (1 + 0.3 * np.sin(2 * np.pi * (t / (per / 3) + ph))) * np.exp(0.1 * d.z("apy"))
    reward = apy_lvl * 0.5 * np.exp(0.2 * d.z("reward"))
    # A pure function of the day (not a cumulative product) so overlapping ranges agree.
    pps = (1 + ph) * np.exp(apy_lvl / 100 * (t / 365)) if has_pps else None
    keep = d.u("gap") >= 0.03
    keep[0] = keep[-1] = True
    late, hour = d.u("late").tolist(), d.u("hour").tolist()
    secs = (d.u("sec") * 3600).tolist()
    data = []
    for j in np.flatnonzero(keep).tolist():
        day = _dt.date.fromordinal(int(days[j]))
        h = 23 if late[j] >= 0.08 else int(hour[j] * 23)
        s = secs[j]
        b, r = float(base[j]), float(reward[j]) if has_reward else None
        data.append({
            "timestamp": f"{day.isoformat()}T{h:02d}:{int(s // 60):02d}:{int(s % 60):02d}.{int(s * 1000) % 1000:03d}Z",
            "tvlUsd": int(tvl[j]), "apy": _r5(b + (r or 0)), "apyBase": _r5(b), "apyReward": _r5(r),
            "il7d": None, "apyBase7d": None, "pricePerShare": None if pps is None else round(float(pps[j]), 8),
        })
    return {"status": "success", "data": data}
