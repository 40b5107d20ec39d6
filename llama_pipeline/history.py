"""Pool history from DeFiLlama's ``/chart/{pool}``: fetch each pool's chart once, archive it, and serve
its daily points to the days that have no ``/pools`` payload.

A chart covers a pool's whole life, so a backfill of any range fetches each pool once and every day of
the range reads its points from ``pool_chart_points``. Each chart is committed as soon as it arrives,
so a backfill that stops half-way fetches only what is still missing when started again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import zlib
from collections.abc import Iterable, Sequence

import pandas as pd
import psycopg2.extensions

from llama_pipeline import coerce, schema
from llama_pipeline.chart_fetch import ChartResult
from llama_pipeline.decode.charts import ParsedChart, parse_chart
from llama_pipeline.pg_copy import copy_buffer
from llama_pipeline.warehouse_lock import quote_ident

# A pool DeFiLlama does not know (HTTP 400 "invalid configID!") or no longer serves will not come back:
# such failures are final, others (timeouts, 5xx after retries) are tried again by the next backfill.
FINAL_STATUSES = frozenset({400, 404, 410})
NOT_IN_CHART = tuple(c for c in schema.SNAPSHOT_METRICS if c not in schema.CHART_METRICS)
UNKNOWN = schema.UNKNOWN  # chain and project of a pool known only from its history
CHART_ASSET = "raw_pool_charts"  # the asset under which unreadable chart points are kept in rejects


@dataclasses.dataclass(frozen=True)
class PoolSelection:
    """Which pools a backfill fetches history for; empty filters mean every pool the warehouse knows."""

    pool_ids: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    chains: tuple[str, ...] = ()
    min_tvl_usd: float = 0.0
    limit: int | None = None


def selected_pools(conn: psycopg2.extensions.connection, schema_name: str, selection: PoolSelection) -> list[str]:
    """The pools to fetch: explicit ids, plus known pools matching the filters, largest TVL first."""
    s = quote_ident(schema_name)
    explicit = [coerce.pool_id(p) for p in selection.pool_ids]
    filtered = not explicit or selection.projects or selection.chains or selection.min_tvl_usd
    known: list[str] = []
    if filtered:
        with conn.cursor() as cur:
            cur.execute(
                f"""
                SELECT p.pool_id::text
                FROM {s}.pools p
                LEFT JOIN LATERAL (
                    SELECT tvl_usd FROM {s}.pool_snapshots s
                    WHERE s.pool_id = p.pool_id ORDER BY snapshot_date DESC LIMIT 1
                ) latest ON true
                WHERE (cardinality(%(projects)s::text[]) = 0 OR p.project = ANY(%(projects)s))
                  AND (cardinality(%(chains)s::text[]) = 0 OR p.chain = ANY(%(chains)s))
                  AND coalesce(latest.tvl_usd, 0) >= %(min_tvl)s
                ORDER BY latest.tvl_usd DESC NULLS LAST, p.pool_id
                """,
                {"projects": list(selection.projects), "chains": list(selection.chains),
                 "min_tvl": selection.min_tvl_usd},
            )
            known = [row[0] for row in cur.fetchall()]
    chosen = list(dict.fromkeys(explicit + known))
    return chosen[: selection.limit] if selection.limit else chosen


def pending_pools(
    conn: psycopg2.extensions.connection, schema_name: str, pool_ids: Sequence[str], through: dt.date
) -> list[str]:
    """The pools whose stored chart does not yet cover ``through``: never fetched, fetched before the
    day ended, or failed for a reason that may pass."""
    covered_after = dt.datetime.combine(through + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT pool_id::text FROM {quote_ident(schema_name)}.raw_pool_charts
            WHERE pool_id = ANY(%s::uuid[])
              AND ((error IS NULL AND fetched_at >= %s) OR http_status = ANY(%s))
            """,
            (list(pool_ids), covered_after, sorted(FINAL_STATUSES)),
        )
        done = {row[0] for row in cur.fetchall()}
    return [p for p in pool_ids if p not in done]


def store_charts(
    conn: psycopg2.extensions.connection, schema_name: str, results: Iterable[ChartResult]
) -> dict[str, ParsedChart]:
    """Archive charts (body byte for byte, gzip-compressed) and replace each pool's points; the points
    that cannot be read go to ``rejects`` (asset ``raw_pool_charts``, the day it was fetched, the
    pool as key), replacing what an earlier fetch of the pool set aside. Returns the charts stored
    that had such points, by pool."""
    s = quote_ident(schema_name)
    points: list[tuple] = []
    rejects: list[tuple] = []
    spoiled: dict[str, ParsedChart] = {}
    with conn.cursor() as cur:
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
                cur.execute(f"DELETE FROM {s}.pool_chart_points WHERE pool_id = %s", (result.pool_id,))
                cur.execute(f"DELETE FROM {s}.rejects WHERE asset = %s AND record_key = %s",
                            (CHART_ASSET, result.pool_id))
                points.extend(parsed.points)
                day = result.fetched_at.astimezone(dt.timezone.utc).date()
                rejects += [(CHART_ASSET, day, r.record_index, r.record_key, r.reason, r.record) for r in parsed.rejects]
                if parsed.rejects:
                    spoiled[result.pool_id] = parsed
        if rejects:
            columns = [schema.rejects.c[name] for name in
                       ("asset", "partition_date", "record_index", "record_key", "reason", "record")]
            cur.copy_expert(f"COPY {s}.rejects ({', '.join(c.name for c in columns)}) FROM STDIN",
                            copy_buffer(pd.DataFrame(rejects, columns=[c.name for c in columns]), columns))
        if points:
            columns = list(schema.pool_chart_points.columns)
            frame = pd.DataFrame(points, columns=[c.name for c in columns])
            cur.copy_expert(
                f"COPY {s}.pool_chart_points ({', '.join(c.name for c in columns)}) FROM STDIN",
                copy_buffer(frame, columns),
            )
    return spoiled


def _gzip(body: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


def chart_snapshots(conn: psycopg2.extensions.connection, schema_name: str, day: dt.date) -> pd.DataFrame:
    """pool_snapshots rows for a day from stored chart points; columns a chart lacks stay NULL."""
    s = quote_ident(schema_name)
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT pool_id::text, {', '.join(schema.CHART_METRICS)}, price_per_share "
            f"FROM {s}.pool_chart_points WHERE snapshot_date = %s ORDER BY pool_id",
            (day,),
        )
        rows = cur.fetchall()
    columns = [c.name for c in schema.pool_snapshots.columns]
    records = []
    for pool_id, *metrics, price_per_share in rows:
        record = dict.fromkeys(columns)
        record.update(zip(schema.CHART_METRICS, metrics))
        record.update(pool_id=pool_id, snapshot_date=day, source="chart",
                      extra={"pricePerShare": price_per_share} if price_per_share is not None else None)
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)


def carried_projects(
    conn: psycopg2.extensions.connection, schema_name: str, slugs: Iterable[str], day: dt.date
) -> pd.DataFrame:
    """``projects`` rows for a day whose /protocols payload is missing: each slug's stored row as it is
    (a placeholder for a slug never seen), with the day as its seen-range."""
    columns = [c.name for c in schema.projects.columns if c.name not in (schema.FIRST_SEEN, schema.LAST_SEEN)]
    wanted = sorted(set(slugs))
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {quote_ident(schema_name)}.projects "
            "WHERE slug = ANY(%s)",
            (wanted,),
        )
        carried = [dict(zip(columns, row)) for row in cur.fetchall()]
    known = {row["slug"] for row in carried}
    carried += [dict(dict.fromkeys(columns), slug=slug, listed_in_protocols=False) for slug in wanted
                if slug not in known]
    frame = pd.DataFrame.from_records(carried, columns=columns)
    frame[schema.FIRST_SEEN] = day
    frame[schema.LAST_SEEN] = day
    return frame


def history_dimension_rows(
    conn: psycopg2.extensions.connection, schema_name: str, table: str, day: dt.date
) -> pd.DataFrame:
    """Dimension rows for a day filled from history: the stored row of every pool (or its chain, or
    project) seen in that day's chart points, carried with its own attributes and the day as its
    seen-range, so the upsert only widens first/last seen; pools known from history alone get the
    '(unknown)' chain and project."""
    s = quote_ident(schema_name)
    target = schema.metadata.tables[table]
    key = {"pools": "pool_id", "chains": "name", "projects": "slug"}[table]
    via = {"pools": "pool_id", "chains": "chain", "projects": "project"}[table]
    columns = [c.name for c in target.columns if c.name not in (schema.FIRST_SEEN, schema.LAST_SEEN)]
    with conn.cursor() as cur:
        cur.execute(
            f"""
            WITH seen AS (
                SELECT DISTINCT coalesce(p.{via}::text, %(unknown)s) AS k
                FROM {s}.pool_chart_points c LEFT JOIN {s}.pools p USING (pool_id)
                WHERE c.snapshot_date = %(day)s
                  AND (%(table)s <> 'pools' OR p.pool_id IS NOT NULL)
            )
            SELECT {", ".join(f"t.{quote_ident(c)}" for c in columns)}
            FROM seen JOIN {s}.{quote_ident(table)} t ON t.{key}::text = seen.k
            """,
            {"day": day, "unknown": UNKNOWN, "table": table},
        )
        carried = [dict(zip(columns, row)) for row in cur.fetchall()]
        placeholders: list[dict] = []
        if table == "pools":
            cur.execute(
                f"SELECT c.pool_id::text FROM {s}.pool_chart_points c LEFT JOIN {s}.pools p USING (pool_id) "
                "WHERE c.snapshot_date = %s AND p.pool_id IS NULL",
                (day,),
            )
            placeholders = [dict(dict.fromkeys(columns), pool_id=r[0], chain=UNKNOWN, project=UNKNOWN)
                            for r in cur.fetchall()]
        else:
            cur.execute(
                f"SELECT EXISTS (SELECT 1 FROM {s}.pool_chart_points c LEFT JOIN {s}.pools p USING (pool_id) "
                "WHERE c.snapshot_date = %s AND (p.pool_id IS NULL OR p.chain = %s))",
                (day, UNKNOWN),
            )
            if cur.fetchone()[0] and not any(r[key] == UNKNOWN for r in carried):
                placeholder = dict.fromkeys(columns)
                placeholder[key] = UNKNOWN
                if table == "chains":
                    placeholder["aliases"] = [UNKNOWN]
                else:
                    placeholder["listed_in_protocols"] = False
                placeholders = [placeholder]
    frame = pd.DataFrame.from_records(carried + placeholders, columns=columns)
    frame[schema.FIRST_SEEN] = day
    frame[schema.LAST_SEEN] = day
    return frame
