"""``/pools`` records -> rows of ``pools`` (dimension) and ``pool_snapshots`` (daily facts).

A day holds ~17,000 records, nearly all clean. ``parse_pools`` therefore converts field by field over
whole columns, with cheap checks that vouch for a column at once; a record whose value a check cannot
vouch for goes through ``_parse_record``, the record-by-record definition of the result, in its place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import operator
from collections.abc import Callable

import numpy as np
import pandas as pd

from llama_pipeline import coerce, schema
from llama_pipeline.chain_aliases import canonical_chain
from llama_pipeline.transform.batches import Reject

INVALID_FIELDS = coerce.INVALID_FIELDS
UNKNOWN = schema.UNKNOWN  # the chain or project of a pool whose own cannot be read

# API field -> (column, coercion). Order follows the table.
_POOL_ATTRIBUTES = {
    "symbol": ("symbol", coerce.text),
    "poolMeta": ("pool_meta", coerce.text),
    "exposure": ("exposure", coerce.text),
    "ilRisk": ("il_risk", coerce.text),
    "stablecoin": ("stablecoin", coerce.boolean),
    "underlyingTokens": ("underlying_tokens", coerce.text_list),
    "rewardTokens": ("reward_tokens", coerce.text_list),
}
_METRICS = {
    "tvlUsd": ("tvl_usd", coerce.number),
    "apy": ("apy", coerce.number),
    "apyBase": ("apy_base", coerce.number),
    "apyReward": ("apy_reward", coerce.number),
    "apyPct1D": ("apy_pct_1d", coerce.number),
    "apyPct7D": ("apy_pct_7d", coerce.number),
    "apyPct30D": ("apy_pct_30d", coerce.number),
    "apyBase7d": ("apy_base_7d", coerce.number),
    "apyMean30d": ("apy_mean_30d", coerce.number),
    "apyBaseInception": ("apy_base_inception", coerce.number),
    "il7d": ("il_7d", coerce.number),
    "volumeUsd1d": ("volume_usd_1d", coerce.number),
    "volumeUsd7d": ("volume_usd_7d", coerce.number),
    "mu": ("mu", coerce.number),
    "sigma": ("sigma", coerce.number),
    "count": ("count", coerce.integer),
    "outlier": ("outlier", coerce.boolean),
}
_PREDICTIONS = {
    "predictedClass": ("predicted_class", coerce.text),
    "predictedProbability": ("predicted_probability", coerce.number),
    "binnedConfidence": ("binned_confidence", coerce.integer),
}
KNOWN_FIELDS = frozenset({"pool", "chain", "project", "predictions", *_POOL_ATTRIBUTES, *_METRICS})

POOL_COLUMNS = ["pool_id", "chain", "project", *(c for c, _ in _POOL_ATTRIBUTES.values()),
                "first_seen_date", "last_seen_date"]
SNAPSHOT_COLUMNS = ["pool_id", "snapshot_date", *(c for c, _ in _METRICS.values()),
                    *(c for c, _ in _PREDICTIONS.values()), "source", "extra"]


@dataclasses.dataclass
class ParsedPools:
    """One day's ``/pools`` records, split into clean rows and rejects."""

    pools: pd.DataFrame
    snapshots: pd.DataFrame
    rejects: list[Reject]
    invalid_values: int = 0  # values that could not be read: NULL, kept under extra._invalid_fields


def parse_pools(records: list, day: dt.date) -> ParsedPools:
    """The same result as ``_parse_pools_record_by_record``, twice as fast on a full-size day."""
    if not records:
        return _parse_pools_record_by_record(records, day)
    odd: set[int] = set()  # indexes of the records that the cheap checks cannot vouch for
    objects = _objects(records, odd)
    fields, complete = _fields(objects, _FIELDS)
    columns, numbers_complete = _number_columns(objects, odd)
    columns.update((field, _convert(fields[field], convert, field, odd))
                   for field, (_, convert) in {**_POOL_ATTRIBUTES, **_METRICS}.items() if field in fields)
    predicted, _ = _fields(_predictions(fields["predictions"], odd), tuple(_PREDICTIONS))
    pool_ids = _convert(fields["pool"], coerce.pool_id, "pool", odd)
    days = [day] * len(records)
    pool_columns = [
        pool_ids,
        _convert_distinct(fields["chain"], _chain, "chain", odd),
        _convert_distinct(fields["project"], _project, "project", odd),
        *(columns[field] for field in _POOL_ATTRIBUTES),
        days,
        days,
    ]
    snapshot_columns = [
        pool_ids,
        days,
        *(columns[field] for field in _METRICS),
        *(_convert(predicted[field], convert, f"predictions.{field}", odd)
          for field, (_, convert) in _PREDICTIONS.items()),
        ["pools"] * len(records),
        _extras(objects, complete and numbers_complete, odd),
    ]
    rejects: list[Reject] = []
    if odd or len(set(pool_ids)) < len(pool_ids):
        kept = _settle(records, day, odd, pool_ids, pool_columns, snapshot_columns, rejects)
        pool_columns = [_take(column, kept) for column in pool_columns]
        snapshot_columns = [_take(column, kept) for column in snapshot_columns]
    pools = _frame(pool_columns, POOL_COLUMNS)
    snapshot_columns[0] = pools["pool_id"].array  # the same ids: turn them into pandas strings once
    return ParsedPools(pools=pools, snapshots=_frame(snapshot_columns, SNAPSHOT_COLUMNS), rejects=rejects,
                       invalid_values=coerce.invalid_value_count(snapshot_columns[-1]))


def _settle(records: list, day: dt.date, odd: set[int], pool_ids: list, pool_columns: list,
            snapshot_columns: list, rejects: list[Reject]) -> list[int]:
    """Run the odd records and repeated pool ids through ``_parse_record`` in record order, writing
    their values into the columns (a list serving as two columns, the pool ids or the days, gets the
    same value twice) and their rejects into ``rejects``; return the indexes of the records kept.

    Record order matters: a duplicate is judged against the records kept before it, and the first
    record to raise anything but a reject reason stops the parse as it would record by record.
    """
    first_index: dict[str, int] = {}
    kept: list[int] = []
    for index, record in enumerate(records):
        if index in odd or pool_ids[index] in first_index:
            try:
                pool_row, snapshot_row = _parse_record(record, day, first_index)
            except (coerce.BadField, ValueError) as error:
                rejects.append(_reject(index, record, error))
                continue
            for column, value in zip(pool_columns, pool_row):
                column[index] = value
            for column, value in zip(snapshot_columns, snapshot_row):
                column[index] = value
        first_index[pool_ids[index]] = index
        kept.append(index)
    return kept


def _take(column: list | np.ndarray, kept: list[int]) -> list | np.ndarray:
    return column[kept] if isinstance(column, np.ndarray) else [column[i] for i in kept]


# --- DataFrames ------------------------------------------------------------------------------------

_FLOAT_COLUMNS = frozenset(column for column, convert in [*_METRICS.values(), *_PREDICTIONS.values()]
                           if convert is coerce.number)
_INTEGER_COLUMNS = frozenset(column for column, convert in [*_METRICS.values(), *_PREDICTIONS.values()]
                             if convert is coerce.integer)
_BOOLEAN_COLUMNS = frozenset(column for column, convert in [*_POOL_ATTRIBUTES.values(), *_METRICS.values()]
                             if convert is coerce.boolean)


def _frame(columns: list, names: list[str]) -> pd.DataFrame:
    """The DataFrame ``from_records`` makes of the same rows: from lists, pandas infers each column's
    dtype the same way (but for no rows at all, float64 instead of object: then ask from_records)."""
    if not len(columns[0]):
        return pd.DataFrame.from_records([], columns=names)
    return pd.DataFrame({name: _inferred(name, values) for name, values in zip(names, columns)})


def _inferred(name: str, values: list | np.ndarray) -> list | np.ndarray:
    """A numeric or boolean column as the array pandas would infer from its values, built directly
    (inferring costs as much again). Coerced numbers hold no NaN, so NaN marks exactly the Nones."""
    if name in _FLOAT_COLUMNS:
        array = np.asarray(values, dtype=np.float64)
        return [None] * len(array) if np.isnan(array).all() else array  # all None: object, as inferred
    if name in _INTEGER_COLUMNS:
        nones = values.count(None)
        if nones == len(values):
            return values
        return np.fromiter(values, dtype=np.float64 if nones else np.int64, count=len(values))
    if name in _BOOLEAN_COLUMNS and None not in values:  # with a None: object, as inferred
        return np.fromiter(values, dtype=np.bool_, count=len(values))
    return values


# --- one column at a time --------------------------------------------------------------------------

_NUMBER_FIELDS = tuple(field for field, (_, convert) in _METRICS.items() if convert is coerce.number)
_FIELDS = tuple(field for field in ("pool", "chain", "project", "predictions", *_POOL_ATTRIBUTES, *_METRICS)
                if field not in _NUMBER_FIELDS)
_NOT_AN_OBJECT: dict = {}  # stands in for a record that is not an object (always odd); never written
_NO_VALUE = object()  # the value of a field whose conversion failed (the record is odd)
_NONE = type(None)


def _objects(records: list, odd: set[int]) -> list[dict]:
    if set(map(type, records)) == {dict}:
        return records
    # Subclasses of dict go the reference way too: their .get() may not be dict's.
    odd.update(i for i, record in enumerate(records) if type(record) is not dict)
    return [record if type(record) is dict else _NOT_AN_OBJECT for record in records]


def _fields(objects: list[dict], names: tuple[str, ...]) -> tuple[dict[str, list], bool]:
    """Each field's values as ``record.get`` reads them, and whether every record has every field."""
    flat, complete = _flat(objects, names)
    return {name: flat[i::len(names)] for i, name in enumerate(names)}, complete


def _flat(objects: list[dict], names: tuple[str, ...]) -> tuple[list, bool]:
    """The fields' values record after record, and whether every record has every field.

    Reading record by record goes through memory once; reading one field across all records at a
    time would visit every record once per field, which costs twice as much.
    """
    try:
        return list(itertools.chain.from_iterable(map(operator.itemgetter(*names), objects))), True
    except KeyError:
        return list(itertools.chain.from_iterable(tuple(map(record.get, names)) for record in objects)), False


def _number_columns(objects: list[dict], odd: set[int]) -> tuple[dict[str, np.ndarray | list], bool]:
    """The plain-number fields, converted at once when all their values qualify (checked and converted
    in record order, like ``_flat``), else field by field; and whether every record has them all."""
    flat, complete = _flat(objects, _NUMBER_FIELDS)
    block = _numbers(flat)
    if block is not None:
        return dict(zip(_NUMBER_FIELDS, block.reshape(-1, len(_NUMBER_FIELDS)).T)), complete
    width = len(_NUMBER_FIELDS)
    return {field: _convert(flat[i::width], coerce.number, field, odd)
            for i, field in enumerate(_NUMBER_FIELDS)}, complete


def _predictions(values: list, odd: set[int]) -> list[dict]:
    kinds = set(map(type, values))
    if kinds == {dict}:
        return values
    if not kinds <= {dict, _NONE}:
        odd.update(i for i, value in enumerate(values) if type(value) is not dict and value is not None)
    return [value if type(value) is dict else _NOT_AN_OBJECT for value in values]


def _extras(objects: list[dict], complete: bool, odd: set[int]) -> list[dict | None]:
    # With every known field in every record, a record holds more keys exactly when it has extras.
    if (set(map(len, objects)) == {len(KNOWN_FIELDS)} if complete
            else KNOWN_FIELDS.issuperset(set().union(*objects))):
        return [None] * len(objects)
    extras = []
    for index, record in enumerate(objects):
        extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS} or None
        if extra and not _succeeds(coerce.json_storable, "extra", extra):
            odd.add(index)
        extras.append(extra)
    return extras


def _convert(values: list, convert: Callable, field: str, odd: set[int]) -> list | np.ndarray:
    """The column's converted values: its cheap check vouches for the whole column at once, or each
    value is converted on its own and the records whose value fails are marked odd."""
    converted = _CHEAP_CHECKS[convert](values)
    return converted if converted is not None else _convert_each(values, convert, field, odd)


def _convert_each(values: list, convert: Callable, field: str, odd: set[int]) -> list:
    converted = []
    for index, value in enumerate(values):
        try:
            converted.append(convert(field, value))
        except Exception:  # whatever it is, _parse_record says it again, in record order
            odd.add(index)
            converted.append(_NO_VALUE)
    return converted


def _convert_distinct(values: list, convert: Callable, field: str, odd: set[int]) -> list:
    """As ``_convert``, converting each distinct string once (a day has a few hundred chains and a
    few thousand projects, with an alias lookup or strip each)."""
    if set(map(type, values)) != {str}:  # as memo keys, 1 == 1.0 == True, which convert differently
        return _convert_each(values, convert, field, odd)
    memo = {}
    for value in set(values):
        try:
            memo[value] = convert(field, value)
        except Exception:  # see _convert_each
            memo[value] = _NO_VALUE
    converted = list(map(memo.__getitem__, values))
    if _NO_VALUE in memo.values():
        odd.update(i for i, result in enumerate(converted) if result is _NO_VALUE)
    return converted


def _succeeds(check: Callable, field: str, value: object) -> bool:
    try:
        check(field, value)
    except Exception:  # see _convert_each
        return False
    return True


def _chain(field: str, value: object) -> str:
    return canonical_chain(coerce.required_text(field, value))


def _project(field: str, value: object) -> str:
    return coerce.required_text(field, value).strip()


# Cheap checks: each returns exactly what its coercion returns value by value, or None when it cannot
# vouch for every value (then each value is converted on its own).

_INT4_MAX = 2**31 - 1
_HEX_DIGIT = np.zeros(256, dtype=bool)
_HEX_DIGIT[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = True
_UUID_DASH = np.zeros(36, dtype=bool)
_UUID_DASH[[8, 13, 18, 23]] = True


def _pool_ids(values: list) -> list | None:
    """Ids already in canonical form, which coerce.pool_id returns as they are; checked as one block of
    bytes, a row of 36 per id (a regular expression per id costs four times as much)."""
    if set(map(type, values)) != {str} or set(map(len, values)) != {36}:
        return None
    joined = "".join(values)
    if not joined.isascii():
        return None
    grid = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, 36)
    if not ((grid[:, _UUID_DASH] == ord("-")).all() and _HEX_DIGIT[grid[:, ~_UUID_DASH]].all()):
        return None
    return values


def _numbers(values: list) -> np.ndarray | None:
    """The column as float64, NaN for None: numpy converts an int as float() does, overflow included
    (``fromiter`` because ``array`` first looks into every value for nested sequences)."""
    kinds = list(map(type, values))  # counted below without reading the values again
    if not set(kinds) <= {float, int, _NONE}:
        return None
    try:
        array = np.fromiter(values, dtype=np.float64, count=len(values))
    except OverflowError:
        return None
    # Finite everywhere but at the Nones: no NaN or infinity among the values.
    return array if np.count_nonzero(np.isfinite(array)) == len(values) - kinds.count(_NONE) else None


def _integers(values: list) -> list | None:
    kinds = set(map(type, values))
    if not kinds <= {int, _NONE}:
        return None
    present = [value for value in values if value is not None] if _NONE in kinds else values
    if present and not -_INT4_MAX <= min(present) <= max(present) <= _INT4_MAX:
        return None
    return values


def _booleans(values: list) -> list | None:
    return values if set(map(type, values)) <= {bool, _NONE} else None


def _texts(values: list) -> list | None:
    if not set(map(type, values)) <= {str, _NONE}:
        return None
    return values if _storable("".join(filter(None, values))) else None  # None (and "") left out


def _text_lists(values: list) -> list | None:
    if not set(map(type, values)) <= {list, _NONE}:
        return None
    items = functools.reduce(operator.iadd, filter(None, values), [])  # extends one new list
    # An item is blank, which required_text refuses, when empty or all whitespace.
    if (not set(map(type, items)) <= {str} or not _storable("".join(items))
            or not all(items) or any(map(str.isspace, items))):
        return None
    return [None if value is None else [*value] for value in values]  # new lists, as text_list's


def _storable(text: str) -> bool:
    """Whether ``coerce.check_storable`` passes ``text``; for many strings at once, joined (joining
    pairs no surrogates: they stay unpaired code points, which UTF-8 refuses)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CHEAP_CHECKS = {
    coerce.pool_id: _pool_ids,
    coerce.number: _numbers,
    coerce.integer: _integers,
    coerce.boolean: _booleans,
    coerce.text: _texts,
    coerce.text_list: _text_lists,
}


# --- record by record: the definition ---------------------------------------------------------------


def _parse_pools_record_by_record(records: list, day: dt.date) -> ParsedPools:
    pool_rows: list[tuple] = []
    snapshot_rows: list[tuple] = []
    rejects: list[Reject] = []
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        try:
            pool_row, snapshot_row = _parse_record(record, day, first_index)
        except (coerce.BadField, ValueError) as error:
            rejects.append(_reject(index, record, error))
            continue
        first_index[pool_row[0]] = index
        pool_rows.append(pool_row)
        snapshot_rows.append(snapshot_row)
    return ParsedPools(
        pools=pd.DataFrame.from_records(pool_rows, columns=POOL_COLUMNS),
        snapshots=pd.DataFrame.from_records(snapshot_rows, columns=SNAPSHOT_COLUMNS),
        rejects=rejects,
        invalid_values=coerce.invalid_value_count(row[-1] for row in snapshot_rows),
    )


def _parse_record(record: object, day: dt.date, first_index: dict[str, int]) -> tuple[tuple, tuple]:
    """One record's ``pools`` row and ``pool_snapshots`` row; raises BadField (or ValueError) saying
    why the record is rejected: only when its pool id is missing, malformed or a duplicate.
    ``first_index``: the pool ids kept so far, with their record index.

    Any other value that cannot be read costs only itself: it becomes NULL (a chain or project,
    ``(unknown)``; text spoiled only by NUL characters, the text without them), and its raw value and
    the reason are kept in the snapshot's ``extra._invalid_fields``."""
    if not isinstance(record, dict):
        raise coerce.BadField(f"record is {type(record).__name__}, not an object")
    pool_id = coerce.pool_id(record.get("pool"))
    if pool_id in first_index:
        raise coerce.BadField(f"pool: duplicate pool id (first seen at record {first_index[pool_id]})")
    invalid: dict[str, dict] = {}

    def read(convert: Callable, field: str, value: object) -> object:
        result, problem = coerce.leniently(convert, field, value)
        if problem:
            invalid[field] = problem
        return result

    chain = read(_chain, "chain", record.get("chain")) or UNKNOWN
    project = read(_project, "project", record.get("project")) or UNKNOWN
    attributes = tuple(read(convert, field, record.get(field)) for field, (_, convert) in _POOL_ATTRIBUTES.items())
    metrics = tuple(read(convert, field, record.get(field)) for field, (_, convert) in _METRICS.items())
    predictions = record.get("predictions") or {}
    if not isinstance(predictions, dict):
        invalid["predictions"] = {"value": coerce.json_safe(predictions),
                                  "reason": f"predictions: expected an object, got {type(predictions).__name__}"}
        predictions = {}
    predicted = tuple(read(convert, f"predictions.{field}", predictions.get(field))
                      for field, (_, convert) in _PREDICTIONS.items())
    extra = coerce.extra_fields(record, KNOWN_FIELDS, invalid)
    return (pool_id, chain, project, *attributes, day, day), (pool_id, day, *metrics, *predicted, "pools", extra)


def _reject(index: int, record: object, error: Exception) -> Reject:
    key = record.get("pool") if isinstance(record, dict) else None
    return Reject.of(index, key if isinstance(key, str) else None, str(error), record)


def chains_and_projects(records: list) -> tuple[dict[str, set[str]], set[str]]:
    """The chain spellings and project slugs of a day's pools, without parsing every field.

    ``chains`` and ``projects`` need only these; they are read from the records ``parse_pools`` keeps
    (a usable pool id, seen for the first time), as it reads them, so both see the same pools' names.
    """
    spellings: dict[str, set[str]] = {}
    projects: set[str] = set()
    names: dict[str, tuple[str, str]] = {}  # a day spells a few hundred chains: fold each spelling once
    kept: set[str] = set()
    for record in records:
        if not isinstance(record, dict):
            continue
        try:
            pool_id = coerce.pool_id(record.get("pool"))
        except ValueError:  # BadField included: parse_pools rejects the same records
            continue
        if pool_id in kept:
            continue
        kept.add(pool_id)
        chain = record.get("chain")
        if type(chain) is not str:
            name, spelling = _chain_name(chain)
        elif chain in names:
            name, spelling = names[chain]
        else:
            name, spelling = names[chain] = _chain_name(chain)
        spellings.setdefault(name, set()).add(spelling)
        projects.add(coerce.leniently(_project, "project", record.get("project"))[0] or UNKNOWN)
    return spellings, projects


def _chain_name(value: object) -> tuple[str, str]:
    """The canonical name ``parse_pools`` gives a chain value, and the spelling it was read from."""
    spelling, _ = coerce.leniently(coerce.required_text, "chain", value)
    if spelling is not None:
        try:
            return canonical_chain(spelling), spelling
        except ValueError:  # not a chain (a cross-chain total such as 'staking'): parse_pools says (unknown)
            pass
    return UNKNOWN, UNKNOWN


def snapshot_summary(snapshots: pd.DataFrame) -> dict[str, float | int]:
    """Figures per day that the Dagster UI plots across partitions."""
    return {
        "pool_count": len(snapshots),
        "total_tvl_usd": float(snapshots["tvl_usd"].sum()) if len(snapshots) else 0.0,
        "median_apy": float(snapshots["apy"].median()) if snapshots["apy"].notna().any() else 0.0,
    }
