"""DataFrame -> PostgreSQL ``COPY ... FROM STDIN`` text format, typed by the table's SQLAlchemy columns.

Hand-written because COPY text format has exact rules (``\\N`` for NULL; backslash, tab, newline and
carriage return escaped) that CSV writers do not follow, and because pandas widens a nullable integer
column to float, which the column type here puts right again.

This is the hot path of every write, so it renders whole columns at once: a column whose dtype is
known (float64, int64, bool, pandas strings, datetime64) takes a vectorised or tight-loop path, and
everything else goes value by value through :func:`formatter`, which is the definition of how a
value is spelled. The fast paths must give exactly the bytes the per-value path gives; the tests in
``llama_pipeline_tests/write/test_pg_copy.py`` compare the two on every type and edge value.

Rows are rendered ``CHUNK_ROWS`` at a time (whole columns of each piece), and ``CopyStream`` feeds the
pieces to ``copy_expert`` as it reads, so a table's COPY text is never in memory whole. A value COPY
cannot take then fails the COPY mid-stream: psycopg2 raises ``QueryCanceled`` naming the Python error
("error in .read() call: OverflowError ..."), and the transaction rolls back as before.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
from collections.abc import Callable, Iterator, Sequence
from itertools import chain

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = ("\\", "\t", "\n", "\r")
_NA = pd.NA
_NAT = pd.NaT
# Integer-valued floats below this magnitude convert to int64 exactly (and truncate like ``int``).
_INT64_SAFE = float(2**62)


def _is_null(value: object) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _escape(text: str) -> str:
    """COPY text escaping; the same as ``text.translate(_ESCAPES)`` (backslash first), but much faster."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _text(value: object) -> str:
    return _escape(str(value))


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
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def _array_element(item: str) -> str:
    return '"' + str(item).replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(value: object) -> str:
    """An array literal before COPY escaping."""
    return "{" + ",".join("NULL" if item is None else _array_element(item) for item in value) + "}"


def _text_array(value: object) -> str:
    return _escape(array_literal(value))


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _raw_jsonb(value: object) -> str:
    """JSON text before COPY escaping; ``_JSON.encode`` is what ``json.dumps`` with these options runs."""
    if isinstance(value, str):  # already JSON text
        return value
    return _JSON.encode(value)


def _jsonb(value: object) -> str:
    return _escape(_raw_jsonb(value))


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


# -- whole-column rendering ---------------------------------------------------------------------------


def _per_value(values: list, spell: Callable[[object], str]) -> list[str]:
    """The definition: every value through ``spell`` unless it is a NULL."""
    na, nat, isnan = _NA, _NAT, math.isnan
    return [
        NULL if (v is None or v is na or v is nat or (isinstance(v, float) and isnan(v))) else spell(v)
        for v in values
    ]


def _with_nulls(present: list[str], mask: np.ndarray) -> list[str]:
    """The column: ``NULL`` where ``mask`` is set, the strings of ``present`` elsewhere, in order."""
    out = [NULL] * len(mask)
    for i, text in zip(np.flatnonzero(~mask).tolist(), present):
        out[i] = text
    return out


def _escaped_column(raw: list) -> list[str]:
    """COPY-escape a column of unescaped strings (``None`` = NULL). Scans the column once and skips the
    per-value work when nothing in it needs escaping, which is the usual case."""
    joined = "".join(filter(None, raw))
    if any(c in joined for c in _SPECIAL):
        return [NULL if v is None else _escape(v) for v in raw]
    return [NULL if v is None else v for v in raw]


def _render_float(series: pd.Series) -> list[str] | None:
    if series.dtype != np.float64:
        return None
    array = series.to_numpy()
    mask = np.isnan(array)
    if not mask.any():
        return list(map(float.__repr__, array.tolist()))
    return _with_nulls(list(map(float.__repr__, array[~mask].tolist())), mask)


def _render_integer(series: pd.Series) -> list[str] | None:
    dtype = series.dtype
    if dtype == np.int64 or dtype == np.int32 or dtype == np.int16 or dtype == np.int8:
        return list(map(str, series.to_numpy().tolist()))
    if dtype != np.float64:
        return None
    array = series.to_numpy()
    mask = np.isnan(array)
    present = array[~mask]
    if present.size and not (np.abs(present) < _INT64_SAFE).all():  # inf (raises) or huge: per value
        return None
    return _with_nulls(list(map(str, present.astype(np.int64).tolist())), mask)


def _render_boolean(series: pd.Series) -> list[str] | None:
    if series.dtype != np.bool_:
        return None
    return list(map(("f", "t").__getitem__, series.to_numpy().tolist()))


def _render_text(series: pd.Series) -> list[str] | None:
    if not isinstance(series.dtype, pd.StringDtype):
        values = series.tolist()
        if series.dtype == object and all(v.__class__ is str for v in values):  # no NULLs, all str
            return _escaped_column(values)
        return None
    mask = series.isna().to_numpy()
    strings = series.to_numpy(dtype=object, na_value="").tolist()
    joined = "".join(strings)
    if any(c in joined for c in _SPECIAL):
        strings = list(map(_escape, strings))
    for i in np.flatnonzero(mask).tolist():
        strings[i] = NULL
    return strings


def _render_date(series: pd.Series) -> list[str] | None:
    if series.dtype != object:
        return None
    values = series.tolist()
    try:
        distinct = set(values)
    except TypeError:
        return None
    date = dt.date
    # Equal values of other classes (datetime, Timestamp) would share an entry but spell differently.
    if not all(v is None or v.__class__ is date for v in distinct):
        return None
    spelled = {v: NULL if v is None else v.isoformat() for v in distinct}
    return list(map(spelled.__getitem__, values))


def _render_timestamp(series: pd.Series) -> list[str] | None:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        if str(dtype.tz) != "UTC":
            return None
        series = series.dt.tz_localize(None)  # wall time in UTC; the offset is written as +00:00 below
    elif not (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return None
    array = series.to_numpy()
    if np.datetime_data(array.dtype)[0] == "ns":
        nanoseconds = array.view(np.int64)
        if (nanoseconds[~np.isnat(array)] % 1000).any():  # sub-microsecond parts: per value
            return None
    values = array.astype("datetime64[us]").tolist()  # datetime.datetime, None for NaT
    datetime = dt.datetime
    if not all(v is None or v.__class__ is datetime for v in values):  # out of datetime's range
        return None
    return [NULL if v is None else v.isoformat() + "+00:00" for v in values]


def _render_text_array(series: pd.Series) -> list[str] | None:
    if series.dtype != object:
        return None
    values = series.tolist()
    if not all(v is None or v.__class__ is list for v in values):
        return None
    arrays = [v for v in values if v is not None]
    try:
        items = "".join(chain.from_iterable(arrays))  # TypeError unless every item is a str
    except TypeError:
        items = None
    if items is not None and "\\" not in items and '"' not in items:
        raw = [None if v is None else ('{"' + '","'.join(v) + '"}' if v else "{}") for v in values]
    else:
        raw = [None if v is None else array_literal(v) for v in values]
    return _escaped_column(raw)


def _render_jsonb(series: pd.Series) -> list[str] | None:
    if series.dtype != object:
        return None
    values = series.tolist()
    na, nat, isnan, raw_json = _NA, _NAT, math.isnan, _raw_jsonb
    raw = [
        None if (v is None or v is na or v is nat or (isinstance(v, float) and isnan(v))) else raw_json(v)
        for v in values
    ]
    return _escaped_column(raw)


_FAST: dict[Callable[[object], str], Callable[[pd.Series], list[str] | None]] = {
    _float: _render_float,
    _integer: _render_integer,
    _boolean: _render_boolean,
    _text: _render_text,
    _date: _render_date,
    _timestamp: _render_timestamp,
    _text_array: _render_text_array,
    _jsonb: _render_jsonb,
}


def render_column(series: pd.Series, column: sa.Column) -> list[str]:
    """Every value of ``series`` spelled for COPY as ``column``'s type, NULLs as ``\\N``."""
    spell = formatter(column)
    rendered = _FAST[spell](series)
    if rendered is None:
        rendered = _per_value(series.tolist(), spell)
    return rendered


# Rows rendered at a time: a whole day's strings (one per value, ~30 columns of 17,000 pools) are tens of
# MB, and the step's peak memory is set by what it renders at once; per chunk they are a few MB, and the
# per-chunk cost (a slice of the frame, the fast paths' checks) is small beside the rendering itself.
CHUNK_ROWS = 2_000


def copy_chunks(frame: pd.DataFrame, columns: Sequence[sa.Column], rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """The rows of ``frame`` (in the order of ``columns``) as COPY text, ``rows`` rows per piece, every row
    ending in a newline. Each piece is rendered when asked for, so only one piece's strings are alive."""
    for start in range(0, len(frame), rows):
        part = frame.iloc[start:start + rows]
        rendered = [render_column(part[column.name], column) for column in columns]
        lines = list(map("\t".join, zip(*rendered)))
        del rendered
        lines.append("")  # the last row ends in a newline too
        yield "\n".join(lines).encode("utf-8")


class CopyStream(io.RawIOBase):
    """A readable file over ``copy_chunks`` for ``cursor.copy_expert``: it renders the next piece when
    the driver has sent the previous one, so a table's COPY text is never held whole. Pass
    ``size=READ_SIZE`` to ``copy_expert``: at its default 8 KB, the reads cost more than the rendering."""

    READ_SIZE = 2**18

    def __init__(self, frame: pd.DataFrame, columns: Sequence[sa.Column], rows: int = CHUNK_ROWS) -> None:
        super().__init__()
        self._chunks = copy_chunks(frame, columns, rows)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer (memoryview or bytearray)
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def copy_buffer(frame: pd.DataFrame, columns: Sequence[sa.Column]) -> io.BytesIO:
    """The rows of ``frame`` (in the order of ``columns``) as one COPY text-format buffer (small tables;
    a large one streams through ``CopyStream``)."""
    return io.BytesIO(b"".join(copy_chunks(frame, columns)))
