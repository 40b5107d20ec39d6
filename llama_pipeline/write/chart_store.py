"""Storing pools' charts (the write side of pool history): each ``/chart/{pool}`` body archived in
``raw_pool_charts`` and its daily points in ``pool_chart_points``, replacing what an earlier fetch of the
pool stored. A batch is one transaction, so a backfill that stops half-way keeps every batch committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
import zlib
from collections.abc import Iterable

import pandas as pd
import psycopg2.extensions

from llama_pipeline import schema
from llama_pipeline.decode.charts import ParsedChart, parse_chart
from llama_pipeline.fetch.chart_fetch import ChartResult
from llama_pipeline.write.pg_copy import copy_buffer
from llama_pipeline.write.warehouse_lock import quote_ident

CHART_ASSET = "raw_pool_charts"  # the asset under which unreadable chart points are kept in rejects


def store_charts(
    conn: psycopg2.extensions.connection, schema_name: str, results: Iterable[ChartResult]
) -> dict[str, ParsedChart]:
    """Archive charts (body byte for byte, gzip-compressed) and replace each pool's points; the points
    that cannot be read go to ``rejects`` (asset ``raw_pool_charts``, the day it was fetched, the
    pool as key), replacing what an earlier fetch of the pool set aside. Returns the charts stored
    that had such points, by pool.

    Only a pool with a usable chart stored before has points and rejects to delete (none on a first
    backfill), each by ``pool_id = ...``: the key leads with the pool (migration 0008), and an equality
    on it is planned as an index scan even before the table has statistics, where ``= ANY(<a batch>)``
    was planned as a scan of the whole table. With the day first in the key, every delete scanned the
    table and every batch rewrote most of the key: a backfill quadratic in the points it stored."""
    s = quote_ident(schema_name)
    results = list(results)
    replaced: dict[str, tuple[dt.date, ParsedChart]] = {}  # by pool: a pool twice in a batch keeps its last
    with conn.cursor() as cur:
        # raw_pool_charts holds a row per pool (thousands, the bodies out of line): read whole if need be
        cur.execute(f"SELECT pool_id::text FROM {s}.raw_pool_charts WHERE pool_id = ANY(%s::uuid[]) "
                    "AND error IS NULL", ([r.pool_id for r in results],))
        stored_before = {row[0] for row in cur.fetchall()}
        for result in results:
            parsed, error = None, result.error
            if result.body is not None and error is None:
                try:
                    parsed = parse_chart(result.pool_id, result.body)
                except ValueError as problem:
                    error = str(problem)
            body = result.body
            days = [p[0] for p in parsed.points] if parsed else []
            cur.execute(
                f"""
                INSERT INTO {s}.raw_pool_charts AS t (pool_id, url, fetched_at, http_status, error, body,
                    size_bytes, sha256, point_count, first_day, last_day)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (pool_id) DO UPDATE SET url = EXCLUDED.url, fetched_at = EXCLUDED.fetched_at,
                    http_status = EXCLUDED.http_status, error = EXCLUDED.error, body = EXCLUDED.body,
                    size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
                    point_count = EXCLUDED.point_count, first_day = EXCLUDED.first_day,
                    last_day = EXCLUDED.last_day
                -- a failed refetch never replaces a good chart: the archive keeps what it had
                WHERE EXCLUDED.error IS NULL OR t.error IS NOT NULL
                """,
                (
                    result.pool_id, result.url, result.fetched_at, result.http_status, error,
                    psycopg2.Binary(_gzip(body)) if body is not None else None,
                    len(body) if body is not None else None,
                    hashlib.sha256(body).hexdigest() if body is not None else None,
                    len(days) if parsed else None, min(days) if days else None, max(days) if days else None,
                ),
            )
            if parsed:
                replaced[result.pool_id] = (result.fetched_at.astimezone(dt.timezone.utc).date(), parsed)
        if not replaced:
            return {}
        for pool_id in replaced:
            if str(uuid.UUID(pool_id)) in stored_before:
                cur.execute(f"DELETE FROM {s}.pool_chart_points WHERE pool_id = %s", (pool_id,))
                cur.execute(f"DELETE FROM {s}.rejects WHERE asset = %s AND record_key = %s", (CHART_ASSET, pool_id))
        rejects = [(CHART_ASSET, day, r.record_index, r.record_key, r.reason, r.record)
                   for day, parsed in replaced.values() for r in parsed.rejects]
        if rejects:
            columns = [schema.rejects.c[name] for name in
                       ("asset", "partition_date", "record_index", "record_key", "reason", "record")]
            cur.copy_expert(f"COPY {s}.rejects ({', '.join(c.name for c in columns)}) FROM STDIN",
                            copy_buffer(pd.DataFrame(rejects, columns=[c.name for c in columns]), columns))
        points = [point for _, parsed in replaced.values() for point in parsed.points]
        if points:
            columns = list(schema.pool_chart_points.columns)
            frame = pd.DataFrame(points, columns=[c.name for c in columns])
            cur.copy_expert(
                f"COPY {s}.pool_chart_points ({', '.join(c.name for c in columns)}) FROM STDIN",
                copy_buffer(frame, columns),
            )
    return {pool_id: parsed for pool_id, (_, parsed) in replaced.items() if parsed.rejects}


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()
