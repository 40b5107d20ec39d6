"""Field coercion for payload records: take what is safely coercible, refuse the rest with a reason.

Each function returns the clean value or raises ``BadField`` whose message says which field was wrong
and how; the caller turns that into a reject row. ``None`` always passes through as SQL NULL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Container, Iterable

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMERIC_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_TRUE = frozenset({"true", "t", "yes", "1"})
_FALSE = frozenset({"false", "f", "no", "0"})


INVALID_FIELDS = "_invalid_fields"  # in a row's extra: the values that could not be read, and why


class BadField(ValueError):
    """A field whose value cannot be stored without guessing."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(field: str, value: object) -> float | None:
    """A finite float; numeric strings such as ``"12.5"`` are accepted (the API once sent those)."""
    if type(value) is float and value - value == 0.0:  # the common case first: finite (inf - inf is NaN)
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        raise BadField(f"{field}: expected a number, got a boolean {_short(value)}")
    if not isinstance(value, (int, float)) and not (isinstance(value, str) and _NUMERIC_TEXT.match(value)):
        raise BadField(f"{field}: expected a number, got {_short(value)}")
    try:
        result = float(value)
    except OverflowError:  # an integer literal beyond float range
        raise BadField(f"{field}: number out of range ({_short(value)})") from None
    if not math.isfinite(result):
        raise BadField(f"{field}: not a finite number ({_short(value)})")
    return result


def integer(field: str, value: object) -> int | None:
    """A whole number; ``"3"`` and ``3.0`` are accepted, ``3.5`` is not."""
    result = number(field, value)
    if result is None:
        return None
    if not result.is_integer() or abs(result) > 2**31 - 1:
        raise BadField(f"{field}: expected a whole number in int4 range, got {_short(value)}")
    return int(result)


def boolean(field: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadField(f"{field}: expected a boolean, got {_short(value)}")


def text(field: str, value: object) -> str | None:
    """A string PostgreSQL can store; numbers and booleans are spelled out as JSON would."""
    if type(value) is str and value.isascii() and "\x00" not in value:  # the common case first
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)  # an int beyond float range too (str() refuses past 4,300 digits: ValueError)
    if not isinstance(value, str):
        raise BadField(f"{field}: expected text, got {type(value).__name__} {_short(value)}")
    check_storable(field, value)
    return value


def check_storable(field: str, value: str) -> None:
    """PostgreSQL text holds any Unicode except NUL, and UTF-8 cannot carry lone surrogates."""
    if "\x00" in value:
        raise BadField(f"{field}: contains a NUL character, which PostgreSQL text cannot store")
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadField(f"{field}: contains an unpaired surrogate, which is not valid Unicode") from None


def required_text(field: str, value: object) -> str:
    result = text(field, value)
    if result is None or not result.strip():
        raise BadField(f"{field}: missing or empty")
    return result


def text_list(field: str, value: object) -> list[str] | None:
    """A list of strings; a single string becomes a one-element list."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise BadField(f"{field}: expected a list of strings, got {_short(value)}")
    return [required_text(f"{field}[{i}]", item) for i, item in enumerate(value)]


def pool_id(value: object) -> str:
    """A DeFiLlama pool id: a UUID, returned in canonical lower-case form."""
    if type(value) is str and _CANONICAL_UUID.fullmatch(value):  # already canonical: nothing to rewrite
        return value
    if not isinstance(value, str) or not _UUID.match(value.strip()):
        raise BadField(f"pool: missing or malformed pool id {_short(value)}")
    return str(uuid.UUID(value.strip()))


def timestamp_from_epoch(field: str, value: object) -> dt.datetime | None:
    seconds = number(field, value)
    if seconds is None:
        return None
    if seconds > 1e11:  # some sources send milliseconds
        seconds /= 1000
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadField(f"{field}: not a valid epoch time {_short(value)}") from None


def day(field: str, value: object) -> dt.date | None:
    """A date from an epoch number or an ISO ``YYYY-MM-DD`` string (``deadFrom`` comes as either)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and not _NUMERIC_TEXT.match(value):
        try:
            return dt.date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise BadField(f"{field}: not a date {_short(value)}") from None
    moment = timestamp_from_epoch(field, value)
    return moment.date() if moment else None


def json_storable(field: str, value: object) -> None:
    """Refuse values JSONB cannot hold: NaN/Infinity, NUL characters and lone surrogates at any depth."""
    if isinstance(value, str):
        check_storable(field, value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise BadField(f"{field}: not a finite number ({_short(value)})")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_storable(field, str(key))
            json_storable(field, item)
    elif isinstance(value, list):
        for item in value:
            json_storable(field, item)


def without_nul(value: object) -> object:
    """``value`` with NUL characters removed from every string in it (list items and object keys too)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(str(key)): without_nul(item) for key, item in value.items()}
    return value


def json_safe(value: object) -> object:
    """A raw value as JSONB can keep it for the record: non-finite numbers as their text (``nan``,
    ``inf``), NUL as the six characters ``\\u0000``, lone surrogates backslash-escaped, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and not _fits_a_float(value):
        try:
            return str(value)  # kept exactly, as text
        except ValueError:  # str() refuses past 4,300 digits
            return "<an integer of more than 4,300 digits>"
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def leniently(convert: Callable[[str, object], object], field: str, value: object) -> tuple[object, dict | None]:
    """``convert(field, value)`` and no problem, or what can be kept and the problem to record: a value
    that is only spoiled by NUL characters is kept without them, any other unreadable value becomes
    NULL. The problem holds the raw value (JSONB-safe) and the reason."""
    try:
        return convert(field, value), None
    except ValueError as error:  # BadField included
        reason = str(error)
    cleaned = without_nul(value)
    if cleaned is not value and cleaned != value:
        try:
            result = convert(field, cleaned)
        except ValueError as error:
            return None, {"value": json_safe(value), "reason": str(error)}
        return result, {"value": json_safe(value), "reason": f"{reason} (removed)"}
    return None, {"value": json_safe(value), "reason": reason}


def _fits_a_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return False
    return True


def extra_fields(record: dict, known: Container[str], invalid: dict[str, dict]) -> dict | None:
    """The record's fields outside ``known``, as sent; one that JSONB cannot hold (NaN, NUL, a lone
    surrogate) goes JSONB-safe into ``invalid`` instead, which is kept under ``_invalid_fields``."""
    extra = {}
    for key, value in record.items():
        if key in known:
            continue
        label = json_safe(str(key))
        try:
            json_storable(label, {key: value})
        except ValueError as error:
            invalid[label] = {"value": json_safe(value), "reason": str(error)}
            continue
        extra[key] = value
    if invalid:
        extra[INVALID_FIELDS] = invalid
    return extra or None


def invalid_value_count(extras: Iterable[dict | None]) -> int:
    """How many values of a day's rows could not be read (kept under ``extra._invalid_fields``)."""
    return sum(len(extra[INVALID_FIELDS]) for extra in extras if extra and INVALID_FIELDS in extra)
