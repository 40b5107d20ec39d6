"""One canonical name per network, whichever DeFiLlama endpoint spelled it.

``/pools`` and ``/protocols`` spell several chains differently (``BSC`` vs ``Binance``, ``Gnosis`` vs
``xDai`` ...), and ``/pools`` is not even consistent with itself (``opBNB``, ``Opbnb``, ``Op_bnb``). The
canonical name is the one ``/pools`` uses today, since pools are what the warehouse is about.
"""

from __future__ import annotations

import re

# Spellings that differ beyond case and punctuation; keys are compared after ``fold`` below.
_ALIASES: dict[str, str] = {
    "binance": "BSC",
    "bnb": "BSC",
    "bnbchain": "BSC",
    "bsc": "BSC",
    "xdai": "Gnosis",
    "gnosis": "Gnosis",
    "avax": "Avalanche",
    "avalanche": "Avalanche",
    "zksync": "ZKsync Era",
    "zksyncera": "ZKsync Era",
    "ripple": "XRPL",
    "xrpl": "XRPL",
    "xrp": "XRPL",
    "opbnb": "opBNB",
    "ethereum": "Ethereum",
    "eth": "Ethereum",
    "arbitrum": "Arbitrum",
    "arbitrumone": "Arbitrum",
    "optimism": "Optimism",
    "op": "Optimism",
    "opmainnet": "Optimism",
    "polygon": "Polygon",
    "matic": "Polygon",
    "polygonzkevm": "Polygon zkEVM",
    "base": "Base",
    "solana": "Solana",
    "fantom": "Fantom",
    "sonic": "Sonic",
    "tron": "Tron",
    "linea": "Linea",
    "scroll": "Scroll",
    "mantle": "Mantle",
    "blast": "Blast",
    "cronos": "Cronos",
    "celo": "Celo",
    "moonbeam": "Moonbeam",
    "moonriver": "Moonriver",
    "aurora": "Aurora",
    "harmony": "Harmony",
    "kava": "Kava",
    "metis": "Metis",
    "aptos": "Aptos",
    "sui": "Sui",
    "near": "Near",
    "bitcoin": "Bitcoin",
    "ton": "TON",
    "starknet": "Starknet",
    "hyperliquid": "Hyperliquid L1",
    "hyperliquidl1": "Hyperliquid L1",
    "berachain": "Berachain",
    "sei": "Sei",
    "manta": "Manta",
    "mode": "Mode",
    "taiko": "Taiko",
    "unichain": "Unichain",
    "plasma": "Plasma",
    "katana": "Katana",
    "flare": "Flare",
    "core": "CORE",
    "osmosis": "Osmosis",
    "cosmos": "Cosmos",
    "cosmoshub": "Cosmos",
    "terra": "Terra",
    "terra2": "Terra2",
    "algorand": "Algorand",
    "cardano": "Cardano",
    "elrond": "MultiversX",
    "multiversx": "MultiversX",
    "hedera": "Hedera",
    "stellar": "Stellar",
    "tezos": "Tezos",
    "waves": "Waves",
    "klaytn": "Kaia",
    "kaia": "Kaia",
    "heco": "Heco",
    "okexchain": "OKTChain",
    "oktchain": "OKTChain",
    "xlayer": "X Layer",
    "zora": "Zora",
    "fraxtal": "Fraxtal",
    "merlin": "Merlin",
    "bob": "BOB",
    "bsquared": "BSquared",
    "zircuit": "Zircuit",
    "sonicsvm": "Soon",
    "iotaevm": "IOTA EVM",
    "rootstock": "Rootstock",
    "rsk": "Rootstock",
    "immutablezkevm": "Immutable zkEVM",
    "lisk": "Lisk",
    "ink": "Ink",
    "abstract": "Abstract",
    "corn": "Corn",
    "hemi": "Hemi",
    "sophon": "Sophon",
    "soneium": "Soneium",
    "swellchain": "Swellchain",
    "worldchain": "World Chain",
    "wc": "World Chain",
    "apechain": "ApeChain",
    "gravity": "Gravity",
    "filecoin": "Filecoin",
    "icp": "ICP",
    "injective": "Injective",
    "neutron": "Neutron",
    "radixdlt": "Radix",
    "radix": "Radix",
    "eos": "EOS",
    "wax": "WAX",
    "telos": "Telos",
    "boba": "Boba",
    "fuse": "Fuse",
    "velas": "Velas",
    "oasis": "Oasis",
    "oasissapphire": "Oasis Sapphire",
    "meter": "Meter",
    "conflux": "Conflux",
    "astar": "Astar",
    "shiden": "Shiden",
    "karura": "Karura",
    "acala": "Acala",
    "bifrost": "Bifrost",
    "polkadot": "Polkadot",
    "kusama": "Kusama",
    "thorchain": "Thorchain",
    "dogechain": "Dogechain",
    "doge": "Doge",
    "litecoin": "Litecoin",
    "canto": "Canto",
    "evmos": "Evmos",
    "milkomeda": "Milkomeda C1",
    "milkomedac1": "Milkomeda C1",
    "neon": "Neon",
    "eclipse": "Eclipse",
    "movement": "Movement",
    "fuel": "Fuel",
    "stacks": "Stacks",
    "ronin": "Ronin",
    "wemix": "WEMIX",
    "xdc": "XDC",
    "zeta": "ZetaChain",
    "zetachain": "ZetaChain",
    "zklinknova": "zkLink Nova",
    "mint": "Mint",
    "morph": "Morph",
    "bitlayer": "Bitlayer",
    "ailayer": "AILayer",
    "rollux": "Rollux",
    "syscoin": "Syscoin",
    "energi": "Energi",
    "smartbch": "smartBCH",
    "bitgert": "Bitgert",
    "kcc": "KCC",
    "iotex": "IoTeX",
    "theta": "Theta",
    "vechain": "VeChain",
    "ontology": "Ontology",
    "neo": "NEO",
    "neo3": "Neo3",
    "ergo": "Ergo",
    "nuls": "Nuls",
    "icon": "ICON",
    "secret": "Secret",
    "juno": "Juno",
    "crescent": "Crescent",
    "kujira": "Kujira",
    "archway": "Archway",
    "sora": "Sora",
    "zilliqa": "Zilliqa",
    "defichain": "DefiChain",
    "venom": "Venom",
    "everscale": "Everscale",
    "aeternity": "Aeternity",
}

# Keys of /protocols' ``chainTvls`` that are totals across chains, not chains.
_NOT_CHAINS = frozenset(
    {"staking", "pool2", "borrowed", "vesting", "treasury", "offers", "doublecounted", "liquidstaking",
     "dcandlsoverlap", "multichain"}
)
_TVL_SUFFIX = re.compile(r"-(staking|pool2|borrowed|vesting|treasury|offers)$", re.IGNORECASE)
_FOLD = re.compile(r"[\s_\-.]+")


def fold(name: str) -> str:
    """The comparison key of a spelling: lower case with spaces, underscores, dashes and dots removed."""
    return _FOLD.sub("", name).lower()


def canonical_chain(name: str) -> str:
    """The canonical name of a chain spelling; an unknown chain keeps its own (trimmed) spelling.

    Raises ValueError for a value that names no chain (empty, or a cross-chain total such as 'staking').
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"not a chain name: {name!r}")
    key = fold(name)
    if key in _NOT_CHAINS:
        raise ValueError(f"not a chain name: {name!r}")
    return _ALIASES.get(key, name.strip())


def is_known(name: str) -> bool:
    """Whether the alias map knows this spelling (unknown chains are loaded, but worth a warning)."""
    return isinstance(name, str) and fold(name) in _ALIASES


def chain_of_tvl_key(key: str) -> str | None:
    """The canonical chain behind a ``chainTvls`` key (``Ethereum-staking`` -> ``Ethereum``), or None for a
    cross-chain total such as ``staking``."""
    base = _TVL_SUFFIX.sub("", key)
    try:
        return canonical_chain(base)
    except ValueError:
        return None
