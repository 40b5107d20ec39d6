"""A row sent by binary COPY reads back as the same row inserted with ordinary query parameters."""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest

from llama_pipeline.write import pg_copy_binary

_COLUMNS = (("n", "bigint"), ("i", "integer"), ("d", "date"), ("ts", "timestamptz"), ("t", "text"), ("b", "bytea"))
_EDGES = [
    (2**63 - 1, -(2**31), dt.date(1999, 12, 31), dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc),
     "", b""),
    (-1, 200, dt.date(2000, 1, 1), dt.datetime(2026, 12, 2, 8, 4, 47, 6204, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
     "tab\tnew\nline \\ back ' quote é 中", bytes(range(256)) * 3),
    (0, 2**31 - 1, dt.date(2261, 6, 30), dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), "x", os.urandom(300_000)),
    (None, None, None, None, None, None),
]


def test_binary_copy_reads_back_as_the_parameterised_insert(warehouse):
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'Asia/Kolkata'")  # timestamps must not depend on the session's zone
        for name in ("copied", "inserted"):
            cur.execute(f"CREATE TEMP TABLE {name} (k int, n bigint, i integer, d date, ts timestamptz, t text, "
                        "b bytea)")
        columns = ", ".join(name for name, _ in _COLUMNS)
        for k, values in enumerate(_EDGES):
            data = pg_copy_binary.row([("integer", k)] + [(kind, v) for (_, kind), v in zip(_COLUMNS, values)])
            cur.copy_expert(f"COPY copied (k, {columns}) FROM STDIN (FORMAT binary)", io.BytesIO(data))
            cur.execute(f"INSERT INTO inserted (k, {columns}) VALUES (%s, %s, %s, %s, %s, %s, %s)", (k, *values))
        cur.execute("SELECT * FROM copied ORDER BY k")
        copied = cur.fetchall()
        cur.execute("SELECT * FROM inserted ORDER BY k")
        assert copied == cur.fetchall()
    for row, sent in zip(copied, _EDGES, strict=True):  # and both are the values sent
        assert [bytes(v) if isinstance(v, memoryview) else v for v in row[1:]] == list(sent)


@pytest.mark.parametrize("kind, value", [("date", dt.datetime(2026, 1, 1)), ("date", "2026-01-01"),
                                         ("timestamptz", dt.datetime(2026, 1, 1)), ("timestamptz", dt.date(2026, 1, 1)),
                                         ("numeric", 1)])
def test_a_value_binary_copy_would_misread_is_refused(kind, value):
    # A naive datetime has no instant; a datetime is not a date (the server would take its bytes as one).
    with pytest.raises((TypeError, ValueError)):
        pg_copy_binary.row([(kind, value)])
