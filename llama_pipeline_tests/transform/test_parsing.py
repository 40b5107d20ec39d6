"""One odd record is set aside or coerced; it never fails the parse of a day."""

from __future__ import annotations

import datetime as dt
import math

from llama_pipeline.transform.pools import chains_and_projects, parse_pools
from llama_pipeline.transform.protocols import parse_protocols

DAY = dt.date(2026, 1, 1)
POOL = "66985a81-9c51-46ca-9977-42b4fe7bc6df"


def test_protocol_with_odd_fields_keeps_its_row_and_the_values():
    parsed = parse_protocols([{"slug": "a", "chains": 5}, {"slug": "b", "tvl": math.nan},
                              {"slug": "c", "tvl": 10 ** 400}], DAY)
    assert parsed.rejects == [] and list(parsed.projects["slug"]) == ["a", "b", "c"]
    invalid = [extra["_invalid_fields"] for extra in parsed.projects["extra"]]
    assert invalid[0]["chains"]["value"] == 5
    assert invalid[1]["tvl"]["value"] == "nan"  # JSONB cannot hold NaN: kept as its text
    assert "out of range" in invalid[2]["tvl"]["reason"]


def test_pool_with_a_huge_number_is_rejected_not_fatal():
    parsed = parse_pools([{"pool": POOL, "chain": "BSC", "project": "p", "tvlUsd": 10 ** 400}], DAY)
    assert len(parsed.snapshots) == 0 and "tvlUsd: number out of range" in parsed.rejects[0].reason


def test_chains_and_projects_see_the_same_names_as_parse_pools():
    records = [{"pool": POOL, "chain": 56, "project": 123}, {"pool": "bad", "chain": "BSC", "project": "x"}]
    parsed = parse_pools(records, DAY)
    spellings, projects = chains_and_projects(records)
    assert set(parsed.pools["chain"]) == set(spellings) and set(parsed.pools["project"]) == projects
