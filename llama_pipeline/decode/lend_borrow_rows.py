"""/lendBorrow records -> ``lend_borrow_snapshots`` rows: one declared field list, one value at a time.

A record is set aside (a reject, with its reason) only when its pool id is missing, malformed or a
duplicate; a value that cannot be read costs that value alone: it is stored as NULL and kept, with its
reason, under ``extra._invalid_fields``. Fields the API adds later are kept in ``extra``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping

import pandas as pd

from llama_pipeline.decode import coerce
from llama_pipeline.schema_datasets import LEND_BORROW_METRICS, lend_borrow_snapshots
from llama_pipeline.write.batches import Reject

# API field -> (column, conversion)
FIELDS: dict[str, tuple[str, Callable[[str, object], object]]] = {
    field: (column, coerce.boolean if type_.python_type is bool else coerce.text if type_.python_type is str
            else coerce.number)
    for column, (field, type_, _) in LEND_BORROW_METRICS.items()
}
TOKEN_FIELDS = {"rewardTokens": "reward_tokens", "underlyingTokens": "underlying_tokens"}
KNOWN_FIELDS = frozenset({"pool", *FIELDS, *TOKEN_FIELDS})
COLUMNS = [c.name for c in lend_borrow_snapshots.columns]

# A pool's tokens as /pools (or the pools table) has them: (reward_tokens, underlying_tokens).
PoolTokens = Mapping[str, tuple[list | None, list | None]]


@dataclasses.dataclass(frozen=True)
class ParsedLendBorrow:
    rows: pd.DataFrame
    rejects: list[Reject]
    invalid_values: int


def _same(ours: list | None, theirs: list | None) -> bool:
    return sorted(x.lower() for x in ours or []) == sorted(x.lower() for x in theirs or [])


def parse_lend_borrow(records: list, day: dt.date, pool_tokens: PoolTokens) -> ParsedLendBorrow:
    """Rows of the day's lending pools; tokens are kept only where they differ from the pool's own."""
    rows: list[dict] = []
    rejects: list[Reject] = []
    seen: dict[str, int] = {}
    invalid = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            rejects.append(Reject.of(index, None, f"expected an object, got {type(record).__name__}", record))
            continue
        try:
            pool_id = coerce.pool_id(record.get("pool"))
        except coerce.BadField as error:
            rejects.append(Reject.of(index, None, str(error), record))
            continue
        if pool_id in seen:
            rejects.append(Reject.of(index, pool_id, f"duplicate pool id (first at record {seen[pool_id]})", record))
            continue
        seen[pool_id] = index
        row: dict = {"pool_id": pool_id, "snapshot_date": day}
        bad: dict[str, str] = {}
        for field, (column, convert) in FIELDS.items():
            try:
                row[column] = convert(field, record.get(field))
            except coerce.BadField as error:
                row[column], bad[field] = None, str(error)
        known = pool_tokens.get(pool_id, (None, None))
        for (field, column), theirs in zip(TOKEN_FIELDS.items(), known):
            try:
                tokens = coerce.text_list(field, record.get(field))
            except coerce.BadField as error:
                tokens, bad[field] = None, str(error)
            row[column] = None if _same(tokens, theirs) else tokens
        extra = {key: value for key, value in record.items() if key not in KNOWN_FIELDS}
        for key, value in list(extra.items()):
            try:
                coerce.json_storable(key, value)
            except coerce.BadField as error:
                del extra[key]
                bad[key] = str(error)
        if bad:
            extra["_invalid_fields"] = bad
            invalid += len(bad)
        row["extra"] = extra or None
        row["source"] = "lend_borrow"
        rows.append(row)
    return ParsedLendBorrow(pd.DataFrame.from_records(rows, columns=COLUMNS), rejects, invalid)


def lend_borrow_summary(rows: pd.DataFrame) -> dict[str, float | int]:
    """Figures of a day worth plotting across partitions."""
    supply = rows["total_supply_usd"].astype(float)
    borrow = rows["total_borrow_usd"].astype(float)
    return {
        "lending_pools": len(rows),
        "total_supply_usd": round(float(supply.sum()), 2),
        "total_borrow_usd": round(float(borrow.sum()), 2),
        "median_apy_base_borrow": round(float(rows["apy_base_borrow"].astype(float).median()), 5)
        if rows["apy_base_borrow"].notna().any() else 0.0,
    }


# /chartLendBorrow/{pool} point field -> column: the borrow side and the amounts (its apyBase/apyReward are
# the supply side, which pool_snapshots holds; they stay in the archived body)
CHART_FIELDS = {"apyBaseBorrow": "apy_base_borrow", "apyRewardBorrow": "apy_reward_borrow",
                "totalSupplyUsd": "total_supply_usd", "totalBorrowUsd": "total_borrow_usd",
                "debtCeilingUsd": "debt_ceiling_usd"}


def parse_lend_borrow_chart(pool_id: str, body: bytes, fetched_at: dt.datetime):
    """A lending pool's daily history (``{"status", "data": [...]}``, or the bare list a recorded sample
    keeps): one row per UTC day, the day's last point; the columns the chart lacks stay NULL."""
    from llama_pipeline.decode.chain_tvl_rows import ParsedSeries, SeriesError, _document

    document = _document(body, f"/chartLendBorrow/{pool_id}")
    points = document.get("data") if isinstance(document, dict) else document
    if not isinstance(points, list):
        raise SeriesError(f"/chartLendBorrow/{pool_id} holds no list of points")
    by_day: dict[dt.date, dict] = {}
    rejects: list[Reject] = []
    for index, point in enumerate(points):
        try:
            if not isinstance(point, dict) or not isinstance(point.get("timestamp"), str):
                raise coerce.BadField("timestamp: missing or not text")
            day = coerce.day("timestamp", point["timestamp"])
            row = {column: coerce.number(field, point.get(field)) for field, column in CHART_FIELDS.items()}
        except coerce.BadField as error:
            rejects.append(Reject.of(index, pool_id, f"{pool_id}: {error}", point))
            continue
        by_day[day] = {**dict.fromkeys(COLUMNS), **row, "pool_id": pool_id, "snapshot_date": day, "source": "chart"}
    return ParsedSeries(pd.DataFrame.from_records(list(by_day.values()), columns=COLUMNS), rejects)
