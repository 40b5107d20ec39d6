"""The archive of raw payloads in ``raw_payloads``: store, list and replay them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

import psycopg2.extensions

from llama_pipeline.fetch.payloads import COMPRESSION, Endpoint, RawPayload, decompress
from llama_pipeline.fetch.quarantine import TABLE as quarantine_table
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline.write.warehouse_lock import quote_ident


class MissingPayload(LookupError):
    """No payload is stored for a day that a run needs."""


@dataclasses.dataclass(frozen=True)
class FetchedPayloads:
    """What a raw asset hands to the IO manager: payloads fetched in this run (to archive, replacing any
    stored for the same day) and the days whose stored payload was kept as it was."""

    endpoint: Endpoint
    fetched: tuple[RawPayload, ...]
    kept: tuple[dt.date, ...]
    # The quarantine's pending rows of the fetched payloads, released when they are stored.
    held: tuple[int, ...] = ()
    # Past days of the run without a stored capture, and where their rows come from instead
    # (``day_sources``): each day's materialization says so.
    uncaptured: dict[dt.date, str] = dataclasses.field(default_factory=dict)


def store(conn: psycopg2.extensions.connection, schema: str, payloads: Iterable[RawPayload],
          held: Sequence[int] = ()) -> int:
    """Upsert the payloads into the archive. ``held``: the quarantine ids of the payloads (in order) when
    they are held there: the body already sent to the server is then copied from that row, not sent again
    (a day's two bodies are 3.6 MB compressed, twice that as bytea text)."""
    table = f"{quote_ident(schema)}.raw_payloads"
    written = 0
    held_ids = list(held)
    with conn.cursor() as cur:
        for index, payload in enumerate(payloads):
            body_sql, body = _body_source(cur, schema, payload, held_ids[index] if index < len(held_ids) else None)
            cur.execute(
                f"""
                INSERT INTO {table} AS t (endpoint, partition_date, url, fetched_at, http_status, content_type,
                                          compression, body, size_bytes, sha256, record_count)
                VALUES (%s, %s, %s, %s, %s, %s, %s, {body_sql}, %s, %s, %s)
                ON CONFLICT (endpoint, partition_date) DO UPDATE SET
                    url = EXCLUDED.url, fetched_at = EXCLUDED.fetched_at, http_status = EXCLUDED.http_status,
                    content_type = EXCLUDED.content_type, compression = EXCLUDED.compression,
                    body = EXCLUDED.body, size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
                    record_count = EXCLUDED.record_count
                -- a later capture replaces an earlier one, never the reverse (two runs racing)
                WHERE EXCLUDED.fetched_at >= t.fetched_at
                """,
                (
                    payload.endpoint, payload.partition_date, payload.url, payload.fetched_at, payload.http_status,
                    payload.content_type, COMPRESSION, body, len(payload.body), payload.sha256, payload.record_count,
                ),
            )
            written += cur.rowcount  # 0 when a later capture of the day is stored already
    return written


def _body_source(cur: psycopg2.extensions.cursor, schema: str, payload: RawPayload,
                 held_id: int | None) -> tuple[str, object]:
    """The SQL for the stored body and its parameter: the quarantine row's own body when that row holds
    this very capture (locked until the transaction ends, which also releases it), else the bytes."""
    if held_id is not None:
        quarantined = f"{quote_ident(schema)}.{quarantine_table}"
        cur.execute(f"SELECT 1 FROM {quarantined} WHERE id = %s AND sha256 = %s AND compression = %s FOR SHARE",
                    (held_id, payload.sha256, COMPRESSION))
        if cur.fetchone() is not None:
            return f"(SELECT body FROM {quarantined} WHERE id = %s)", held_id
    return "%s", psycopg2.Binary(payload.compressed())


def stored_days(warehouse: Warehouse, endpoint: Endpoint, days: Sequence[dt.date]) -> set[dt.date]:
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT partition_date FROM {quote_ident(warehouse.schema_name)}.raw_payloads "
            "WHERE endpoint = %s AND partition_date = ANY(%s)",
            (endpoint, list(days)),
        )
        return {row[0] for row in cur.fetchall()}


def stored_captures(warehouse: Warehouse, endpoint: Endpoint, days: Sequence[dt.date]) -> dict[dt.date, dt.datetime]:
    """When the stored payload of each of ``days`` that has one was fetched."""
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT partition_date, fetched_at FROM {quote_ident(warehouse.schema_name)}.raw_payloads "
            "WHERE endpoint = %s AND partition_date = ANY(%s)",
            (endpoint, list(days)),
        )
        return dict(cur.fetchall())


def _missing(endpoint: Endpoint, day: dt.date) -> MissingPayload:
    return MissingPayload(
        f"no /{endpoint} payload is stored for {day.isoformat()}: materialize raw_{endpoint} for that day "
        "first (only today's payload can be fetched; past days come from history)"
    )


def stored_sha256(warehouse: Warehouse, endpoint: Endpoint, day: dt.date) -> str:
    """The SHA-256 of the day's stored body (what identifies its content), without reading the body."""
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(
            f"SELECT sha256 FROM {quote_ident(warehouse.schema_name)}.raw_payloads "
            "WHERE endpoint = %s AND partition_date = %s",
            (endpoint, day),
        )
        row = cur.fetchone()
    if row is None:
        raise _missing(endpoint, day)
    return row[0]


def load(warehouse: Warehouse, endpoint: Endpoint, day: dt.date) -> RawPayload:
    with warehouse.connection() as conn:
        return load_in(conn, warehouse.schema_name, endpoint, day)


def load_in(conn: psycopg2.extensions.connection, schema: str, endpoint: Endpoint, day: dt.date) -> RawPayload:
    """``load`` through a connection the caller holds."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT url, fetched_at, http_status, content_type, compression, body, record_count FROM "
            f"{quote_ident(schema)}.raw_payloads WHERE endpoint = %s AND partition_date = %s",
            (endpoint, day),
        )
        row = cur.fetchone()
    if row is None:
        raise _missing(endpoint, day)
    url, fetched_at, http_status, content_type, compression, body, record_count = row
    return RawPayload(
        endpoint, day, url, fetched_at, http_status, content_type, decompress(bytes(body), compression), record_count
    )


@dataclasses.dataclass(frozen=True)
class RawArchive:
    """A downstream asset's view of one endpoint's payloads for the run's days, read one day at a time."""

    warehouse: Warehouse
    endpoint: Endpoint
    days: tuple[dt.date, ...]

    def load(self, day: dt.date) -> RawPayload:
        return load(self.warehouse, self.endpoint, day)
