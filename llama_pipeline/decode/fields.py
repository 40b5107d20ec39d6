"""Field types shared by the payload models, and how a value that does not fit its type is read.

A model decodes a whole body at C speed only when every value has its declared type. msgspec stops at
the first value that does not, so a body that fails is decoded again record by record: each record
that still does not fit is read field by field with ``lenient``, which follows the same declared type
(``float`` -> ``coerce.number``, and so on) but also takes what is safely coercible (``"12.5"``) and
turns the rest into NULL plus a reason under ``extra._invalid_fields``. The declared type is the one
definition of a field; the reader is derived from it, never written per field.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from llama_pipeline.decode import coerce

_FLOAT_MAX = 1.7976931348623157e308
_INT4_MAX = 2**31 - 1

# A finite float (an integer in the JSON is taken as its float; NaN and infinities are not numbers).
Number = Annotated[float, msgspec.Meta(ge=-_FLOAT_MAX, le=_FLOAT_MAX)]
# A whole number PostgreSQL's int4 holds (the JSON ``3.0`` is read leniently, as 3).
Int4 = Annotated[int, msgspec.Meta(ge=-_INT4_MAX, le=_INT4_MAX)]
# A non-blank string: a token address, a chain in a list.
Token = Annotated[str, msgspec.Meta(pattern=r"\S")]
# A pool id exactly as DeFiLlama spells it (canonical lower-case UUID); another spelling of a UUID is
# canonicalised on the lenient path.
CanonicalUuid = Annotated[str, msgspec.Meta(
    pattern=r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")]

# Each declared type's lenient reader (coerce functions take ``(field, value)``).
_READERS: dict[object, Callable[[str, object], object]] = {
    float: coerce.number,
    int: coerce.integer,
    bool: coerce.boolean,
    str: coerce.text,
    list: coerce.text_list,
}


def base_type(annotation: object) -> object:
    """``float`` for ``Number | None``, ``list`` for ``list[Token] | None``, ``int`` for
    ``Int4 | str | None`` (a lax union: its first member is what the field means)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return base_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return base_type(next(arg for arg in typing.get_args(annotation) if arg is not type(None)))
    return origin or annotation


def column_name(field: str) -> str:
    """The warehouse column of an API field: ``tvlUsd`` -> ``tvl_usd``, ``apyPct1D`` -> ``apy_pct_1d``."""
    return re.sub(r"(?<=[a-z])(?=[A-Z0-9])", "_", field).lower()


def doc(text: str) -> msgspec.Meta:
    """A field's description, kept in the model (``description_of`` reads it back)."""
    return msgspec.Meta(description=text)


def description_of(annotation: object) -> str:
    return next((meta.description for meta in _metas(annotation) if meta.description), "")


def _metas(annotation: object) -> list[msgspec.Meta]:
    if typing.get_origin(annotation) is Annotated:
        inner, *extras = typing.get_args(annotation)
        return [extra for extra in extras if isinstance(extra, msgspec.Meta)] + _metas(inner)
    return []


def descriptions(model: type[msgspec.Struct]) -> dict[str, str]:
    """Each field's description, as declared."""
    return {name: description_of(hint)
            for name, hint in typing.get_type_hints(model, include_extras=True).items()}


class Read:
    """Declared with a field, the reader that gives its column value when the plain type's is not enough
    (``"-"`` -> NULL, an epoch -> a timestamp, a lax ``int | str`` -> the int): applied to every
    decoded value, and on the lenient path to the raw one."""

    def __init__(self, convert: Callable[[str, object], object]) -> None:
        self.convert = convert


def _read(annotation: object) -> Read | None:
    if typing.get_origin(annotation) is Annotated:
        inner, *extras = typing.get_args(annotation)
        return next((extra for extra in extras if isinstance(extra, Read)), None) or _read(inner)
    return None


def readers(model: type[msgspec.Struct], names: tuple[str, ...]) -> dict[str, Callable[[str, object], object]]:
    """The lenient reader of each named field: its declared ``Read``, else the one of its type."""
    hints = typing.get_type_hints(model, include_extras=True)
    return {name: (_read(hints[name]).convert if _read(hints[name]) else _READERS[base_type(hints[name])])
            for name in names}


def declared_readers(model: type[msgspec.Struct]) -> dict[str, Callable[[str, object], object]]:
    """The fields declared with a ``Read`` and their readers."""
    hints = typing.get_type_hints(model, include_extras=True)
    return {name: _read(hint).convert for name, hint in hints.items() if _read(hint)}


def storable_texts(values: list) -> bool:
    """Whether every string among ``values`` (None left out) is one PostgreSQL text can hold: no NUL,
    no lone surrogate. Checked for a whole column at once: joining pairs no surrogates."""
    joined = "".join(value for value in values if value)
    if "\x00" in joined:
        return False
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def all_storable(body: bytes) -> bool:
    """Whether every string and number of a body that msgspec decoded is one PostgreSQL (text, JSONB)
    can hold. msgspec refuses NaN, infinities, lone surrogates and raw control characters, so only a
    ``\\u0000`` escape can still bring what PostgreSQL refuses (an escaped backslash followed by
    ``u0000`` only costs the shortcut)."""
    return b"\\u0000" not in body


def decode_or_none(decoder: msgspec.json.Decoder, body: bytes) -> Any:
    """The body decoded by the model, or None when any value does not fit it (then the caller decodes
    record by record); a body that is not JSON at all is judged by ``payloads.decode_records``."""
    try:
        return decoder.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
