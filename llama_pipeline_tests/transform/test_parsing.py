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


def test_an_unreadable_metric_costs_that_value_not_the_pools_day():
    record = {"pool": POOL, "chain": "BSC", "project": "p", "symbol": "US\x00DC", "tvlUsd": 10 ** 400,
              "apy": "NaN", "apyBase": math.nan, "apyReward": math.inf, "mu": "abc", "sigma": 1.5,
              "count": 3.5, "predictions": {"predictedProbability": "lots"}, "brandNew": {"x": math.nan}}
    parsed = parse_pools([record], DAY)
    assert parsed.rejects == [] and len(parsed.snapshots) == 1
    row = parsed.snapshots.iloc[0]
    assert [row[c] for c in ("tvl_usd", "apy", "apy_base", "apy_reward", "mu", "count", "predicted_probability")] \
        == [None] * 7
    assert row["sigma"] == 1.5 and parsed.pools.iloc[0]["symbol"] == "USDC"  # the NUL removed
    invalid = row["extra"]["_invalid_fields"]
    assert invalid["tvlUsd"]["value"] == str(10 ** 400) and "out of range" in invalid["tvlUsd"]["reason"]
    assert invalid["apy"] == {"value": "NaN", "reason": "apy: expected a number, got 'NaN'"}
    assert invalid["apyBase"]["value"] == "nan" and "not a finite number" in invalid["apyBase"]["reason"]
    assert invalid["apyReward"]["value"] == "inf"
    assert invalid["mu"]["value"] == "abc" and invalid["count"]["value"] == 3.5
    assert invalid["predictions.predictedProbability"]["value"] == "lots"
    assert invalid["symbol"]["value"] == "US\\u0000DC" and "NUL" in invalid["symbol"]["reason"]
    assert invalid["brandNew"]["value"] == {"x": "nan"} and "brandNew" not in row["extra"]
    assert parsed.invalid_values == 9


def test_only_the_pool_id_sets_a_record_aside():
    good = {"pool": POOL, "chain": "BSC", "project": "p"}
    records = [good, dict(good), dict(good, pool=None), dict(good, pool="nope"), "not an object",
               dict(good, pool="11111111-2222-4333-8444-555555555555", chain="", project=None)]
    parsed = parse_pools(records, DAY)
    reasons = [r.reason for r in parsed.rejects]
    assert [r.record_index for r in parsed.rejects] == [1, 2, 3, 4]
    assert "duplicate pool id" in reasons[0] and "malformed pool id" in reasons[1] and "not an object" in reasons[3]
    last = parsed.pools.iloc[-1]
    assert (last["chain"], last["project"]) == ("(unknown)", "(unknown)")
    assert set(parsed.snapshots.iloc[-1]["extra"]["_invalid_fields"]) == {"chain", "project"}


def test_chains_and_projects_see_the_same_names_as_parse_pools():
    records = [{"pool": POOL, "chain": 56, "project": 123}, {"pool": "bad", "chain": "BSC", "project": "x"}]
    parsed = parse_pools(records, DAY)
    spellings, projects = chains_and_projects(records)
    assert set(parsed.pools["chain"]) == set(spellings) and set(parsed.pools["project"]) == projects
