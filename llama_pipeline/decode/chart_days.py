"""The reads that fill a past day from stored chart points (a day with no ``/pools`` payload): its
``pool_snapshots`` rows, and the dimension rows (chains, projects, pools) those points name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd
import psycopg2.extensions

from llama_pipeline import schema
from llama_pipeline.write.warehouse_lock import quote_ident

# Columns of pool_snapshots a chart point carries; the rest stay NULL on chart-filled days.
NOT_IN_CHART = tuple(c for c in schema.SNAPSHOT_METRICS if c not in schema.CHART_METRICS)
UNKNOWN = schema.UNKNOWN  # chain and project of a pool known only from its history


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
