"""``/pools``: the payload's model, and its records as rows of ``pools`` (dimension) and ``pool_snapshots``.

``Pool`` below is the documentation of a record. A clean day (every value of its declared type, no
unknown field) is decoded in one pass by msgspec straight from the body. Otherwise the body is decoded
as JSON and each record converted to ``Pool`` on its own; a record that still does not fit is read
field by field by ``fields.readers``, from the same declarations. Only a missing, malformed or
duplicate pool id (or a record that is not an object) sets a record aside; any other unreadable
value becomes NULL with its raw value and reason under ``extra._invalid_fields``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing
from operator import attrgetter
from typing import Annotated

import msgspec
import numpy as np
import pandas as pd

from llama_pipeline import schema
from llama_pipeline.decode import coerce
from llama_pipeline.decode import fields
from llama_pipeline.decode.chain_aliases import canonical_chain
from llama_pipeline.decode.fields import CanonicalUuid, Int4, Number, Token, doc
from llama_pipeline.fetch import payloads
from llama_pipeline.write.batches import Reject

INVALID_FIELDS = coerce.INVALID_FIELDS
UNKNOWN = schema.UNKNOWN  # the chain or project of a pool whose own cannot be read


# gc=False: a decoded record holds no reference cycles, so the collector need not track 17,000 of them.
# forbid_unknown_fields: a record with a field the model lacks is read apart, its unknown fields kept.
class Predictions(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """DeFiLlama's APY outlook for the pool; any of its fields can be null."""

    predictedClass: Annotated[str | None, doc("'Stable/Up' or 'Down'.")] = None
    predictedProbability: Annotated[Number | None, doc("Confidence in the class, percent.")] = None
    binnedConfidence: Annotated[Int4 | None, doc("Confidence bucket, 1 to 3.")] = None


class Pool(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One ``/pools`` record. Fields in table order: the pool's attributes, then its metrics."""

    pool: Annotated[CanonicalUuid, doc("Pool id (UUID), stable across days and project renames.")]
    chain: Annotated[str | None, doc("Chain as /pools spells it (canonicalized by the alias map).")] = None
    project: Annotated[str | None, doc("Project slug; joins /protocols' slug. Renamed often.")] = None
    symbol: Annotated[str | None, doc("Token symbol(s) of the pool, e.g. 'USDC-WETH'.")] = None
    poolMeta: Annotated[str | None, doc("What tells apart pools of one project, chain and symbol.")] = None
    exposure: Annotated[str | None, doc("'single' or 'multi' (tokens exposed to).")] = None
    ilRisk: Annotated[str | None, doc("Impermanent-loss risk, 'yes' or 'no'.")] = None
    stablecoin: Annotated[bool | None, doc("Whether the pool holds only stablecoins.")] = None
    underlyingTokens: Annotated[list[Token] | None,
                                doc("Token addresses deposited (a lone string: a list of one).")] = None
    rewardTokens: Annotated[list[Token] | None, doc("Token addresses paid as rewards.")] = None
    tvlUsd: Annotated[Number | None, doc("Total value locked, USD (an integer in practice).")] = None
    apy: Annotated[Number | None, doc("Total APY, percent (apyBase + apyReward); up to ~3.5e5 seen.")] = None
    apyBase: Annotated[Number | None, doc("Base APY from fees/interest, percent.")] = None
    apyReward: Annotated[Number | None, doc("Reward-token APY, percent.")] = None
    apyPct1D: Annotated[Number | None, doc("APY change over 1 day, percentage points.")] = None
    apyPct7D: Annotated[Number | None, doc("APY change over 7 days, percentage points.")] = None
    apyPct30D: Annotated[Number | None, doc("APY change over 30 days, percentage points.")] = None
    apyBase7d: Annotated[Number | None, doc("Base APY over the last 7 days, percent.")] = None
    apyMean30d: Annotated[Number | None, doc("Mean APY over 30 days, percent.")] = None
    apyBaseInception: Annotated[Number | None, doc("Base APY since inception, percent (can be negative).")] = None
    il7d: Annotated[Number | None, doc("Impermanent loss over 7 days, percent.")] = None
    volumeUsd1d: Annotated[Number | None, doc("Trading volume over 1 day, USD.")] = None
    volumeUsd7d: Annotated[Number | None, doc("Trading volume over 7 days, USD.")] = None
    mu: Annotated[Number | None, doc("Mean of the APY's daily changes (DeFiLlama's outlier model).")] = None
    sigma: Annotated[Number | None, doc("Spread of the APY's daily changes.")] = None
    count: Annotated[Int4 | None, doc("Days of APY history behind mu and sigma.")] = None
    outlier: Annotated[bool | None, doc("Whether DeFiLlama flags the APY as an outlier.")] = None
    predictions: Annotated[Predictions | None, doc("APY outlook (object; null or {} when none).")] = None


class PoolsDocument(msgspec.Struct):
    """The ``/pools`` envelope (one recorded sample lacks ``status``: a missing one is taken as success)."""

    data: list[Pool]
    status: str = "success"


_DECODER = msgspec.json.Decoder(PoolsDocument)

# API field -> (column, lenient reader), from the model: what lineage maps and the salvage reads.
_ATTRIBUTE_NAMES = Pool.__struct_fields__[3:10]
_METRIC_NAMES = Pool.__struct_fields__[10:-1]
_READ = fields.readers(Pool, _ATTRIBUTE_NAMES + _METRIC_NAMES)
_READ_PREDICTION = fields.readers(Predictions, Predictions.__struct_fields__)
_POOL_ATTRIBUTES = {name: (fields.column_name(name), _READ[name]) for name in _ATTRIBUTE_NAMES}
_METRICS = {name: (fields.column_name(name), _READ[name]) for name in _METRIC_NAMES}
_PREDICTIONS = {name: (fields.column_name(name), _READ_PREDICTION[name]) for name in Predictions.__struct_fields__}
KNOWN_FIELDS = frozenset(Pool.__struct_fields__)
DESCRIPTIONS = {**fields.descriptions(Pool),
                **{f"predictions.{name}": text for name, text in fields.descriptions(Predictions).items()}}

POOL_COLUMNS = ["pool_id", "chain", "project", *(c for c, _ in _POOL_ATTRIBUTES.values()),
                "first_seen_date", "last_seen_date"]
SNAPSHOT_COLUMNS = ["pool_id", "snapshot_date", *(c for c, _ in _METRICS.values()),
                    *(c for c, _ in _PREDICTIONS.values()), "source", "extra"]
_TEXT_NAMES = ("chain", "project", "symbol", "poolMeta", "exposure", "ilRisk")
_NO_PREDICTIONS = Predictions()


@dataclasses.dataclass
class ParsedPools:
    """One day's ``/pools`` records, split into clean rows and rejects."""

    pools: pd.DataFrame
    snapshots: pd.DataFrame
    rejects: list[Reject]
    invalid_values: int = 0  # values that could not be read: NULL, kept under extra._invalid_fields
    # chain -> the spellings the kept records used for it (what ``chains`` records as aliases)
    chain_spellings: dict[str, set[str]] = dataclasses.field(default_factory=dict)

    @property
    def record_count(self) -> int:
        return len(self.snapshots) + len(self.rejects)


@dataclasses.dataclass
class _Kept:
    """The records kept so far, with what the model alone cannot say: canonical chain and project."""

    pools: list[Pool] = dataclasses.field(default_factory=list)
    spellings: list[str] = dataclasses.field(default_factory=list)
    chains: list[str] = dataclasses.field(default_factory=list)
    projects: list[str] = dataclasses.field(default_factory=list)
    extras: list[dict | None] = dataclasses.field(default_factory=list)


def parse_pools(body: bytes, day: dt.date, url: str = "pools") -> ParsedPools:
    """The day's rows from the whole ``/pools`` body (envelope included); raises ``PayloadError`` when
    the body as a whole is unusable (not JSON, truncated, status not success, no records)."""
    document = _clean_document(body)
    if document is not None:
        names = _Names()
        kept = _clean_day(document.data, names, fields.all_storable(body))
        if kept is not None:
            return _parsed(kept, [], day)
    # Not a clean day: the envelope judged as JSON (its errors are the raw assets'), then each record.
    return _parse_records(payloads.decode_records("pools", body, url), day)


def record_count(body: bytes, url: str = "pools") -> int:
    """How many records the body holds, as the capture checks it: a clean body in one model decode (no
    rows built), any other through ``parse_pools``, which raises ``PayloadError`` for an unusable body."""
    document = _clean_document(body)
    if document is not None:
        return len(document.data)
    return parse_pools(body, dt.date.min, url).record_count


def _clean_document(body: bytes) -> PoolsDocument | None:
    """The body decoded by the model in one pass, when it fits as a whole and holds records."""
    document = fields.decode_or_none(_DECODER, body)
    return document if document is not None and document.data and document.status == "success" else None


class _Names:
    """Canonical chain and project per distinct spelling, within one parse (a day has a few hundred
    chains and a few thousand projects)."""

    def __init__(self) -> None:
        self.chain_of: dict[str, str | None] = {}
        self.project_of: dict[str, str | None] = {}

    def chain(self, spelling: str | None) -> str | None:
        """The canonical chain, or None when the spelling names none (then the record is salvaged)."""
        if spelling not in self.chain_of:
            try:
                self.chain_of[spelling] = canonical_chain(coerce.required_text("chain", spelling))
            except ValueError:
                self.chain_of[spelling] = None
        return self.chain_of[spelling]

    def project(self, slug: str | None) -> str | None:
        if slug not in self.project_of:
            self.project_of[slug] = slug.strip() if isinstance(slug, str) and slug.strip() else None
        return self.project_of[slug]


def _clean_day(pools: list[Pool], names: _Names, storable: bool) -> _Kept | None:
    """The day as decoded, when nothing in it needs a closer look (no repeated id, every chain and
    project readable, every text storable: known to be when ``storable``); else None."""
    ids = list(map(attrgetter("pool"), pools))
    if len(set(ids)) < len(ids):
        return None
    spellings = list(map(attrgetter("chain"), pools))
    chains = list(map(names.chain, spellings))
    projects = list(map(names.project, map(attrgetter("project"), pools)))
    if None in chains or None in projects:
        return None
    if storable:
        return _Kept(pools, spellings, chains, projects, [None] * len(pools))
    texts = [value for name in _TEXT_NAMES[2:] for value in map(attrgetter(name), pools)]
    texts += [token for name in ("underlyingTokens", "rewardTokens") for tokens in map(attrgetter(name), pools)
              if tokens for token in tokens]
    texts += [p.predictions.predictedClass for p in pools if p.predictions is not None]
    if not fields.storable_texts(texts + spellings + projects):
        return None
    return _Kept(pools, spellings, chains, projects, [None] * len(pools))


def _parse_records(records: list, day: dt.date) -> ParsedPools:
    """Record by record, in order: a duplicate is judged against the records kept before it."""
    kept = _Kept()
    rejects: list[Reject] = []
    names = _Names()
    seen: dict[str, int] = {}
    for index, record in enumerate(records):
        try:
            pool, spelling, chain, project, extra = _record(record, names)
            if pool.pool in seen:
                raise coerce.BadField(f"pool: duplicate pool id (first seen at record {seen[pool.pool]})")
        except ValueError as error:  # BadField included
            key = record.get("pool") if isinstance(record, dict) else None
            rejects.append(Reject.of(index, key if isinstance(key, str) else None, str(error), record))
            continue
        seen[pool.pool] = index
        kept.pools.append(pool)
        kept.spellings.append(spelling)
        kept.chains.append(chain)
        kept.projects.append(project)
        kept.extras.append(extra)
    return _parsed(kept, rejects, day)


def _record(record: object, names: _Names) -> tuple[Pool, str, str, str, dict | None]:
    """One record as a ``Pool`` plus its chain spelling, chain, project and extra; raises BadField when
    its pool id cannot be read."""
    if not isinstance(record, dict):
        raise coerce.BadField(f"record is {type(record).__name__}, not an object")
    known = record if KNOWN_FIELDS.issuperset(record) else {k: v for k, v in record.items() if k in KNOWN_FIELDS}
    try:
        pool = msgspec.convert(known, Pool)
    except msgspec.ValidationError:
        pool = None
    if pool is not None:
        chain, project = names.chain(pool.chain), names.project(pool.project)
        if chain is not None and project is not None and _storable(pool):
            extra = coerce.extra_fields(record, KNOWN_FIELDS, {}) if known is not record else None
            return pool, pool.chain, chain, project, extra
    return _salvaged(record)


def _storable(pool: Pool) -> bool:
    texts = [getattr(pool, name) for name in _TEXT_NAMES]
    texts += [*(pool.underlyingTokens or ()), *(pool.rewardTokens or ())]
    if pool.predictions is not None:
        texts.append(pool.predictions.predictedClass)
    return fields.storable_texts(texts)


def _salvaged(record: dict) -> tuple[Pool, str, str, str, dict | None]:
    """The record read field by field: an unreadable value becomes NULL (a chain or project, ``(unknown)``;
    text spoiled only by NUL characters, the text without them), and its raw value and the reason go
    to ``extra._invalid_fields``."""
    pool_id = coerce.pool_id(record.get("pool"))
    invalid: dict[str, dict] = {}

    def read(convert, field: str, value: object) -> object:
        result, problem = coerce.leniently(convert, field, value)
        if problem:
            invalid[field] = problem
        return result

    chain = read(_chain, "chain", record.get("chain")) or UNKNOWN
    spelling = UNKNOWN if chain == UNKNOWN else coerce.leniently(coerce.required_text, "chain", record.get("chain"))[0]
    project = read(_project, "project", record.get("project")) or UNKNOWN
    values = {name: read(convert, name, record.get(name)) for name, convert in _READ.items()}
    raw_predictions = record.get("predictions") or {}
    if not isinstance(raw_predictions, dict):
        invalid["predictions"] = {"value": coerce.json_safe(raw_predictions),
                                  "reason": f"predictions: expected an object, got {type(raw_predictions).__name__}"}
        raw_predictions = {}
    predictions = Predictions(**{name: read(convert, f"predictions.{name}", raw_predictions.get(name))
                                 for name, convert in _READ_PREDICTION.items()})
    extra = coerce.extra_fields(record, KNOWN_FIELDS, invalid)
    return Pool(pool=pool_id, predictions=predictions, **values), spelling, chain, project, extra


def _chain(field: str, value: object) -> str:
    return canonical_chain(coerce.required_text(field, value))


def _project(field: str, value: object) -> str:
    return coerce.required_text(field, value).strip()


def _parsed(kept: _Kept, rejects: list[Reject], day: dt.date) -> ParsedPools:
    """The kept records as the two tables' rows (pandas infers each column's dtype from its values)."""
    spellings: dict[str, set[str]] = {}
    for chain, spelling in set(zip(kept.chains, kept.spellings)):
        spellings.setdefault(chain, set()).add(spelling)
    if not kept.pools:
        return ParsedPools(pd.DataFrame.from_records([], columns=POOL_COLUMNS),
                           pd.DataFrame.from_records([], columns=SNAPSHOT_COLUMNS), rejects, 0, spellings)
    pools = kept.pools
    ids = list(map(attrgetter("pool"), pools))
    days = [day] * len(pools)
    predictions = [p.predictions or _NO_PREDICTIONS for p in pools]
    pool_columns = [ids, kept.chains, kept.projects,
                    *(list(map(attrgetter(name), pools)) for name in _ATTRIBUTE_NAMES), days, days]
    snapshot_columns = [ids, days, *(list(map(attrgetter(name), pools)) for name in _METRIC_NAMES),
                        *(list(map(attrgetter(name), predictions)) for name in Predictions.__struct_fields__),
                        ["pools"] * len(pools), kept.extras]
    return ParsedPools(
        pools=pd.DataFrame(dict(zip(POOL_COLUMNS, map(_column, POOL_COLUMNS, pool_columns)))),
        snapshots=pd.DataFrame(dict(zip(SNAPSHOT_COLUMNS, map(_column, SNAPSHOT_COLUMNS, snapshot_columns)))),
        rejects=rejects,
        invalid_values=coerce.invalid_value_count(kept.extras),
        chain_spellings=spellings,
    )


_KIND = {column: fields.base_type(hint) for model in (Pool, Predictions)
         for column, hint in zip(map(fields.column_name, model.__struct_fields__),
                                 typing.get_type_hints(model, include_extras=True).values())}


def _column(name: str, values: list) -> list | np.ndarray:
    """A numeric or boolean column as the array pandas would infer from its values, built directly
    (inferring costs as much again as decoding). Numbers are finite, so NaN marks exactly the NULLs."""
    kind = _KIND.get(name)
    if kind is float:
        array = np.array(values, dtype=np.float64)
        return values if np.isnan(array).all() else array  # all NULL: object, as inferred
    if kind is int:
        nulls = values.count(None)
        return values if nulls == len(values) else np.array(values, dtype=np.float64 if nulls else np.int64)
    if kind is bool and None not in values:  # with a NULL: object, as inferred
        return np.array(values, dtype=np.bool_)
    return values


def snapshot_summary(snapshots: pd.DataFrame) -> dict[str, float | int]:
    """Figures per day that the Dagster UI plots across partitions."""
    return {
        "pool_count": len(snapshots),
        "total_tvl_usd": float(snapshots["tvl_usd"].sum()) if len(snapshots) else 0.0,
        "median_apy": float(snapshots["apy"].median()) if snapshots["apy"].notna().any() else 0.0,
    }
