"""The recorded DeFiLlama samples in ../shared/fixtures/defillama load as the synthetic ones do."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from llama_pipeline.payloads import decode_records
from llama_pipeline.transform.pools import parse_pools
from llama_pipeline.transform.protocols import parse_protocols
from llama_pipeline_tests.conftest import FIXTURES, all_assets, materialize

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")

POOLS_5 = "pools_aujl-stablecoin_quant_fixture_5pools.json"
POOLS_OLD = "poolsOld-subset_PaulApivat-pipe_converted-from-parquet_2025-10-06.json"
PROTOCOLS_FULL = "protocols_Jolina1205-defi_2024-03-11_full.json"
PROTOCOLS_CASSETTE = "protocols_openbb-cassette_2022-01-29_first10.json"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_five_pool_sample_without_status_loads_completely():
    records = decode_records("pools", read(POOLS_5), POOLS_5)  # this sample has no "status"
    parsed = parse_pools(records, dt.date(2025, 9, 6))
    assert parsed.rejects == []
    assert len(parsed.snapshots) == 5
    row = parsed.snapshots.set_index("pool_id").loc["66985a81-9c51-46ca-9977-42b4fe7bc6df"]
    assert row["tvl_usd"] == 5698745714 and row["apy"] == 9.31466 and row["predicted_class"] == "Stable/Up"
    assert row["extra"] is None  # all 28 fields have columns


def test_full_protocols_sample_loads_with_quirks():
    records = decode_records("protocols", read(PROTOCOLS_FULL), PROTOCOLS_FULL)
    parsed = parse_protocols(records, dt.date(2024, 3, 11))
    assert len(records) == 4047
    assert [r.reason for r in parsed.rejects] == []
    projects = parsed.projects.set_index("slug")
    assert len(projects) == 4047
    # parent#slug -> slug; "-" symbol -> NULL; string audits -> int; deadFrom as int or string -> date
    assert projects.loc[projects["parent_protocol"].notna(), "parent_protocol"].str.startswith("parent#").sum() == 0
    assert (projects["symbol"] == "-").sum() == 0
    assert projects["audits"].dropna().isin([0, 1, 2, 3, 6]).all()
    # Two real deadFrom values are impossible dates: NULL, with the value and reason kept in extra.
    invalid = {slug: extra["_invalid_fields"] for slug, extra in projects["extra"].items()
               if extra and "_invalid_fields" in extra}
    assert sorted(v["deadFrom"]["value"] for v in invalid.values()) == ["20213-01-30", "2023-20-20"]
    assert projects["dead_from"].notna().sum() == 140
    # /protocols chain spellings fold into /pools names.
    all_chains = {c for chains in projects["chains"].dropna() for c in chains}
    assert "BSC" in all_chains and "Binance" not in all_chains and "xDai" not in all_chains
    # Fields without a column are kept, not dropped.
    assert sum(1 for extra in projects["extra"] if extra and "hallmarks" in extra) == 550


def test_old_cassette_sample_parses():
    records = decode_records("protocols", read(PROTOCOLS_CASSETTE), PROTOCOLS_CASSETTE)
    parsed = parse_protocols(records, dt.date(2022, 1, 29))
    assert len(parsed.projects) == 10 and parsed.rejects == []


def test_subset_pools_keep_unknown_fields_in_extra():
    records = json.loads(read(POOLS_OLD))
    records = records["data"] if isinstance(records, dict) else records
    parsed = parse_pools(records, dt.date(2025, 10, 6))
    assert len(parsed.snapshots) + len(parsed.rejects) == len(records)
    assert len(parsed.snapshots) > 0.99 * len(records)
    assert all(extra and "pool_old" in extra for extra in parsed.snapshots["extra"].head(50))


def test_real_samples_through_the_whole_graph(resources, http, query):
    http.set("/pools", read(POOLS_5))
    http.set("/protocols", read(PROTOCOLS_FULL))
    assert materialize(all_assets(), resources).success
    assert query("SELECT count(*) FROM pool_snapshots") == [(5,)]
    assert query("SELECT count(*) FROM projects WHERE listed_in_protocols") == [(4047,)]
    # Pools whose project /protocols lacks still join.
    assert query("SELECT count(*) FROM pools JOIN projects ON slug = project") == [(5,)]
