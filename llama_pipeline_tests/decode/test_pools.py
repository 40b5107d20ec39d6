"""The ``/pools`` model against the real samples, a full-size synthetic day and every kind of bad input.

A bad value is never written by the test's own reading of the field: the expected column value of an
odd value is what ``coerce.leniently`` makes of it with the reader the model declares for the field,
and every other record of the day must come out exactly as in the clean day.
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import functools
import json
import math
import random

import pandas as pd
import pytest

from llama_pipeline.decode import coerce
from llama_pipeline.decode import pools
from llama_pipeline.decode.pools import UNKNOWN, parse_pools
from llama_pipeline.fetch.payloads import PayloadError
from llama_pipeline_tests.conftest import FIXTURES
from llama_pipeline_tests.testing import synthetic

DAY = dt.date(2025, 10, 6)
POOL = "66985a81-9c51-46ca-9977-42b4fe7bc6df"
NAN, INF = float("nan"), float("inf")


def body(records: list) -> bytes:
    """The records as the API serves them (json.dumps writes NaN/Infinity literals as json.loads reads them)."""
    return json.dumps({"status": "success", "data": records}).encode()


@functools.cache
def _clean_day_json(n: int) -> str:
    protocols = synthetic.generate_protocols(max(n // 2, 50), seed=0)
    return json.dumps(json.loads(synthetic.dumps(synthetic.generate_pools(n, seed=0, protocols=protocols)))["data"])


def clean_day(n: int) -> list:
    return json.loads(_clean_day_json(n))


def rows(parsed: pools.ParsedPools) -> dict[str, tuple[dict, dict]]:
    """Each kept pool's pools row and snapshot row, by pool id."""
    dims = parsed.pools.astype(object).where(parsed.pools.notna(), None).to_dict("records")
    facts = parsed.snapshots.astype(object).where(parsed.snapshots.notna(), None).to_dict("records")
    return {d["pool_id"]: (d, f) for d, f in zip(dims, facts)}


def read(path: str) -> bytes:
    found = (FIXTURES / path).read_bytes()
    return found if found.lstrip().startswith(b"{") else b'{"status":"success","data":' + found + b"}"


needs_samples = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"real samples not present at {FIXTURES}")


# --- real samples and a full-size day -----------------------------------------------------------------

@needs_samples
def test_five_pool_sample_without_status_loads_completely():
    parsed = parse_pools(read("pools_aujl-stablecoin_quant_fixture_5pools.json"), dt.date(2025, 9, 6))
    assert parsed.rejects == [] and len(parsed.snapshots) == 5
    row = parsed.snapshots.set_index("pool_id").loc[POOL]
    assert row["tvl_usd"] == 5698745714 and row["apy"] == 9.31466 and row["predicted_class"] == "Stable/Up"
    assert row["extra"] is None  # all 28 fields have columns


@needs_samples
def test_subset_pools_keep_unknown_fields_in_extra():
    name = "poolsOld-subset_PaulApivat-pipe_converted-from-parquet_2025-10-06.json"
    records = json.loads(read(name))["data"]
    parsed = parse_pools(read(name), DAY)
    assert len(parsed.snapshots) + len(parsed.rejects) == len(records)
    assert len(parsed.snapshots) > 0.99 * len(records)
    assert all(extra and "pool_old" in extra for extra in parsed.snapshots["extra"].head(50))


@needs_samples
def test_sample_of_120_pools_has_every_value_of_its_json():
    name = "pools_sample120_aave-strat_2026-05-28.json"
    records = json.loads(read(name))["data"]
    parsed = parse_pools(read(name), dt.date(2026, 5, 28))
    assert parsed.rejects == [] and len(parsed.snapshots) == len(records) == 120
    by_id = rows(parsed)
    for record in records:
        dim, fact = by_id[record["pool"]]
        assert fact["tvl_usd"] == record["tvlUsd"] and fact["apy"] == record["apy"]
        assert dim["symbol"] == record["symbol"] and dim["project"] == record["project"]
        assert dim["underlying_tokens"] == record.get("underlyingTokens")


def test_full_size_synthetic_day():
    records = clean_day(17000)
    parsed = parse_pools(body(records), DAY)
    assert len(parsed.snapshots) == 17000 and parsed.rejects == [] and parsed.invalid_values == 0
    assert parsed.snapshots["tvl_usd"].sum() == pytest.approx(sum(r["tvlUsd"] for r in records))
    assert parsed.snapshots["snapshot_date"].eq(DAY).all() and parsed.snapshots["extra"].isna().all()
    assert str(parsed.snapshots["tvl_usd"].dtype) == "float64"
    by_id = rows(parsed)
    for record in random.Random(0).sample(records, 200):
        dim, fact = by_id[record["pool"]]
        for field, (column, _) in {**pools._POOL_ATTRIBUTES, **pools._METRICS}.items():
            assert {**dim, **fact}[column] == record.get(field), field
        assert fact["predicted_class"] == (record.get("predictions") or {}).get("predictedClass")


# --- the envelope ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    (b"<html><body>502 Bad Gateway</body></html>", "is not JSON"),
    (b'{"status": "success", "data": [{"pool": "' + POOL.encode() + b'", "chain"', "is truncated or malformed JSON"),
    (b'{"status": "error", "data": [{"pool": "' + POOL.encode() + b'"}]}', "has status 'error'"),
    (b'{"status": "success", "data": []}', "empty list"),
    (b'{"status": "success", "data": {"pool": 1}}', "where a list of records was expected"),
    (b'[{"pool": "' + POOL.encode() + b'"}]', "is not the expected {'status', 'data'} object"),
    (b"{\"data\": [\"\xff\"]}", "is not UTF-8 text"),
])
def test_an_unusable_body_is_refused_with_its_reason(raw, expected):
    with pytest.raises(PayloadError) as raised:
        parse_pools(raw, DAY, "https://x/pools")
    assert str(raised.value).startswith("pools payload from https://x/pools (") and expected in str(raised.value)


# --- one odd value costs that value only ---------------------------------------------------------------

def test_an_unreadable_metric_costs_that_value_not_the_pools_day():
    record = {"pool": POOL, "chain": "BSC", "project": "p", "symbol": "US\x00DC", "tvlUsd": 10 ** 400,
              "apy": "NaN", "apyBase": math.nan, "apyReward": math.inf, "mu": "abc", "sigma": 1.5,
              "count": 3.5, "predictions": {"predictedProbability": "lots"}, "brandNew": {"x": math.nan}}
    parsed = parse_pools(body([record]), DAY)
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
    parsed = parse_pools(body(records), DAY)
    reasons = [r.reason for r in parsed.rejects]
    assert [r.record_index for r in parsed.rejects] == [1, 2, 3, 4]
    assert "duplicate pool id" in reasons[0] and "malformed pool id" in reasons[1] and "not an object" in reasons[3]
    assert json.loads(parsed.rejects[3].record) == "not an object" and parsed.rejects[2].record_key == "nope"
    last = parsed.pools.iloc[-1]
    assert (last["chain"], last["project"]) == ("(unknown)", "(unknown)")
    assert set(parsed.snapshots.iloc[-1]["extra"]["_invalid_fields"]) == {"chain", "project"}


def test_a_days_chain_spellings_and_projects_are_those_of_its_kept_pools():
    """What ``chains`` and ``projects`` take from the day (``warehouse_days.decode_day``)."""
    records = [{"pool": POOL, "chain": 56, "project": 123}, {"pool": "bad", "chain": "BSC", "project": "x"},
               {"pool": "11111111-2222-4333-8444-555555555555", "chain": "Binance", "project": " y "}]
    parsed = parse_pools(body(records), DAY)
    spellings, projects = parsed.chain_spellings, set(parsed.pools["project"])
    assert set(parsed.pools["chain"]) == set(spellings) and set(parsed.pools["project"]) == projects
    assert spellings == {"56": {"56"}, "BSC": {"Binance"}} and projects == {"123", "y"}


NUMBER_FIELDS = [f for f, (_, read) in pools._METRICS.items() if read is coerce.number]
INTEGER_FIELDS = [f for f, (_, read) in pools._METRICS.items() if read is coerce.integer]
BOOLEAN_FIELDS = [f for f, (_, read) in {**pools._POOL_ATTRIBUTES, **pools._METRICS}.items() if read is coerce.boolean]
TEXT_FIELDS = [f for f, (_, read) in pools._POOL_ATTRIBUTES.items() if read is coerce.text]
TOKEN_FIELDS = [f for f, (_, read) in pools._POOL_ATTRIBUTES.items() if read is coerce.text_list]

ODD_NUMBERS = [NAN, INF, -INF, 10**400, -(10**400), "12.5", " 3 ", "abc", "", True, False, [], {}, 2**53 + 1,
               2**64 + 3, 1e308, -0.0, 0, 5, None]
ODD_INTEGERS = [3.0, 3.5, -0.0, 2**40, 2**31 - 1, -(2**31 - 1), -(2**31), 2**31, "7", "7.5", True, None, NAN,
                INF, 10**400]
ODD_BOOLEANS = ["true", "no", "T", " yes ", "maybe", "", 0, 1, 2, 0.0, 1.0, None, [], NAN]
ODD_TEXTS = [5, 2.5, -0.0, True, False, NAN, INF, "a\x00b", "\ud800", "h\u00e9llo \U0001f600", "", "  ", [], {}, None]
ODD_TOKEN_LISTS = ["0xabc", "", ["a", ""], ["a", " "], ["a", 5], [None], ["\x00"], ["\ud800"], [], ["\u00e9"],
                   [True], [2.5], 5, {"a": 1}, None]
ODD_PREDICTIONS = [[], [1], "x", 0, 1, {}, None, True, {"predictedClass": 5, "predictedProbability": "0.5",
                   "binnedConfidence": 2.0}, {"predictedProbability": NAN}, {"binnedConfidence": 3.5},
                   {"predictedClass": "\x00"}, {"predictedClass": "\u00e9"}, {"unknown": 1},
                   collections.OrderedDict(predictedClass="Up"), {"binnedConfidence": 10**400}]
ODD_EXTRAS = [{"new": 1}, {"nested": {"a": [1, {"b": NAN}]}}, {"k\x00": 1}, {"x": NAN}, {"x": -INF},
              {"x": "\ud800"}, {"x": None}, {"x": [1, "two", None]}, {"\u00e9": "\u00e9"}, {"x": {"y": "\x00"}}]
ODD_POOL_IDS = [None, "", "bad", 123, "66985A81-9C51-46CA-9977-42B4FE7BC6DF", " 66985a81-9c51-46ca-9977-42b4fe7bc6df ",
                "{66985a81-9c51-46ca-9977-42b4fe7bc6df}", "66985a819c5146ca997742b4fe7bc6df",
                "66985a81-9c51-46ca-9977-42b4fe7bc6dg", "66985a81-9c51-46ca-9977_42b4fe7bc6df",
                "66985a81-9c51-46ca-9977-42b4fe7bc6d\u00e9", "66985a81-9c51-46ca-9977-42b4fe7bc6df\n"]
ODD_CHAINS = [None, "", "  ", 56, 5.5, True, "staking", "Binance", " bsc ", "Op_bnb", "\x00", "\ud800", "\u00e9ther",
              "borrowed", [], 10**400]
ODD_PROJECTS = [None, "", "  ", " padded ", 123, 1.5, False, "x\x00", "\ud800", "caf\u00e9", {}, -(10**400)]


def single_oddities() -> list[tuple[str, object]]:
    cases = [("pool", v) for v in ODD_POOL_IDS]
    cases += [("chain", v) for v in ODD_CHAINS] + [("project", v) for v in ODD_PROJECTS]
    cases += [(f, v) for f in NUMBER_FIELDS[:2] for v in ODD_NUMBERS]
    cases += [(f, v) for f in INTEGER_FIELDS for v in ODD_INTEGERS]
    cases += [(f, v) for f in BOOLEAN_FIELDS for v in ODD_BOOLEANS]
    cases += [(f, v) for f in TEXT_FIELDS[:2] for v in ODD_TEXTS]
    cases += [(f, v) for f in TOKEN_FIELDS for v in ODD_TOKEN_LISTS]
    cases += [("symbol", 10**400), ("underlyingTokens", [10**400])]
    return cases + [("predictions", v) for v in ODD_PREDICTIONS]


def expected_value(field: str, value: object) -> tuple[str, object, bool]:
    """The column, the value the record's row must hold and whether the value is recorded as invalid."""
    if field == "chain":
        read = lambda f, v: coerce.leniently(pools._chain, f, v)  # noqa: E731
        got, problem = read(field, value)
        return "chain", got or UNKNOWN, problem is not None
    if field == "project":
        got, problem = coerce.leniently(pools._project, field, value)
        return "project", got or UNKNOWN, problem is not None
    column, reader = {**pools._POOL_ATTRIBUTES, **pools._METRICS}[field]
    got, problem = coerce.leniently(reader, field, value)
    return column, got, problem is not None


@pytest.mark.parametrize("position", [0, 17, 39])
@pytest.mark.parametrize(("field", "value"), single_oddities(),
                         ids=[f"{field}={value!r:.40}" for field, value in single_oddities()])
def test_one_odd_value(field, value, position):
    clean = rows(parse_pools(body(clean_day(40)), DAY))
    records = clean_day(40)
    records[position][field] = copy.deepcopy(value)
    parsed = parse_pools(body(records), DAY)
    got = rows(parsed)
    odd_id = clean_day(40)[position]["pool"]
    others = {pool_id: row for pool_id, row in clean.items() if pool_id != odd_id}
    if field == "pool":
        try:
            canonical = coerce.pool_id(value)
        except coerce.BadField:
            assert [r.record_index for r in parsed.rejects] == [position]
            assert "malformed pool id" in parsed.rejects[0].reason and got == others
            return
        assert parsed.rejects == [] and len(got) == 40 and canonical in got
        assert {k: v for k, v in got.items() if k != canonical} == others
        return
    assert parsed.rejects == [] and len(got) == 40
    assert {k: v for k, v in got.items() if k != odd_id} == others
    dim, fact = got[odd_id]
    invalid = (fact["extra"] or {}).get("_invalid_fields", {})
    if field == "predictions":
        predicted = value if isinstance(value, dict) else {}
        for name, (column, reader) in pools._PREDICTIONS.items():
            assert fact[column] == coerce.leniently(reader, name, predicted.get(name))[0]
        assert ("predictions" in invalid) == (bool(value) and not isinstance(value, dict))
        return
    column, expected, is_invalid = expected_value(field, value)
    assert {**dim, **fact}[column] == expected
    assert (field in invalid) == is_invalid
    assert parsed.invalid_values == len(invalid)
    if is_invalid:
        assert invalid[field]["value"] == coerce.json_safe(json.loads(json.dumps(value)))


@pytest.mark.parametrize("extra", ODD_EXTRAS, ids=repr)
def test_unknown_fields_are_kept(extra):
    records = clean_day(40)
    for record in records[5:7]:
        record.update(copy.deepcopy(extra))
    parsed = parse_pools(body(records), DAY)
    assert parsed.rejects == []
    kept = parsed.snapshots["extra"].iloc[5]
    invalid = {}
    expected = coerce.extra_fields(json.loads(json.dumps(records[5])), pools.KNOWN_FIELDS, invalid)
    assert kept == expected and parsed.snapshots["extra"].iloc[6] == expected
    assert parsed.snapshots["extra"].iloc[:5].isna().all() and parsed.invalid_values == 2 * len(invalid)


def test_records_that_are_not_objects_and_duplicates():
    """A duplicate is judged against the records kept before it, whatever else is odd about either."""
    records = clean_day(40)
    first = copy.deepcopy(records[2])
    records[1] = {**copy.deepcopy(first), "chain": ""}  # the id first appears in a record kept with (unknown)
    records[10] = copy.deepcopy(first)
    records[20] = {**first, "pool": first["pool"].upper()}  # the same id, spelled otherwise
    records.insert(3, None)
    records.append([1, 2])
    parsed = parse_pools(body(records), DAY)
    reasons = {r.record_index: r.reason for r in parsed.rejects}
    assert sorted(reasons) == [2, 3, 11, 21, 41]
    assert reasons[3] == "record is NoneType, not an object" and reasons[41] == "record is list, not an object"
    assert all(reasons[i] == "pool: duplicate pool id (first seen at record 1)" for i in (2, 11, 21))
    assert len(parsed.snapshots) == 37 and parsed.pools.set_index("pool_id").loc[first["pool"], "chain"] == UNKNOWN


@pytest.mark.parametrize("seed", range(6))
def test_odd_records_mixed_into_a_clean_day(seed):
    """Whatever is mixed in, the day parses: untouched records as in the clean day, only pool ids rejected."""
    rng = random.Random(seed)
    clean = rows(parse_pools(body(clean_day(3000)), DAY))
    records = clean_day(3000)
    touched = set()
    for index in rng.sample(range(len(records)), 300):
        touched.add(records[index]["pool"])
        field, value = rng.choice(single_oddities())
        records[index][field] = copy.deepcopy(value)
    parsed = parse_pools(body(records), DAY)
    got = rows(parsed)
    assert len(got) + len(parsed.rejects) == 3000
    assert all("pool id" in r.reason for r in parsed.rejects)
    untouched = [pool_id for pool_id in clean if pool_id not in touched]
    assert [got.get(pool_id) for pool_id in untouched] == [clean[pool_id] for pool_id in untouched]


def test_columns_without_any_value_keep_their_dtype():
    records = clean_day(40)
    for record in records:
        for field in ("poolMeta", "apyBase", "count", "stablecoin", "rewardTokens", "predictions"):
            record[field] = None
    parsed = parse_pools(body(records), DAY)
    assert parsed.snapshots["apy_base"].dtype == object and parsed.snapshots["apy_base"].isna().all()
    records[7]["count"] = 3
    assert str(parse_pools(body(records), DAY).snapshots["count"].dtype) == "float64"  # with NULLs: as pandas infers
    empty = parse_pools(body([{"pool": "bad"}]), DAY)
    assert list(empty.snapshots.columns) == pools.SNAPSHOT_COLUMNS and len(empty.snapshots) == 0


def test_missing_fields_are_null():
    parsed = parse_pools(body([{"pool": r["pool"], "chain": "BSC", "project": "p"} for r in clean_day(40)]), DAY)
    assert parsed.rejects == [] and parsed.invalid_values == 0
    assert parsed.snapshots["tvl_usd"].isna().all() and parsed.pools["symbol"].isna().all()


def test_huge_finite_numbers_convert_exactly():
    records = clean_day(6)
    values = [1e308, 1.7e308, 2**53 + 1, 2**63 + 1, 3**600, -(10**300) + 7]
    for record, value in zip(records, values):
        record["tvlUsd"] = value
    parsed = parse_pools(body(records), DAY)
    assert list(parsed.snapshots["tvl_usd"]) == [float(v) for v in values] and parsed.invalid_values == 0


def test_frames_hold_the_expected_columns():
    parsed = parse_pools(body(clean_day(40)), DAY)
    assert list(parsed.pools.columns) == pools.POOL_COLUMNS
    assert list(parsed.snapshots.columns) == pools.SNAPSHOT_COLUMNS
    assert isinstance(parsed.pools, pd.DataFrame) and parsed.record_count == 40
