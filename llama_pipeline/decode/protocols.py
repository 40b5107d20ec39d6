"""``/protocols``: the payload's model, and its records as rows of ``projects``; with ``/pools``, rows of ``chains``.

``Protocol`` below is the documentation of a record. The list's key set drifts (``fdv``,
``oraclesBreakdown``, ``parentProtocolSlug`` ...), so each record is decoded as an object first and its
unknown fields kept in ``extra``; the known ones are converted to ``Protocol`` at C speed, and a record
whose values do not all fit is read field by field from the same declarations. Only a missing or
duplicate slug (or a record that is not an object) sets a record aside: one odd descriptive field
(real payloads carry dates such as '2023-20-20') becomes NULL, with its raw value and reason under
``extra._invalid_fields``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Annotated, Any

import msgspec
import pandas as pd

from llama_pipeline.decode import coerce
from llama_pipeline.decode import fields
from llama_pipeline.decode.chain_aliases import canonical_chain
from llama_pipeline.decode.fields import Int4, Number, Read, Token, doc
from llama_pipeline.fetch import payloads
from llama_pipeline.write.batches import Reject

INVALID_FIELDS = coerce.INVALID_FIELDS


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


Text = str | None


class Protocol(msgspec.Struct, gc=False):
    """One ``/protocols`` record (join pools on ``slug``, not on ``name``). Fields in table order."""

    slug: Annotated[str, doc("Protocol slug, the key of projects; pools' project.")]
    name: Annotated[Text, doc("Display name.")] = None
    id: Annotated[Text, doc("DeFiLlama's protocol id (a string of digits).")] = None
    symbol: Annotated[Text, doc("Governance token symbol; '-' when none (stored as NULL)."), Read(_symbol)] = None
    category: Annotated[Text, doc("e.g. 'Dexes', 'Lending', 'Yield'.")] = None
    chain: Annotated[Text, doc("Main chain, or 'Multi-Chain' (canonicalized by the alias map)."),
                     Read(_main_chain)] = None
    chains: Annotated[list[Token] | None, doc("Chains the protocol is deployed on, as /protocols spells them "
                                              "(stored canonicalized, sorted)."), Read(_canonical_chains)] = None
    audits: Annotated[Int4 | str | None, doc("Number of audits, sent as a string ('2'); can be null."),
                      Read(coerce.integer)] = None
    audit_note: Annotated[Text, doc("Free text about the audits.")] = None
    audit_links: Annotated[list[Token] | None, doc("Links to audit reports.")] = None
    parentProtocol: Annotated[Text, doc("'parent#<slug>' (stored without the prefix); the parent is not an "
                                        "entry of the list."), Read(_parent)] = None
    forkedFrom: Annotated[list[Token] | None, doc("Names of the protocols this one forks.")] = None
    oracles: Annotated[list[Token] | None, doc("Oracles used.")] = None
    url: Annotated[Text, doc("Website.")] = None
    description: Annotated[Text, doc("Free text.")] = None
    logo: Annotated[Text, doc("Logo URL.")] = None
    twitter: Annotated[Text, doc("Twitter handle.")] = None
    github: Annotated[list[Token] | None, doc("GitHub organisations.")] = None
    gecko_id: Annotated[Text, doc("CoinGecko id of the token.")] = None
    cmcId: Annotated[Text, doc("CoinMarketCap id, a string of digits.")] = None
    address: Annotated[Text, doc("Token address, may be prefixed by a chain ('bsc:0x...').")] = None
    module: Annotated[Text, doc("The adapter's file in DefiLlama-Adapters.")] = None
    methodology: Annotated[Text, doc("How TVL is counted (was a boolean once: then spelled 'true').")] = None
    listedAt: Annotated[Number | None, doc("When DeFiLlama listed it, epoch seconds (sometimes missing)."),
                        Read(coerce.timestamp_from_epoch)] = None
    deadFrom: Annotated[int | str | None, doc("Day the protocol died: an epoch in some records, an ISO date "
                                               "in others."), Read(coerce.day)] = None
    tvl: Annotated[Number | None, doc("Total value locked, USD (null or 0 when unknown).")] = None
    change_1h: Annotated[Number | None, doc("TVL change over 1 hour, percent.")] = None
    change_1d: Annotated[Number | None, doc("TVL change over 1 day, percent.")] = None
    change_7d: Annotated[Number | None, doc("TVL change over 7 days, percent.")] = None
    mcap: Annotated[Number | None, doc("Market cap of the token, USD (often null).")] = None
    staking: Annotated[Number | None, doc("Staked value, USD.")] = None
    pool2: Annotated[Number | None, doc("Pool2 value, USD.")] = None
    chainTvls: Annotated[dict[str, Any] | None, doc("TVL per chain; keys mix chains, '<Chain>-staking' style "
                                                    "suffixes and bare totals ('staking')."),
                         Read(_json_object)] = None


_ATTRIBUTE_NAMES = Protocol.__struct_fields__[1:]
_READ = fields.readers(Protocol, _ATTRIBUTE_NAMES)
# (position in the model, field, reader) of the fields declared with a reader
_DECLARED = [(Protocol.__struct_fields__.index(name), name, convert)
             for name, convert in fields.declared_readers(Protocol).items()]
# chainTvls decoded by the model is an object already; with every value storable, nothing to check in it.
_DECLARED_STORABLE = [declared for declared in _DECLARED if declared[2] is not _json_object]
# API field -> (column, lenient reader), in table order after slug (what lineage maps).
_OWN_COLUMN = {"id": "defillama_id", "pool2": "pool2"}
_COLUMNS = {name: (_OWN_COLUMN.get(name) or fields.column_name(name), _READ[name]) for name in _ATTRIBUTE_NAMES}
DESCRIPTIONS = fields.descriptions(Protocol)
PROJECT_COLUMNS = ["slug", *(c for c, _ in _COLUMNS.values()), "listed_in_protocols", "extra",
                   "first_seen_date", "last_seen_date"]
_KNOWN = frozenset(Protocol.__struct_fields__)
_TEXT_INDEXES = [i + 1 for i, name in enumerate(_ATTRIBUTE_NAMES) if _READ[name] is coerce.text]
_LIST_INDEXES = [i + 1 for i, name in enumerate(_ATTRIBUTE_NAMES) if _READ[name] is coerce.text_list]
CHAIN_COLUMNS = ["name", "aliases", "first_seen_date", "last_seen_date"]
_RAW_RECORDS = msgspec.json.Decoder(list[msgspec.Raw])
_RECORD = msgspec.json.Decoder()  # one record: an object whose unknown fields go to extra


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
    # chain -> the spellings the records' ``chains`` lists use (what ``chains`` records as aliases)
    chain_spellings: dict[str, set[str]] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def record_count(self) -> int:
        return len(self.rows) + len(self.rejects)


def parse_protocols(body: bytes, day: dt.date, pool_projects: set[str] = frozenset()) -> ParsedProtocols:
    """Rows of ``projects``: every valid protocol, plus a placeholder row for each pool project that
    ``/protocols`` lacks, so that every pool joins a project."""
    return with_placeholders(listed_protocols(body, day), pool_projects, day)


@dataclasses.dataclass(frozen=True)
class ProtocolRecords:
    """What the raw step's check decoded of a body, for the warehouse step to list (``listed_from``):
    the records undecoded (``msgspec.Raw`` views into the body, each already decoded once to judge it)
    when msgspec reads the list, else the records as decoded JSON; and whether every value in them is
    storable as decoded (``fields.all_storable``)."""

    records: list
    undecoded: bool
    storable: bool


def decode_body(body: bytes, url: str = "protocols") -> ProtocolRecords:
    """The body's records (``PayloadError`` for an unusable body), what the raw step checks a capture by.
    Every record is decoded as the warehouse step will decode it, one at a time, so none is held past its
    turn (decoding the whole list at once held 22 MB of objects for 7,000 protocols); each record is
    judged when the warehouse step lists them (``listed_from``), which sets a bad one aside with its reason."""
    raws = _raw_records(body)
    if raws is not None:
        try:
            for raw in raws:
                _RECORD.decode(raw)
            return ProtocolRecords(raws, True, fields.all_storable(body))
        except msgspec.DecodeError:  # a value msgspec refuses (1e400 ...): judged below
            pass
    return ProtocolRecords(payloads.decode_records("protocols", body, url), False, False)


def _raw_records(body: bytes) -> list[msgspec.Raw] | None:
    """The body's records as undecoded JSON (views into ``body``), when it is a non-empty list msgspec
    reads."""
    try:
        raws = _RAW_RECORDS.decode(body)
    except msgspec.DecodeError:  # not a list, or JSON msgspec refuses (NaN, ...): judged by decode_records
        return None
    return raws or None


def listed_protocols(body: bytes, day: dt.date, url: str = "protocols") -> ListedProtocols:
    """Rows of ``projects`` for the valid protocols of the whole ``/protocols`` body (no placeholders)."""
    raws = _raw_records(body)
    if raws is not None:
        try:
            return _listed(map(_RECORD.decode, raws), fields.all_storable(body), day)
        except msgspec.DecodeError:  # a record msgspec cannot decode (1e400 ...): all of them judged below
            pass
    return _listed(payloads.decode_records("protocols", body, url), False, day)


def listed_from(decoded: ProtocolRecords, day: dt.date) -> ListedProtocols:
    """``listed_protocols`` of a body the raw step already checked (``decode_body``)."""
    records = map(_RECORD.decode, decoded.records) if decoded.undecoded else decoded.records
    return _listed(records, decoded.storable, day)


def _listed(records: Iterable[object], storable: bool, day: dt.date) -> ListedProtocols:
    """The rows of ``records`` (decoded as they are iterated); ``storable``: every value is known to be."""
    rows: list[tuple] = []
    rejects: list[Reject] = []
    spellings: dict[str, set[str]] = {}
    first_index: dict[str, int] = {}
    for index, record in enumerate(records):
        _add_chain_spellings(spellings, record)  # rejected records' too
        key = record.get("slug") if isinstance(record, dict) else None
        try:
            if not isinstance(record, dict):
                raise coerce.BadField(f"record is {type(record).__name__}, not an object")
            slug = coerce.required_text("slug", record.get("slug")).strip()
            if slug in first_index:
                raise coerce.BadField(f"slug: duplicate slug (first seen at record {first_index[slug]})")
            values, invalid = _attributes(record, storable)
            extra = (coerce.extra_fields(record, _KNOWN, invalid) if invalid or not storable
                     else {k: v for k, v in record.items() if k not in _KNOWN} or None)
        except ValueError as error:  # BadField included
            rejects.append(Reject.of(index, key if isinstance(key, str) else None, str(error), record))
            continue
        first_index[slug] = index
        rows.append((slug, *values, True, extra, day, day))
    return ListedProtocols(tuple(rows), tuple(rejects), spellings)


def _attributes(record: dict, storable: bool) -> tuple[tuple, dict]:
    """The record's column values and the ones that could not be read: through the model when every
    value fits it, else field by field. ``storable``: every value is known to be storable."""
    try:
        values = list(msgspec.structs.astuple(msgspec.convert(record, Protocol)))  # unknown fields: ignored
        for index, name, convert in (_DECLARED_STORABLE if storable else _DECLARED):
            values[index] = convert(name, values[index])
        if storable or fields.storable_texts([values[i] for i in _TEXT_INDEXES] + [
                item for i in _LIST_INDEXES if values[i] for item in values[i]]):
            return tuple(values[1:]), {}
    except ValueError:  # msgspec.ValidationError and BadField included: read field by field
        pass
    values, invalid = [], {}
    for name, convert in _READ.items():
        value, problem = coerce.leniently(convert, name, record.get(name))
        values.append(value)
        if problem:
            invalid[name] = problem
    return tuple(values), invalid


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


def _add_chain_spellings(spellings: dict[str, set[str]], record: object) -> None:
    """The chain spellings in a record's ``chains`` list, added to ``spellings``."""
    names = record.get("chains") if isinstance(record, dict) else None
    for name in names if isinstance(names, list) else ():
        try:
            spellings.setdefault(canonical_chain(name), set()).add(name)
        except ValueError:
            continue


def protocol_chain_spellings(body: bytes) -> dict[str, set[str]]:
    """The chain spellings in the protocols' ``chains`` lists."""
    return listed_protocols(body, dt.date.min).chain_spellings


def chain_rows(day: dt.date, *spellings: dict[str, set[str]]) -> pd.DataFrame:
    """Rows of ``chains`` from the spellings each payload used."""
    merged: dict[str, set[str]] = {}
    for mapping in spellings:
        for name, seen in mapping.items():
            merged.setdefault(name, set()).update(seen)
    rows = [(name, sorted(seen | {name}), day, day) for name, seen in sorted(merged.items())]
    return pd.DataFrame.from_records(rows, columns=CHAIN_COLUMNS)
