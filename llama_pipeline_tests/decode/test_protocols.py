"""The ``/protocols`` model against the real samples, a full-size synthetic list and odd records."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from llama_pipeline.decode import coerce
from llama_pipeline.decode import protocols
from llama_pipeline.decode.protocols import (chain_rows, listed_protocols, parse_protocols,
                                             protocol_chain_spellings, with_placeholders)
from llama_pipeline.fetch.payloads import PayloadError
from llama_pipeline_tests.conftest import FIXTURES
from llama_pipeline_tests.testing import synthetic

DAY = dt.date(2026, 1, 1)
needs_samples = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")


def body(records: list) -> bytes:
    return json.dumps(records).encode()


@needs_samples
def test_full_protocols_sample_loads_with_quirks():
    raw = (FIXTURES / "protocols_Jolina1205-defi_2024-03-11_full.json").read_bytes()
    parsed = parse_protocols(raw, dt.date(2024, 3, 11))
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
    assert parsed.invalid_values == 2
    assert projects["dead_from"].notna().sum() == 140
    # One record's methodology is a boolean: spelled out as JSON would, not refused.
    assert (projects["methodology"] == "true").sum() + (projects["methodology"] == "false").sum() == 1
    # /protocols chain spellings fold into /pools names.
    all_chains = {c for chains in projects["chains"].dropna() for c in chains}
    assert "BSC" in all_chains and "Binance" not in all_chains and "xDai" not in all_chains
    assert "Binance" in protocol_chain_spellings(raw)["BSC"]
    # Fields without a column are kept, not dropped.
    assert sum(1 for extra in projects["extra"] if extra and "hallmarks" in extra) == 550


@needs_samples
def test_old_cassette_sample_parses():
    raw = (FIXTURES / "protocols_openbb-cassette_2022-01-29_first10.json").read_bytes()
    parsed = parse_protocols(raw, dt.date(2022, 1, 29))
    assert len(parsed.projects) == 10 and parsed.rejects == []


def test_full_size_synthetic_list():
    records = synthetic.generate_protocols(7000, seed=0)
    listed = listed_protocols(synthetic.dumps(records), DAY)
    assert len(listed.rows) + len(listed.rejects) == 7000 and listed.record_count == 7000
    slugs = [row[0] for row in listed.rows]
    assert len(set(slugs)) == len(slugs)
    by_slug = {row[0]: dict(zip(protocols.PROJECT_COLUMNS, row)) for row in listed.rows}
    for record in records[:300]:
        if record["slug"] not in by_slug:
            continue
        row = by_slug[record["slug"]]
        assert row["name"] == record["name"] and row["tvl"] == record.get("tvl")
        assert row["audits"] == (int(record["audits"]) if record.get("audits") is not None else None)
        assert row["symbol"] == (None if record.get("symbol") in ("-", "") else record.get("symbol"))


def test_protocol_with_odd_fields_keeps_its_row_and_the_values():
    parsed = parse_protocols(body([{"slug": "a", "chains": 5}, {"slug": "b", "tvl": math.nan},
                                   {"slug": "c", "tvl": 10 ** 400}]), DAY)
    assert parsed.rejects == [] and list(parsed.projects["slug"]) == ["a", "b", "c"]
    invalid = [extra["_invalid_fields"] for extra in parsed.projects["extra"]]
    assert invalid[0]["chains"]["value"] == 5
    assert invalid[1]["tvl"]["value"] == "nan"  # JSONB cannot hold NaN: kept as its text
    assert "out of range" in invalid[2]["tvl"]["reason"]


@pytest.mark.parametrize(("field", "value", "column", "expected", "invalid"), [
    ("symbol", "-", "symbol", None, False),
    ("symbol", 5, "symbol", "5", False),
    ("chain", "Binance", "chain", "BSC", False),
    ("chain", "Multi-Chain", "chain", "Multi-Chain", False),
    ("chain", "staking", "chain", None, True),
    ("chains", ["Binance", "xDai", "BSC"], "chains", ["BSC", "Gnosis"], False),
    ("chains", ["Ethereum", ""], "chains", None, True),
    ("audits", "2", "audits", 2, False),
    ("audits", 2.0, "audits", 2, False),
    ("audits", "two", "audits", None, True),
    ("parentProtocol", "parent#uniswap", "parent_protocol", "uniswap", False),
    ("listedAt", 1639091592, "listed_at", dt.datetime(2021, 12, 9, 23, 13, 12, tzinfo=dt.timezone.utc), False),
    ("listedAt", "soon", "listed_at", None, True),
    ("deadFrom", 1639091592, "dead_from", dt.date(2021, 12, 9), False),
    ("deadFrom", "2023-05-01", "dead_from", dt.date(2023, 5, 1), False),
    ("deadFrom", "2023-20-20", "dead_from", None, True),
    ("methodology", True, "methodology", "true", False),
    ("description", "a\x00b", "description", "ab", True),
    ("tvl", "12.5", "tvl", 12.5, False),
    ("tvl", math.inf, "tvl", None, True),
    ("chainTvls", {"Ethereum": 1.5}, "chain_tvls", {"Ethereum": 1.5}, False),
    ("chainTvls", {"Ethereum": math.nan}, "chain_tvls", None, True),
    ("chainTvls", [1], "chain_tvls", None, True),
])
def test_one_odd_value(field, value, column, expected, invalid):
    records = synthetic.generate_protocols(20, seed=4)
    clean = listed_protocols(body(records), DAY)
    records[7][field] = value
    listed = listed_protocols(body(records), DAY)
    assert listed.rejects == () and len(listed.rows) == 20
    assert [r for i, r in enumerate(listed.rows) if i != 7] == [r for i, r in enumerate(clean.rows) if i != 7]
    row = dict(zip(protocols.PROJECT_COLUMNS, listed.rows[7]))
    assert row[column] == expected
    problems = (row["extra"] or {}).get("_invalid_fields", {})
    assert (field in problems) == invalid
    if invalid:
        assert problems[field]["value"] == coerce.json_safe(json.loads(json.dumps(value)))


def test_only_the_slug_sets_a_record_aside():
    records = [{"slug": "a"}, {"slug": " a "}, {"slug": ""}, {"name": "no slug"}, None, [1], {"slug": "b", "x": 1}]
    listed = listed_protocols(body(records), DAY)
    assert [row[0] for row in listed.rows] == ["a", "b"]
    reasons = {r.record_index: r.reason for r in listed.rejects}
    assert reasons[1] == "slug: duplicate slug (first seen at record 0)"
    assert reasons[2] == reasons[3] == "slug: missing or empty"
    assert reasons[4] == "record is NoneType, not an object" and reasons[5] == "record is list, not an object"
    assert dict(zip(protocols.PROJECT_COLUMNS, listed.rows[1]))["extra"] == {"x": 1}


def test_placeholders_and_chain_rows():
    records = [{"slug": "a", "chains": ["Binance"]}, {"slug": "b", "chains": ["staking", 5]}]
    listed = listed_protocols(body(records), DAY)
    parsed = with_placeholders(listed, {"a", "zzz"}, DAY)
    assert list(parsed.projects["slug"]) == ["a", "b", "zzz"]
    assert list(parsed.projects["listed_in_protocols"]) == [True, True, False]
    assert listed.chain_spellings == {"BSC": {"Binance"}}
    chains = chain_rows(DAY, listed.chain_spellings, {"BSC": {"bsc"}, "Ethereum": {"Ethereum"}})
    assert chains.to_dict("records") == [
        {"name": "BSC", "aliases": ["BSC", "Binance", "bsc"], "first_seen_date": DAY, "last_seen_date": DAY},
        {"name": "Ethereum", "aliases": ["Ethereum"], "first_seen_date": DAY, "last_seen_date": DAY}]


@pytest.mark.parametrize(("raw", "expected"), [
    (b"<html>502</html>", "is not JSON"),
    (b'[{"slug": "a"', "is truncated or malformed JSON"),
    (b"[]", "empty list"),
    (b'{"slug": "a"}', "holds dict where a list of records was expected"),
])
def test_an_unusable_body_is_refused_with_its_reason(raw, expected):
    with pytest.raises(PayloadError, match=expected):
        listed_protocols(raw, DAY, "https://x/protocols")
    # A body with literals msgspec refuses (NaN) is still read, as json.loads reads it.
    assert len(listed_protocols(b'[{"slug": "a", "tvl": NaN}]', DAY).rows) == 1
