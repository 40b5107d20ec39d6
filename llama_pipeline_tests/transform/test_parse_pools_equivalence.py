"""``parse_pools`` converts whole columns at once; it must give exactly what parsing record by record
gives, for clean days, recorded samples and every kind of odd record, wherever it sits in the day."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import functools
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llama_pipeline import coerce
from llama_pipeline_tests.testing import synthetic
from llama_pipeline.transform.pools import (
    _METRICS,
    _POOL_ATTRIBUTES,
    _PREDICTIONS,
    UNKNOWN,
    _parse_pools_record_by_record,
    chains_and_projects,
    parse_pools,
)

DAY = dt.date(2025, 10, 6)
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "defillama"
REAL_SAMPLES = ["poolsOld-subset_PaulApivat-pipe_converted-from-parquet_2025-10-06.json",
                "pools_aujl-stablecoin_quant_fixture_5pools.json"]


def reference_chains_and_projects(records: list) -> tuple[dict[str, set[str]], set[str]]:
    """``chains_and_projects`` by its definition: the chains and projects of the records that parsing
    record by record keeps, each chain under the spelling it was read from."""
    parsed = _parse_pools_record_by_record(records, DAY)
    rejected = {reject.record_index for reject in parsed.rejects}
    kept = [record for index, record in enumerate(records) if index not in rejected]
    spellings: dict[str, set[str]] = {}
    for record, name in zip(kept, parsed.pools["chain"]):
        spelling = UNKNOWN if name == UNKNOWN else coerce.text("chain", coerce.without_nul(record.get("chain")))
        spellings.setdefault(name, set()).add(spelling)
    return spellings, set(parsed.pools["project"])


def outcome(parse, *args):
    """What a parse gives: its result, or the exception it raised (type and text)."""
    try:
        return parse(*args)
    except Exception as error:  # noqa: BLE001 - the same failure is part of the same result
        return type(error), str(error)


def assert_same_frames(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right, check_dtype=True, check_exact=True)
    for column in left.columns:
        # assert_frame_equal takes None for NaN and 0.0 for -0.0: compare what each cell holds too.
        assert list(map(type, left[column])) == list(map(type, right[column])), column
        if left[column].dtype.kind == "f":
            values = left[column].to_numpy()
            assert np.array_equal(np.signbit(values), np.signbit(right[column].to_numpy())), column


def assert_equivalent(records: list) -> None:
    before = copy.deepcopy(records)
    expected = outcome(_parse_pools_record_by_record, records, DAY)
    actual = outcome(parse_pools, records, DAY)
    assert records == before  # nothing written into the records
    if isinstance(expected, tuple):
        assert actual == expected
    else:
        assert not isinstance(actual, tuple), actual
        assert_same_frames(actual.pools, expected.pools)
        assert_same_frames(actual.snapshots, expected.snapshots)
        assert actual.rejects == expected.rejects
        assert actual.invalid_values == expected.invalid_values
    assert outcome(chains_and_projects, records) == outcome(reference_chains_and_projects, records)


@functools.cache
def _clean_day_json(n: int) -> str:
    protocols = synthetic.generate_protocols(max(n // 2, 50), seed=0)
    envelope = synthetic.generate_pools(n, seed=0, protocols=protocols)
    return json.dumps(json.loads(synthetic.dumps(envelope))["data"])


def clean_day(n: int) -> list:
    """A synthetic day of ``n`` records, decoded from JSON as the pipeline decodes it (fresh each call)."""
    return json.loads(_clean_day_json(n))


def test_full_size_synthetic_day():
    records = clean_day(17000)
    parsed = parse_pools(records, DAY)
    assert len(parsed.snapshots) == 17000 and parsed.rejects == []
    assert_equivalent(records)


@pytest.mark.parametrize("name", REAL_SAMPLES)
def test_recorded_samples(name):
    if not FIXTURES.is_dir():
        pytest.skip(f"real samples not present at {FIXTURES}")
    document = json.loads((FIXTURES / name).read_bytes())
    records = document["data"] if isinstance(document, dict) else document
    assert_equivalent(records)


def test_empty_and_all_rejected_days():
    assert_equivalent([])
    assert_equivalent([None])
    assert_equivalent([{"pool": "bad"}, {"chain": "BSC"}])


# --- odd values --------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
NUMBER_FIELDS = [field for field, (_, convert) in _METRICS.items() if convert is coerce.number]
INTEGER_FIELDS = [field for field, (_, convert) in _METRICS.items() if convert is coerce.integer]
BOOLEAN_FIELDS = [field for field, (_, convert) in {**_POOL_ATTRIBUTES, **_METRICS}.items()
                  if convert is coerce.boolean]
TEXT_FIELDS = [field for field, (_, convert) in _POOL_ATTRIBUTES.items() if convert is coerce.text]
TOKEN_FIELDS = [field for field, (_, convert) in _POOL_ATTRIBUTES.items() if convert is coerce.text_list]

ODD_NUMBERS = [NAN, INF, -INF, 10**400, -(10**400), "12.5", " 3 ", "abc", "", True, False, [], {}, 2**53 + 1,
               2**64 + 3, 1e308, -0.0, 0, 5, None]
ODD_INTEGERS = [3.0, 3.5, -0.0, 2**40, 2**31 - 1, -(2**31 - 1), -(2**31), 2**31, "7", "7.5", True, None, NAN,
                INF, 10**400]
ODD_BOOLEANS = ["true", "no", "T", " yes ", "maybe", "", 0, 1, 2, 0.0, 1.0, None, [], NAN]
ODD_TEXTS = [5, 2.5, -0.0, True, False, NAN, INF, "a\x00b", "\ud800", "h\u00e9llo \U0001f600", "", "  ", [], {}, None]
ODD_TOKEN_LISTS = ["0xabc", "", ["a", ""], ["a", " "], ["a", 5], [None], ["\x00"], ["\ud800"], [], ["\u00e9"],
                   [True], [2.5], 5, {"a": 1}, None, ("a",)]
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
              "borrowed", []]
ODD_PROJECTS = [None, "", "  ", " padded ", 123, 1.5, False, "x\x00", "\ud800", "caf\u00e9", {}]
# Integers beyond float range where text is expected: once fatal (OverflowError), now spelled out.
HUGE_TEXTS = [("symbol", 10**400), ("underlyingTokens", [10**400]), ("chain", 10**400), ("project", -(10**400))]


def odd_record(rng: random.Random, record: dict, pool_ids: list[str]) -> object:
    """``record`` with one kind of oddity, or something that is not a record at all."""
    record = copy.deepcopy(record)
    kind = rng.randrange(14)
    if kind == 0:
        return rng.choice([None, 5, "x", [1, 2], [record], True, 3.5, collections.OrderedDict(record)])
    if kind == 1:
        if rng.random() < 0.2:
            record.pop("pool", None)
        else:
            record["pool"] = rng.choice([*ODD_POOL_IDS, rng.choice(pool_ids), rng.choice(pool_ids).upper()])
    elif kind == 2:
        record["chain"] = rng.choice(ODD_CHAINS)
    elif kind == 3:
        record["project"] = rng.choice(ODD_PROJECTS)
    elif kind == 4:
        record[rng.choice(NUMBER_FIELDS)] = rng.choice(ODD_NUMBERS)
    elif kind == 5:
        record[rng.choice(INTEGER_FIELDS)] = rng.choice(ODD_INTEGERS)
    elif kind == 6:
        record[rng.choice(BOOLEAN_FIELDS)] = rng.choice(ODD_BOOLEANS)
    elif kind == 7:
        record[rng.choice(TEXT_FIELDS)] = rng.choice(ODD_TEXTS)
    elif kind == 8:
        record[rng.choice(TOKEN_FIELDS)] = copy.deepcopy(rng.choice(ODD_TOKEN_LISTS))
    elif kind == 9:
        record["predictions"] = copy.deepcopy(rng.choice(ODD_PREDICTIONS))
    elif kind == 10:
        record.update(copy.deepcopy(rng.choice(ODD_EXTRAS)))
    elif kind == 11:
        record = dict.fromkeys(record)  # None everywhere
    elif kind == 12:
        for field in rng.sample(sorted(record), rng.randrange(1, 6)):
            del record[field]
    else:  # several at once
        for _ in range(3):
            record = odd_record(rng, record, pool_ids)
            if not isinstance(record, dict):
                break
    return record


@pytest.mark.parametrize("seed", range(12))
def test_odd_records_mixed_into_a_clean_day(seed):
    rng = random.Random(seed)
    records = clean_day(3000)
    pool_ids = [record["pool"] for record in records]
    share = rng.choice([0.001, 0.01, 0.1, 0.5])
    for index in rng.sample(range(len(records)), max(1, int(share * len(records)))):
        records[index] = odd_record(rng, records[index], pool_ids)
    for _ in range(rng.randrange(5)):  # repeats of earlier records, whether those were kept or not
        index = rng.randrange(len(records))
        records.insert(rng.randrange(index, len(records) + 1), copy.deepcopy(records[index]))
    assert_equivalent(records)


def single_oddities() -> list[tuple[str, object]]:
    cases = [("pool", v) for v in ODD_POOL_IDS]
    cases += [("chain", v) for v in ODD_CHAINS] + [("project", v) for v in ODD_PROJECTS]
    cases += [(f, v) for f in NUMBER_FIELDS[:2] for v in ODD_NUMBERS]
    cases += [(f, v) for f in INTEGER_FIELDS for v in ODD_INTEGERS]
    cases += [(f, v) for f in BOOLEAN_FIELDS for v in ODD_BOOLEANS]
    cases += [(f, v) for f in TEXT_FIELDS[:2] for v in ODD_TEXTS]
    cases += [(f, v) for f in TOKEN_FIELDS for v in ODD_TOKEN_LISTS]
    cases += [("predictions", v) for v in ODD_PREDICTIONS]
    return cases + HUGE_TEXTS


@pytest.mark.parametrize("position", [0, 17, 39])
@pytest.mark.parametrize(("field", "value"), single_oddities(),
                         ids=[f"{field}={value!r:.40}" for field, value in single_oddities()])
def test_one_odd_value(field, value, position):
    records = clean_day(40)
    records[position][field] = copy.deepcopy(value)
    assert_equivalent(records)


@pytest.mark.parametrize("extra", ODD_EXTRAS, ids=repr)
def test_unknown_fields(extra):
    records = clean_day(40)
    records[5].update(copy.deepcopy(extra))
    assert_equivalent(records)
    for record in records:  # in every record, as the old /poolsOld sample has
        record.update(copy.deepcopy(extra))
    assert_equivalent(records)


@pytest.mark.parametrize("value", [None, 5, "x", [1], collections.OrderedDict(pool="p"),
                                   collections.defaultdict(int)], ids=repr)
def test_records_that_are_not_plain_objects(value):
    records = clean_day(40)
    records.insert(3, value)
    records.append(copy.deepcopy(value))
    assert_equivalent(records)


def test_duplicates_judged_against_kept_records_only():
    records = clean_day(40)
    first, second = copy.deepcopy(records[2]), copy.deepcopy(records[2])
    records[1] = {**copy.deepcopy(records[2]), "chain": ""}  # the id first appears in a rejected record
    records[10] = first
    records[20] = {**second, "pool": second["pool"].upper()}  # the same id, spelled otherwise
    records[30] = copy.deepcopy(second)
    assert_equivalent(records)


@pytest.mark.parametrize("field", ["poolMeta", "apyBase", "count", "stablecoin", "rewardTokens", "predictions"])
def test_columns_without_any_value_keep_their_dtype(field):
    records = clean_day(40)
    for record in records:
        record[field] = None
    assert_equivalent(records)
    records[7][field] = {"poolMeta": "m", "apyBase": 1.5, "count": 3, "stablecoin": True, "rewardTokens": ["0xa"],
                         "predictions": {"binnedConfidence": 2}}[field]
    assert_equivalent(records)  # a single value
    records[7]["chain"] = ""
    assert_equivalent(records)  # the single value in a rejected record


def test_missing_fields():
    records = clean_day(40)
    for index, record in enumerate(records):
        del record[sorted(record)[index % len(record)]]
    assert_equivalent(records)
    assert_equivalent([{"pool": record["pool"], "chain": "BSC", "project": "p"} for record in clean_day(40)])


def test_huge_finite_numbers_and_exact_int_conversion():
    records = clean_day(40)
    for index, record in enumerate(records):
        record["tvlUsd"] = [1e308, 1.7e308, 2**53 + 1, 2**63 + 1, 3**600, -(10**300) + 7][index % 6]
        record["apy"] = -0.0 if index % 2 else 0.0
    assert_equivalent(records)
    for record in records:  # each a float, but not their sum
        record["tvlUsd"] = 10**308
    assert_equivalent(records)


def test_parsed_token_lists_are_new_lists():
    records = clean_day(40)
    parsed = parse_pools(records, DAY)
    given = {id(record["underlyingTokens"]) for record in records if record["underlyingTokens"] is not None}
    assert given and not given & {id(value) for value in parsed.pools["underlying_tokens"]}
