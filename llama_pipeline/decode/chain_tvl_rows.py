"""/v2/chains records -> ``chains`` ids, and /v2/historicalChainTvl/{chain} -> ``chain_tvl_daily`` points.

Both go through the alias map (``chain_aliases``), so ``BSC`` and ``Binance`` of /v2/chains are one
chains row, the same row /pools and /protocols fold into.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pandas as pd

from llama_pipeline import schema
from llama_pipeline.decode import coerce
from llama_pipeline.decode.chain_aliases import canonical_chain
from llama_pipeline.write.batches import Reject

CHAIN_LIST_COLUMNS = ["name", "aliases", "gecko_id", "token_symbol", "cmc_id", "chain_id",
                      schema.FIRST_SEEN, schema.LAST_SEEN]


def _chain_id(field: str, value: object) -> int | None:
    """An EVM chain id: a whole number, beyond int4 for some (Palm's is 11297108109)."""
    number = coerce.number(field, value)
    if number is None:
        return None
    if not number.is_integer() or abs(number) >= 2**63:
        raise coerce.BadField(f"{field}: expected a whole number, got {value!r}")
    return int(number)


_IDS = {"gecko_id": ("gecko_id", coerce.text), "tokenSymbol": ("token_symbol", coerce.text),
        "cmcId": ("cmc_id", coerce.text), "chainId": ("chain_id", _chain_id)}


@dataclasses.dataclass(frozen=True)
class ParsedChainList:
    rows: pd.DataFrame
    rejects: list[Reject]
    api_names: dict[str, str]  # canonical name -> the spelling /v2/historicalChainTvl/{chain} knows
    invalid_values: int


def parse_chain_list(records: list, day: dt.date) -> ParsedChainList:
    """One row per canonical chain. Two spellings of one network (``BSC`` and ``Binance``) merge: the
    first non-NULL id wins, and the history URL uses the spelling with the larger TVL."""
    merged: dict[str, dict] = {}
    tvl_of: dict[str, float] = {}
    api_names: dict[str, str] = {}
    rejects: list[Reject] = []
    invalid = 0
    for index, record in enumerate(records):
        try:
            if not isinstance(record, dict):
                raise coerce.BadField(f"expected an object, got {type(record).__name__}")
            spelling = coerce.required_text("name", record.get("name")).strip()
            name = canonical_chain(spelling)
        except (coerce.BadField, ValueError) as error:
            rejects.append(Reject.of(index, None, str(error), record))
            continue
        row = merged.setdefault(name, {"name": name, "aliases": {name}})
        row["aliases"].add(spelling)
        for field, (column, convert) in _IDS.items():
            try:
                value = convert(field, record.get(field))
            except coerce.BadField:
                value, invalid = None, invalid + 1  # an id we cannot read stays unknown; counted
            if row.get(column) is None:
                row[column] = value
        try:
            tvl = coerce.number("tvl", record.get("tvl")) or 0.0
        except coerce.BadField:
            tvl = 0.0
        if name not in tvl_of or tvl > tvl_of[name]:
            tvl_of[name], api_names[name] = tvl, spelling
    rows = [{**row, "aliases": sorted(row["aliases"]), schema.FIRST_SEEN: day, schema.LAST_SEEN: day}
            for _, row in sorted(merged.items())]
    return ParsedChainList(pd.DataFrame.from_records(rows, columns=CHAIN_LIST_COLUMNS), rejects, api_names,
                           invalid)


class SeriesError(ValueError):
    """A history response as a whole is unusable (not JSON, not the expected shape)."""


@dataclasses.dataclass(frozen=True)
class ParsedSeries:
    rows: pd.DataFrame
    rejects: list[Reject]


def _document(body: bytes, what: str) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SeriesError(f"{what} is not JSON ({len(body):,} bytes): {error}") from None


def daily_points(points: object, value_field: str, where: str) -> tuple[dict[dt.date, float | None], list[Reject]]:
    """``[{"date": unix seconds, <value_field>: number}, ...]`` as one value per UTC day (the day's last
    point: DeFiLlama's newest point is today's live value, minutes after the day's 00:00 point)."""
    if not isinstance(points, list):
        raise SeriesError(f"{where}: expected a list of points, got {type(points).__name__}")
    by_day: dict[dt.date, float | None] = {}
    rejects: list[Reject] = []
    for index, point in enumerate(points):
        try:
            if not isinstance(point, dict):
                raise coerce.BadField(f"expected an object, got {type(point).__name__}")
            moment = coerce.timestamp_from_epoch("date", point.get("date"))
            if moment is None:
                raise coerce.BadField("date: missing")
            by_day[moment.date()] = coerce.number(value_field, point.get(value_field))
        except coerce.BadField as error:
            rejects.append(Reject.of(index, where, f"{where}: {error}", point))
    return by_day, rejects


def parse_chain_tvl(chain: str, body: bytes, fetched_at: dt.datetime) -> ParsedSeries:
    """A chain's TVL history: every day it has, one row per day."""
    by_day, rejects = daily_points(_document(body, f"/v2/historicalChainTvl/{chain}"), "tvl", chain)
    rows = pd.DataFrame({"chain": chain, "day": list(by_day), "tvl_usd": list(by_day.values()),
                         "fetched_at": fetched_at}, columns=["chain", "day", "tvl_usd", "fetched_at"])
    return ParsedSeries(rows, rejects)
