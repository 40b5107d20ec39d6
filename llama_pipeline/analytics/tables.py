"""Keeping the analytics tables (migration 0004) up to date for the days a run loads.

The daily stats replace the run's days' rows, and ``pool_latest`` recomputes the pools that have a
snapshot on those days (or whose stored newest snapshot was one of them, in case a re-loaded day no
longer has the pool). The cost of a day is therefore the same after a week or after ten years, where
re-aggregating every snapshot grew with history. ``pool_apy_stats`` holds the newest day's 30-day
windows and is replaced as a whole (unless the run's days lie outside the window, which leaves it
as it is): its work is bounded by the window. Both one-row-per-pool tables are as of the newest stored
day whatever partition runs. Everything runs in the
caller's transaction (readers see the previous rows until it commits), under a per-table advisory
lock.

The aggregates group by the pools' chain and project as stored when the day is computed; a pool whose
project is renamed later keeps its older days under the old name until those days are re-materialized.

The SQL repeats migration 0004's on purpose: a migration must not change when code does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import psycopg2.extensions

from llama_pipeline import schema
from llama_pipeline.write.warehouse_lock import partition_lock_key, quote_ident

_STATS = """
       count(*) AS pool_count,
       sum(s.tvl_usd) AS total_tvl_usd,
       sum(s.tvl_usd) FILTER (WHERE p.stablecoin) AS stablecoin_tvl_usd,
       avg(s.apy) AS mean_apy,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.apy) AS median_apy,
       sum(s.apy * s.tvl_usd) / nullif(sum(s.tvl_usd) FILTER (WHERE s.apy IS NOT NULL), 0) AS tvl_weighted_apy,
       max(s.apy) AS max_apy,
       count(*) FILTER (WHERE s.outlier) AS outlier_count"""
_STATS_COLUMNS = ("pool_count, total_tvl_usd, stablecoin_tvl_usd, mean_apy, median_apy, tvl_weighted_apy, max_apy, "
                  "outlier_count")

_DAILY_STATS = {
    "chain_daily_stats": f"""
        INSERT INTO {{q}}.chain_daily_stats (snapshot_date, chain, {_STATS_COLUMNS})
        SELECT s.snapshot_date, p.chain, {_STATS}
        FROM {{q}}.pool_snapshots s
        JOIN {{q}}.pools p ON p.pool_id = s.pool_id
        WHERE s.snapshot_date BETWEEN %(first)s AND %(last)s
        GROUP BY s.snapshot_date, p.chain""",
    "project_daily_stats": f"""
        INSERT INTO {{q}}.project_daily_stats (snapshot_date, project, project_name, project_category, chain_count,
                                              {_STATS_COLUMNS})
        SELECT s.snapshot_date, j.slug, j.name, j.category, count(DISTINCT p.chain), {_STATS}
        FROM {{q}}.pool_snapshots s
        JOIN {{q}}.pools p ON p.pool_id = s.pool_id
        JOIN {{q}}.projects j ON j.slug = p.project
        WHERE s.snapshot_date BETWEEN %(first)s AND %(last)s
        GROUP BY s.snapshot_date, j.slug""",
}

_POOL_LATEST_COLUMNS = [c.name for c in schema.pool_latest.columns]
_SNAPSHOT_NAMES = [quote_ident(name) for name in (*schema.SNAPSHOT_METRICS, "source")]  # what pool_latest copies
_SNAPSHOT_VALUES = ", ".join(f"s.{name}" for name in _SNAPSHOT_NAMES)


def _lock(cur: psycopg2.extensions.cursor, schema_name: str, table: str) -> None:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(schema_name, table),))


@contextlib.contextmanager
def _hash_joins(cur: psycopg2.extensions.cursor) -> Iterator[None]:
    """Plan the statements of the block without nested loops, for this transaction only.

    A day's snapshots are nearly every pool, so joining them to ``pools`` and ``projects`` is best done by
    hashing those tables whatever the history. The planner cannot tell when ``pool_snapshots`` has no
    statistics for the day (a fresh schema, or a day loaded since its last ANALYZE): it takes the day for
    ~50 rows and probes both primary keys 17,000 times (one day, no statistics: chain_daily_stats 32-54 ->
    19-28 ms, project_daily_stats 65-110 -> 33-51 ms, min-median of nine). The setting is put back when the
    block succeeds; after a failure the rollback puts it back."""
    cur.execute("SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)")
    previous = cur.fetchone()[0]
    yield
    cur.execute("SELECT set_config('enable_nestloop', %s, true)", (previous,))


def refresh_daily_stats(cur: psycopg2.extensions.cursor, schema_name: str, table: str,
                        first: dt.date, last: dt.date) -> int:
    """Replace the rows of ``first``..``last`` in ``chain_daily_stats`` or ``project_daily_stats``;
    returns the rows written."""
    q = quote_ident(schema_name)
    _lock(cur, schema_name, table)
    cur.execute(f"DELETE FROM {q}.{quote_ident(table)} WHERE snapshot_date BETWEEN %(first)s AND %(last)s",
                {"first": first, "last": last})
    with _hash_joins(cur):
        cur.execute(_DAILY_STATS[table].format(q=q), {"first": first, "last": last})
        written = cur.rowcount
    return written


def refresh_pool_latest(cur: psycopg2.extensions.cursor, schema_name: str, first: dt.date, last: dt.date) -> int:
    """Bring ``pool_latest`` up to date after the days ``first``..``last`` were loaded; returns the pools
    written.

    A pool's newest snapshot within the days replaces its stored row when that row is not newer. A stored
    row of one of the days that the day no longer has (a day re-loaded without the pool) is recomputed
    from the pool's newest remaining snapshot. Pools whose stored row is newer than the days keep their
    snapshot and attributes (those came from the newer day); their first/last-seen days and project name
    are brought up to date.
    """
    q = quote_ident(schema_name)
    _lock(cur, schema_name, "pool_latest")
    params = {"first": first, "last": last}
    columns = ", ".join(quote_ident(c) for c in _POOL_LATEST_COLUMNS)
    attributes = f"""
        p.pool_id, p.chain, p.project, j.name, j.category,
        p.symbol, p.pool_meta, p.exposure, p.il_risk, p.stablecoin, p.underlying_tokens, p.reward_tokens,
        p.first_seen_date, p.last_seen_date, s.snapshot_date,
        s.snapshot_date = (SELECT max(snapshot_date) FROM {q}.pool_snapshots), {_SNAPSHOT_VALUES}"""
    cur.execute(
        f"""
        CREATE TEMP TABLE _range_newest ON COMMIT DROP AS
        SELECT DISTINCT ON (pool_id) pool_id, snapshot_date, {", ".join(_SNAPSHOT_NAMES)}
        FROM {q}.pool_snapshots
        WHERE snapshot_date BETWEEN %(first)s AND %(last)s
        ORDER BY pool_id, snapshot_date DESC
        """,
        params,
    )
    cur.execute(f"DELETE FROM {q}.pool_latest l USING _range_newest r "
                "WHERE l.pool_id = r.pool_id AND l.snapshot_date <= r.snapshot_date")
    cur.execute(
        f"""
        CREATE TEMP TABLE _orphaned ON COMMIT DROP AS
        WITH gone AS (
            DELETE FROM {q}.pool_latest WHERE snapshot_date BETWEEN %(first)s AND %(last)s RETURNING pool_id
        )
        SELECT pool_id FROM gone
        """,
        params,
    )
    written = 0
    for snapshots in (
        # Each pool's newest row of the days, unless its stored row is newer (then left as it is).
        "_range_newest s",
        # The pools a re-loaded day lost, and the days kept none of: their newest remaining snapshot.
        f"_orphaned o CROSS JOIN LATERAL (SELECT * FROM {q}.pool_snapshots x WHERE x.pool_id = o.pool_id "
        "ORDER BY x.snapshot_date DESC LIMIT 1) s",
    ):
        cur.execute(
            f"""
            INSERT INTO {q}.pool_latest ({columns})
            SELECT {attributes}
            FROM {snapshots}
            JOIN {q}.pools p ON p.pool_id = s.pool_id
            JOIN {q}.projects j ON j.slug = p.project
            WHERE NOT EXISTS (SELECT 1 FROM {q}.pool_latest l WHERE l.pool_id = s.pool_id)
            """
        )
        written += cur.rowcount
    # Rows left as they were still take the dimensions' current values: loading an older day moves a
    # pool's first_seen_date back, and /protocols may have renamed its project. Those are the rows newer
    # than the days' snapshot (the others were just written from the current dimensions): filtering on
    # that first spares joining every pool of a normal day to pools and projects (55-73 -> 25-35 ms a day).
    # Such a row is newer than the first day, which rules out every row on a normal day before any join
    # (one day into a fresh schema: 19-28 -> 4 ms).
    cur.execute(
        f"""
        UPDATE {q}.pool_latest l
        SET first_seen_date = p.first_seen_date, last_seen_date = p.last_seen_date,
            project_name = j.name, project_category = j.category
        FROM _range_newest r
        JOIN {q}.pools p ON p.pool_id = r.pool_id
        JOIN {q}.projects j ON j.slug = p.project
        WHERE l.pool_id = r.pool_id AND l.snapshot_date > r.snapshot_date AND l.snapshot_date > %(first)s
          AND (l.first_seen_date, l.last_seen_date, l.project_name, l.project_category)
              IS DISTINCT FROM (p.first_seen_date, p.last_seen_date, j.name, j.category)
        """,
        params,
    )
    # A newer day makes yesterday's current pools that are gone no longer current; only those change.
    cur.execute(
        f"""
        WITH newest AS (SELECT max(snapshot_date) AS day FROM {q}.pool_snapshots)
        UPDATE {q}.pool_latest l SET is_current = (l.snapshot_date = newest.day)
        FROM newest
        WHERE l.is_current IS DISTINCT FROM (l.snapshot_date = newest.day)
        """
    )
    cur.execute("DROP TABLE _range_newest, _orphaned")
    return written


_POOL_APY_STATS = """
INSERT INTO {q}.pool_apy_stats
WITH as_of AS (SELECT max(snapshot_date) AS day FROM {q}.pool_snapshots),
windows AS (
    -- Aggregated by pool alone, then joined to the pool's attributes: grouping 30 days of rows by every
    -- attribute column cost several times more.
    SELECT s.pool_id,
           max(s.apy) FILTER (WHERE s.snapshot_date = a.day) AS apy,
           max(s.tvl_usd) FILTER (WHERE s.snapshot_date = a.day) AS tvl_usd,
           avg(s.apy) FILTER (WHERE s.snapshot_date > a.day - 7) AS apy_avg_7d,
           stddev_samp(s.apy) FILTER (WHERE s.snapshot_date > a.day - 7) AS apy_stddev_7d,
           count(s.apy) FILTER (WHERE s.snapshot_date > a.day - 7) AS apy_days_7d,
           avg(s.apy) AS apy_avg_30d,
           stddev_samp(s.apy) AS apy_stddev_30d,
           min(s.apy) AS apy_min_30d,
           max(s.apy) AS apy_max_30d,
           count(s.apy) AS apy_days_30d,
           avg(s.tvl_usd) AS tvl_avg_30d
    FROM as_of a
    JOIN {q}.pool_snapshots s ON s.snapshot_date > a.day - 30 AND s.snapshot_date <= a.day
    GROUP BY s.pool_id
)
SELECT w.pool_id, p.chain, p.project, p.symbol, p.pool_meta, p.stablecoin, a.day AS as_of_date,
       w.apy, w.tvl_usd, w.apy_avg_7d, w.apy_stddev_7d, w.apy_days_7d, w.apy_avg_30d, w.apy_stddev_30d,
       w.apy_min_30d, w.apy_max_30d, w.apy_days_30d, w.tvl_avg_30d
FROM windows w
JOIN {q}.pools p ON p.pool_id = w.pool_id
CROSS JOIN as_of a
"""


def replace_pool_apy_stats(cur: psycopg2.extensions.cursor, schema_name: str, first: dt.date, last: dt.date) -> int:
    """Recompute ``pool_apy_stats`` as of the newest snapshot day after the days ``first``..``last`` were
    loaded; returns the pools written. Days outside the 30-day window ending on the newest day change
    nothing in it: when the table already holds that day, it is left as it is (not rewritten under the
    label of an old partition)."""
    q = quote_ident(schema_name)
    _lock(cur, schema_name, "pool_apy_stats")
    cur.execute(f"SELECT (SELECT max(snapshot_date) FROM {q}.pool_snapshots), "
                f"(SELECT max(as_of_date) FROM {q}.pool_apy_stats)")
    newest, stored = cur.fetchone()
    if newest is not None and stored == newest and last <= newest - dt.timedelta(days=30):
        return 0
    # DELETE rather than TRUNCATE: TRUNCATE would lock readers out until the transaction ends.
    cur.execute(f"DELETE FROM {q}.pool_apy_stats")
    cur.execute(_POOL_APY_STATS.format(q=q))
    return cur.rowcount
