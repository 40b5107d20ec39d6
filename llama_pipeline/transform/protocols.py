"""``/protocols`` records -> rows of ``projects``; ``/pools`` and ``/protocols`` -> rows of ``chains``."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from llama_pipeline import coerce
from llama_pipeline.chain_aliases import canonical_chain
from llama_pipeline.transform.batches import Reject


def _canonical_chains(field: str, value: object) -> list[str] | None:
    names = coerce.text_list(field, value)
    if names is None:
        return None
    return sorted({canonical_chain(name) for name in names})


def _main_chain(field: str, value: object) -> str | None:
    name = coerce.text(field, value)
    if name is None or name.strip() in ("", "Multi-Chain"):
        return name
    return canonical_chain(name)


def _symbol(field: str, value: object) -> str | None:
    symbol = coerce.text(field, value)
    return None if symbol in ("-", "") else symbol


def _parent(field: str, value: object) -> str | None:
    parent = coerce.text(field, value)
    return parent.removeprefix("parent#") if parent else None


def _json_object(field: str, value: object) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise coerce.BadField(f"{field}: expected an object, got {type(value).__name__}")
    coerce.json_storable(field, value)
    return value


# API field -> (column, coercion), in table order after slug.
_COLUMNS = {
    "name": ("name", coerce.text),
    "id": ("defillama_id", coerce.text),
    "symbol": ("symbol", _symbol),
    "category": ("category", coerce.text),
    "chain": ("chain", _main_chain),
    "chains": ("chains", _canonical_chains),
    "audits": ("audits", coerce.integer),
    "audit_note": ("audit_note", coerce.text),
    "audit_links": ("audit_links", coerce.text_list),
    "parentProtocol": ("parent_protocol", _parent),
    "forkedFrom": ("forked_from", coerce.text_list),
    "oracles": ("oracles", coerce.text_list),
    "url": ("url", coerce.text),
    "description": ("description", coerce.text),
    "logo": ("logo", coerce.text),
    "twitter": ("twitter", coerce.text),
    "github": ("github", coerce.text_list),
    "gecko_id": ("gecko_id", coerce.text),
    "cmcId": ("cmc_id", coerce.text),
    "address": ("address", coerce.text),
    "module": ("module", coerce.text),
    "methodology": ("methodology", coerce.text),
    "listedAt": ("listed_at", coerce.timestamp_from_epoch),
    "deadFrom": ("dead_from", coerce.day),
    "tvl": ("tvl", coerce.number),
    "change_1h": ("change_1h", coerce.number),
    "change_1d": ("change_1d", coerce.number),
    "change_7d": ("change_7d", coerce.number),
    "mcap": ("mcap", coerce.number),
    "staking": ("staking", coerce.number),
    "pool2": ("pool2", coerce.number),
    "chainTvls": ("chain_tvls", _json_object),
}
PROJECT_COLUMNS = ["slug", *(c for c, _ in _COLUMNS.values()), "listed_in_protocols", "extra",
                   "first_seen_date", "last_seen_date"]
_KNOWN = frozenset({"slug", *_COLUMNS})
CHAIN_COLUMNS = ["name", "aliases", "first_seen_date", "last_seen_date"]


INVALID_FIELDS = coerce.INVALID_FIELDS


def _attributes(record: dict) -> tuple[tuple, dict]:
    """The record's column values. An attribute that cannot be coerced (real payloads carry dates such
    as '2023-20-20') becomes NULL and is kept, with the reason, under ``extra._invalid_fields``: one
    odd descriptive field should not cost a protocol its row (text spoiled only by NUL characters is
    kept without them, and recorded the same way)."""
    values, invalid = [], {}
    for field, (_, convert) in _COLUMNS.items():
        value, problem = coerce.leniently(convert, field, record.get(field))
        values.append(value)
        if problem:
            invalid[field] = problem
    return tuple(values), invalid


@dataclasses.dataclass
class ParsedProtocols:
    projects: pd.DataFrame
    rejects: list[Reject]
    invalid_values: int = 0  # attributes that could not be read: NULL, kept under extra._invalid_fields


@dataclasses.dataclass(frozen=True)
class ListedProtocols:
    """The rows of the payload's valid protocols, before placeholders are added."""

    rows: tuple[tuple, ...]
    rejects: tuple[Reject, ...]


def parse_protocols(records: list, day: dt.date, pool_projects: set[str] = frozenset()) -> ParsedProtocols:
    """Rows of ``projects``: every valid protocol, plus a placeholder row for each pool project that
    ``/protocols`` lacks, so that every pool joins a project."""
    return with_placeholders(listed_protocols(records, day), pool_projects, day)


def listed_protocols(records: list, day: dt.date) -> ListedProtocols:
    """Rows of ``projects`` for the valid protocols of the payload (no placeholders)."""
    rows: list[tuple] = []
    rejects: list[Reject] = []
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        key = record.get("slug") if isinstance(record, dict) else None
        try:
            if not isinstance(record, dict):
                raise coerce.BadField(f"record is {type(record).__name__}, not an object")
            slug = coerce.required_text("slug", record.get("slug")).strip()
            if slug in first_index:
                raise coerce.BadField(f"slug: duplicate slug (first seen at record {first_index[slug]})")
            values, invalid = _attributes(record)
            extra = coerce.extra_fields(record, _KNOWN, invalid)
        except (coerce.BadField, ValueError) as error:
            rejects.append(Reject.of(index, key if isinstance(key, str) else None, str(error), record))
            continue
        first_index[slug] = index
        rows.append((slug, *values, True, extra, day, day))
    return ListedProtocols(tuple(rows), tuple(rejects))


def with_placeholders(listed: ListedProtocols, pool_projects: set[str], day: dt.date) -> ParsedProtocols:
    """The listed protocols' rows plus a placeholder row for each pool project they lack."""
    placeholder = (None,) * len(_COLUMNS)
    rows = list(listed.rows)
    rows += [(slug, *placeholder, False, None, day, day)
             for slug in sorted(set(pool_projects) - {row[0] for row in listed.rows})]
    extra = PROJECT_COLUMNS.index("extra")
    return ParsedProtocols(projects=pd.DataFrame.from_records(rows, columns=PROJECT_COLUMNS),
                           rejects=list(listed.rejects),
                           invalid_values=coerce.invalid_value_count(row[extra] for row in listed.rows))


def protocol_chain_spellings(records: list) -> dict[str, set[str]]:
    """The chain spellings in the protocols' ``chains`` lists, without parsing every field."""
    spellings: dict[str, set[str]] = {}
    for record in records:
        names = record.get("chains") if isinstance(record, dict) else None
        for name in names if isinstance(names, list) else ():
            try:
                spellings.setdefault(canonical_chain(name), set()).add(name)
            except ValueError:
                continue
    return spellings


def chain_rows(day: dt.date, *spellings: dict[str, set[str]]) -> pd.DataFrame:
    """Rows of ``chains`` from the spellings each payload used."""
    merged: dict[str, set[str]] = {}
    for mapping in spellings:
        for name, seen in mapping.items():
            merged.setdefault(name, set()).update(seen)
    rows = [(name, sorted(seen | {name}), day, day) for name, seen in sorted(merged.items())]
    return pd.DataFrame.from_records(rows, columns=CHAIN_COLUMNS)


