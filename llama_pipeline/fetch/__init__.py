"""Fetching and archiving: the DeFiLlama client, capture rules, the raw archive and quarantine."""
