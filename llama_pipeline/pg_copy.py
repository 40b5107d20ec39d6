"""DataFrame -> PostgreSQL ``COPY ... FROM STDIN`` text format, typed by the table's SQLAlchemy columns.

Hand-written because COPY text format has exact rules (``\\N`` for NULL; backslash, tab, newline and
carriage return escaped) that CSV writers do not follow, and because pandas widens a nullable integer
column to float, which the column type here puts right again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _text(value: object) -> str:
    return str(value).translate(_ESCAPES)


def _float(value: object) -> str:
    return repr(float(value))


def _integer(value: object) -> str:
    return str(int(value))


def _boolean(value: object) -> str:
    return "t" if value else "f"


def _date(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        value = value.date()
    return value.isoformat()


def _timestamp(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.isoformat()


def _array_element(item: str) -> str:
    return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text_array(value: object) -> str:
    return ("{" + ",".join("NULL" if item is None else _array_element(item) for item in value) + "}").translate(
        _ESCAPES
    )


def _jsonb(value: object) -> str:
    if isinstance(value, str):  # already JSON text
        return value.translate(_ESCAPES)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_ESCAPES)


def formatter(column: sa.Column) -> Callable[[object], str]:
    """How one value of this column is spelled in COPY text format."""
    type_ = column.type
    if isinstance(type_, pg.ARRAY):
        return _text_array
    if isinstance(type_, pg.JSONB):
        return _jsonb
    if isinstance(type_, sa.Boolean):
        return _boolean
    if isinstance(type_, sa.Integer):  # also BigInteger, SmallInteger
        return _integer
    if isinstance(type_, sa.Float):
        return _float
    if isinstance(type_, sa.DateTime):
        return _timestamp
    if isinstance(type_, sa.Date):
        return _date
    return _text


def copy_buffer(frame: pd.DataFrame, columns: Sequence[sa.Column]) -> io.BytesIO:
    """The rows of ``frame`` (in the order of ``columns``) as a COPY text-format stream."""
    rendered = []
    for column in columns:
        spell = formatter(column)
        values = frame[column.name].tolist()
        rendered.append([NULL if _is_null(v) else spell(v) for v in values])
    lines = ["\t".join(row) for row in zip(*rendered)]
    payload = "\n".join(lines) + ("\n" if lines else "")
    return io.BytesIO(payload.encode("utf-8"))
