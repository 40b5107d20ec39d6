from __future__ import annotations

import pytest

from llama_pipeline.decode import chain_aliases
from llama_pipeline.decode.chain_aliases import canonical_chain, chain_of_tvl_key, fold


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        # /protocols spellings (API_NOTES) -> the /pools spelling
        ("Binance", "BSC"), ("xDai", "Gnosis"), ("Avax", "Avalanche"), ("Avalanche", "Avalanche"),
        ("zkSync Era", "ZKsync Era"), ("Ripple", "XRPL"), ("Op_Bnb", "opBNB"),
        # /pools' own variants
        ("BSC", "BSC"), ("Gnosis", "Gnosis"), ("ZKsync Era", "ZKsync Era"), ("XRPL", "XRPL"),
        ("opBNB", "opBNB"), ("Opbnb", "opBNB"), ("Op_bnb", "opBNB"), ("Zksync", "ZKsync Era"),
        ("op_bnb", "opBNB"), ("  Ethereum ", "Ethereum"),
    ],
)
def test_spellings_fold_to_one_name(spelling, canonical):
    assert canonical_chain(spelling) == canonical


def test_unknown_chains_keep_their_spelling():
    assert canonical_chain("Brand New Chain") == "Brand New Chain"
    assert not chain_aliases.is_known("Brand New Chain")


@pytest.mark.parametrize("value", ["", "   ", None, "staking", "pool2", "borrowed"])
def test_values_that_name_no_chain_are_refused(value):
    with pytest.raises(ValueError):
        canonical_chain(value)


def test_tvl_keys():
    assert chain_of_tvl_key("Binance-staking") == "BSC"
    assert chain_of_tvl_key("Ethereum-pool2") == "Ethereum"
    assert chain_of_tvl_key("staking") is None
    assert chain_of_tvl_key("zkSync Era") == "ZKsync Era"


def test_alias_keys_are_folded():
    # A key that is not in folded form could never match.
    assert all(fold(key) == key for key in chain_aliases._ALIASES)
    # Canonical names map to themselves, so folding twice is stable.
    assert all(canonical_chain(name) == name for name in set(chain_aliases._ALIASES.values()))
