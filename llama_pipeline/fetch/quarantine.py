"""Captures kept aside: every response that arrives whole is held here before it is parsed.

``hold`` writes the body as 'pending' in a transaction of its own, so a parser crash, a kill or a
refused payload loses nothing. A capture that validates is released by the IO manager in the same
transaction that upserts it into ``raw_payloads``; one that does not is ``refuse``d: it stays with its
reason, is never read downstream, and the oldest refused captures beyond a bound are deleted.

``LLAMA_QUARANTINE_KEEP`` (default 20) is that bound, per endpoint; a pending row older than
``ABANDONED_AFTER`` belongs to a run that died before deciding, and is marked refused as such.
"""

from __future__ import annotations

import datetime as dt
import io
import os

import psycopg2.extensions

from llama_pipeline import clock
from llama_pipeline.fetch.payloads import COMPRESSION, RawPayload
from llama_pipeline.write import pg_copy_binary
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident

TABLE = "raw_payload_quarantine"
ABANDONED_AFTER = dt.timedelta(hours=1)


def keep_limit() -> int:
    raw = os.environ.get("LLAMA_QUARANTINE_KEEP", "").strip()
    if not raw:
        return 20
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"LLAMA_QUARANTINE_KEEP={raw!r} is not a whole number of at least 1")
    return int(raw)


def _table(schema: str) -> str:
    return f"{quote_ident(schema)}.{TABLE}"


# The quarantine row as COPY writes it: (column, its type in binary COPY).
_HELD_COLUMNS = (("id", "bigint"), ("endpoint", "text"), ("partition_date", "date"), ("url", "text"),
                 ("fetched_at", "timestamptz"), ("http_status", "integer"), ("content_type", "text"),
                 ("compression", "text"), ("body", "bytea"), ("size_bytes", "bigint"), ("sha256", "text"),
                 ("status", "text"), ("run_id", "text"))


def hold(warehouse: Warehouse, payload: RawPayload, run_id: str | None) -> int:
    """Store the capture as 'pending' and commit at once; returns its id.

    The row goes in by binary COPY (its id drawn first, as COPY returns none), so the compressed body is
    sent as it is rather than as an escaped literal twice its size."""
    table = _table(warehouse.schema_name)
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"UPDATE {table} SET status = 'refused', reason = 'abandoned: the run that fetched it stopped before "
            "validating it' WHERE status = 'pending' AND fetched_at < %s", (clock.now() - ABANDONED_AFTER,))
        cur.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", (table,))
        held_id = cur.fetchone()[0]
        values = (held_id, payload.endpoint, payload.partition_date, payload.url, payload.fetched_at,
                  payload.http_status, payload.content_type, COMPRESSION, payload.compressed(), len(payload.body),
                  payload.sha256, "pending", run_id)
        data = pg_copy_binary.row([(kind, value) for (_, kind), value in zip(_HELD_COLUMNS, values, strict=True)])
        columns = ", ".join(name for name, _ in _HELD_COLUMNS)
        cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN (FORMAT binary)", io.BytesIO(data), size=len(data))
        return held_id


def refuse(warehouse: Warehouse, held_id: int, endpoint: str, reason: str) -> None:
    """Mark the capture refused with its reason, and keep the quarantine within its bound."""
    table = _table(warehouse.schema_name)
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {table} SET status = 'refused', reason = %s WHERE id = %s", (reason, held_id))
        cur.execute(
            f"""DELETE FROM {table} WHERE id IN (
                    SELECT id FROM {table} WHERE endpoint = %s AND status = 'refused'
                    ORDER BY fetched_at DESC, id DESC OFFSET %s)""",
            (endpoint, keep_limit()),
        )


def release(conn: psycopg2.extensions.connection, schema: str, held_ids: tuple[int, ...]) -> None:
    """Drop the pending rows of captures being stored in ``raw_payloads`` (in the caller's transaction)."""
    if held_ids:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {_table(schema)} WHERE id = ANY(%s) AND status = 'pending'", (list(held_ids),))


def where(warehouse: Warehouse, held_id: int) -> str:
    """How to find a refused capture, for a failure message."""
    return f"{warehouse.schema_name}.{TABLE} id {held_id}"
