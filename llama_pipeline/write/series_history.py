"""History series (a chain's TVL, a protocol's TVL): fetched politely many at a time, archived
losslessly in ``raw_series`` and expanded into their daily table, a batch per transaction, each
response's rows copied to a stage as soon as it is parsed.

The fetching is the chart history's (``chart_fetch.fetch_many``): bounded concurrency, a rate limit on
request starts, results handed over in batches so a stopped backfill resumes with what is still missing.
Bodies are decoded in the consumer thread one at a time, so a few 28 MB responses in flight never mean a few decoded
documents in memory at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence

import pandas as pd
import psycopg2
import psycopg2.extensions
import sqlalchemy as sa

from llama_pipeline import schema
from llama_pipeline.decode.chain_tvl_rows import ParsedSeries, SeriesError
from llama_pipeline.fetch.chart_fetch import Fetched
from llama_pipeline.fetch.payloads import COMPRESSION, compress
from llama_pipeline.write.batches import Reject
from llama_pipeline.write.pg_copy import copy_buffer
from llama_pipeline.write.warehouse_lock import partition_lock_key, quote_ident


@dataclasses.dataclass(frozen=True)
class SeriesKind:
    """One history dataset: where its responses are archived, how one is parsed and where its rows go."""

    endpoint: str  # raw_series.endpoint
    asset: str  # rejects.asset
    table: sa.Table
    parse: Callable[[str, bytes, dt.datetime], ParsedSeries]
    # Which stored rows a point may replace (SQL on the target ``t``); None: any (history owns the table).
    replaces_only: str | None = None
    # Days with a stored payload of this endpoint are the payload's: the series' points of those days are
    # not loaded (lending history fills only the days /lendBorrow was not captured).
    skip_days_of: str | None = None
    # What may be stored and shown of a URL or an error naming it (an API key in the path is removed).
    public: Callable[[str], str] = lambda text: text
    # Responses reach tens of MB (a protocol's detail): fetch only twice the concurrency ahead of the
    # writes, instead of a batch ahead.
    large_responses: bool = False


def pending(conn: psycopg2.extensions.connection, schema_name: str, endpoint: str, keys: Sequence[str],
            fetched_since: dt.datetime) -> list[str]:
    """The keys without a usable response fetched since ``fetched_since`` (the run's start, or the
    start of the backfill it resumes), in the order given."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT series_key FROM {quote_ident(schema_name)}.raw_series WHERE endpoint = %s "
            "AND series_key = ANY(%s) AND error IS NULL AND fetched_at >= %s",
            (endpoint, list(keys), fetched_since),
        )
        done = {row[0] for row in cur.fetchall()}
    return [key for key in keys if key not in done]


def store(conn: psycopg2.extensions.connection, schema_name: str, kind: SeriesKind, results: Sequence[Fetched],
          day: dt.date) -> dict[str, int]:
    """Archive a batch of responses and upsert their points, in the caller's transaction. A response
    that is unusable as a whole is archived with its reason and loads nothing; a bad point goes to
    rejects; a failed re-fetch never replaces a usable archived response."""
    s = quote_ident(schema_name)
    counts = {"points": 0, "rejected_points": 0, "unusable": 0}
    day_column = next(c.name for c in kind.table.primary_key if isinstance(c.type, sa.Date))
    rejects: list[tuple] = []
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(schema_name, kind.table.name),))
        taken: set[dt.date] = set()
        staged = False
        if kind.skip_days_of:
            cur.execute(f"SELECT partition_date FROM {s}.raw_payloads WHERE endpoint = %s", (kind.skip_days_of,))
            taken = {row[0] for row in cur.fetchall()}
        for result in results:
            parsed, error = None, result.error
            if result.body is not None and error is None:
                try:
                    parsed = kind.parse(result.key, result.body, result.fetched_at)
                except SeriesError as problem:
                    error = str(problem)
            if error:
                counts["unusable"] += 1
            body = result.body  # a failed fetch keeps the start of its response, as the charts do
            days = parsed.rows[day_column] if parsed is not None and len(parsed.rows) else None
            cur.execute(
                f"""
                INSERT INTO {s}.raw_series AS t (endpoint, series_key, url, fetched_at, http_status, error,
                    compression, body, size_bytes, sha256, point_count, rejected_points, first_day, last_day)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (endpoint, series_key) DO UPDATE SET url = EXCLUDED.url,
                    fetched_at = EXCLUDED.fetched_at, http_status = EXCLUDED.http_status, error = EXCLUDED.error,
                    compression = EXCLUDED.compression, body = EXCLUDED.body, size_bytes = EXCLUDED.size_bytes,
                    sha256 = EXCLUDED.sha256, point_count = EXCLUDED.point_count,
                    rejected_points = EXCLUDED.rejected_points, first_day = EXCLUDED.first_day,
                    last_day = EXCLUDED.last_day
                WHERE EXCLUDED.error IS NULL OR t.error IS NOT NULL
                """,
                (kind.endpoint, result.key, kind.public(result.url), result.fetched_at, result.http_status,
                 kind.public(error) if error else None,
                 COMPRESSION if body is not None else None,
                 psycopg2.Binary(compress(body)) if body is not None else None,
                 len(body) if body is not None else None,
                 hashlib.sha256(body).hexdigest() if body is not None else None,
                 len(parsed.rows) if parsed else None, len(parsed.rejects) if parsed else None,
                 days.min() if days is not None else None, days.max() if days is not None else None),
            )
            if parsed is None:
                continue
            cur.execute(f"DELETE FROM {s}.rejects WHERE asset = %s AND record_key = %s", (kind.asset, result.key))
            rejects += [(kind.asset, day, r.record_index, result.key, r.reason, r.record) for r in parsed.rejects]
            counts["points"] += len(parsed.rows)
            counts["rejected_points"] += len(parsed.rejects)
            # Each response's rows are copied to the stage as soon as it is parsed, so a batch never
            # holds more than one decoded response (a protocol's reaches hundreds of MB decoded); the
            # batch is upserted from the stage in one statement.
            rows = parsed.rows[~parsed.rows[day_column].isin(taken)] if taken else parsed.rows
            if len(rows):
                if not staged:
                    _open_stage(cur, s, kind.table)
                _stage(cur, kind.table, rows)
                staged = True
            del parsed, rows, days
        if staged:
            _upsert_stage(cur, s, kind.table, kind.replaces_only)
        if rejects:
            columns = [schema.rejects.c[n] for n in ("asset", "partition_date", "record_index", "record_key",
                                                     "reason", "record")]
            cur.copy_expert(f"COPY {s}.rejects ({', '.join(c.name for c in columns)}) FROM STDIN",
                            copy_buffer(pd.DataFrame(rejects, columns=[c.name for c in columns]), columns))
    return counts


def _open_stage(cur: psycopg2.extensions.cursor, s: str, table: sa.Table) -> None:
    cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS _series_stage (LIKE {s}.{quote_ident(table.name)}) "
                "ON COMMIT DELETE ROWS")
    cur.execute("TRUNCATE _series_stage")


def _stage(cur: psycopg2.extensions.cursor, table: sa.Table, frame: pd.DataFrame) -> None:
    columns = list(table.columns)
    names = ", ".join(quote_ident(c.name) for c in columns)
    cur.copy_expert(f"COPY _series_stage ({names}) FROM STDIN", copy_buffer(frame[[c.name for c in columns]], columns))


def _upsert_stage(cur: psycopg2.extensions.cursor, s: str, table: sa.Table, replaces_only: str | None) -> None:
    columns = list(table.columns)
    names = ", ".join(quote_ident(c.name) for c in columns)
    key = ", ".join(quote_ident(c.name) for c in table.primary_key)
    values = ", ".join(f"{quote_ident(c.name)} = EXCLUDED.{quote_ident(c.name)}" for c in columns
                       if not c.primary_key)
    cur.execute(f"INSERT INTO {s}.{quote_ident(table.name)} AS t ({names}) SELECT {names} FROM _series_stage "
                f"ON CONFLICT ({key}) DO UPDATE SET {values}" + (f" WHERE {replaces_only}" if replaces_only else ""))
