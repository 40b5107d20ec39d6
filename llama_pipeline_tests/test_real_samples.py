"""The recorded DeFiLlama samples in ../shared/fixtures/defillama load through the whole graph as the
synthetic ones do (the payload models' own tests on them are in llama_pipeline_tests/decode/)."""

from __future__ import annotations

import pytest

from llama_pipeline_tests.conftest import FIXTURES, all_assets, materialize

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")

POOLS_5 = "pools_aujl-stablecoin_quant_fixture_5pools.json"
PROTOCOLS_FULL = "protocols_Jolina1205-defi_2024-03-11_full.json"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_real_samples_through_the_whole_graph(resources, http, query):
    http.set("/pools", read(POOLS_5))
    http.set("/protocols", read(PROTOCOLS_FULL))
    assert materialize(all_assets(), resources).success
    assert query("SELECT count(*) FROM pool_snapshots") == [(5,)]
    assert query("SELECT count(*) FROM projects WHERE listed_in_protocols") == [(4047,)]
    # Pools whose project /protocols lacks still join.
    assert query("SELECT count(*) FROM pools JOIN projects ON slug = project") == [(5,)]
