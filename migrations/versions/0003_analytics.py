"""Analytics: ready-made views over the warehouse tables.

- ``pool_latest`` (view): each pool's newest snapshot with its pool and project attributes.
- ``pool_apy_rolling`` (view): every snapshot with the pool's 7- and 30-day APY mean and volatility.
- ``chain_daily_stats``, ``project_daily_stats`` (materialized views): TVL and APY statistics per day
  per chain / per project.
- ``pool_apy_stats`` (materialized view): each pool's 7- and 30-day APY mean, volatility and range as
  of the newest snapshot day.

The two plain views stay fast on a year of snapshots because every read goes through the primary key
(pool_id, snapshot_date): the latest row of a pool is one backward index probe, and a filter on pool_id
is pushed below the window functions. The aggregates over all pools are materialized; the analytics
assets refresh them (CONCURRENTLY, so readers are never blocked) after each load.

The SQL is kept here, written out, rather than imported, because a schema history must not change
when code does; ``llama_pipeline/defs/analytics/assets.py`` describes the same objects for the assets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_METRICS = """
    s.tvl_usd, s.apy, s.apy_base, s.apy_reward, s.apy_pct_1d, s.apy_pct_7d, s.apy_pct_30d, s.apy_base_7d,
    s.apy_mean_30d, s.apy_base_inception, s.il_7d, s.volume_usd_1d, s.volume_usd_7d, s.mu, s.sigma,
    s.count, s.outlier, s.predicted_class, s.predicted_probability, s.binned_confidence, s.source"""

POOL_LATEST = f"""
CREATE VIEW pool_latest AS
SELECT p.pool_id, p.chain, p.project, j.name AS project_name, j.category AS project_category,
       p.symbol, p.pool_meta, p.exposure, p.il_risk, p.stablecoin, p.underlying_tokens, p.reward_tokens,
       p.first_seen_date, p.last_seen_date,
       s.snapshot_date,
       s.snapshot_date = (SELECT max(snapshot_date) FROM pool_snapshots) AS is_current,
       {_METRICS}
FROM pools p
JOIN projects j ON j.slug = p.project
CROSS JOIN LATERAL (
    SELECT * FROM pool_snapshots x WHERE x.pool_id = p.pool_id ORDER BY x.snapshot_date DESC LIMIT 1
) s
"""

POOL_APY_ROLLING = """
CREATE VIEW pool_apy_rolling AS
SELECT pool_id, snapshot_date, tvl_usd, apy,
       avg(apy) OVER w7 AS apy_avg_7d,
       stddev_samp(apy) OVER w7 AS apy_stddev_7d,
       count(apy) OVER w7 AS apy_days_7d,
       avg(apy) OVER w30 AS apy_avg_30d,
       stddev_samp(apy) OVER w30 AS apy_stddev_30d,
       count(apy) OVER w30 AS apy_days_30d
FROM pool_snapshots
WINDOW w7 AS (PARTITION BY pool_id ORDER BY snapshot_date RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW),
       w30 AS (PARTITION BY pool_id ORDER BY snapshot_date RANGE BETWEEN INTERVAL '29 days' PRECEDING AND CURRENT ROW)
"""


def _daily_stats(name: str, key: str, extra_columns: str, join: str, group: str) -> str:
    return f"""
CREATE MATERIALIZED VIEW {name} AS
SELECT s.snapshot_date, {key}{extra_columns},
       count(*) AS pool_count,
       sum(s.tvl_usd) AS total_tvl_usd,
       sum(s.tvl_usd) FILTER (WHERE p.stablecoin) AS stablecoin_tvl_usd,
       avg(s.apy) AS mean_apy,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s.apy) AS median_apy,
       sum(s.apy * s.tvl_usd) / nullif(sum(s.tvl_usd) FILTER (WHERE s.apy IS NOT NULL), 0) AS tvl_weighted_apy,
       max(s.apy) AS max_apy,
       count(*) FILTER (WHERE s.outlier) AS outlier_count
FROM pool_snapshots s
JOIN pools p ON p.pool_id = s.pool_id{join}
GROUP BY s.snapshot_date, {group}
WITH DATA
"""


CHAIN_DAILY_STATS = _daily_stats("chain_daily_stats", "p.chain", "", "", "p.chain")
PROJECT_DAILY_STATS = _daily_stats(
    "project_daily_stats", "j.slug AS project", ", j.name AS project_name, j.category AS project_category,\n"
    "       count(DISTINCT p.chain) AS chain_count",
    "\nJOIN projects j ON j.slug = p.project", "j.slug",
)

POOL_APY_STATS = """
CREATE MATERIALIZED VIEW pool_apy_stats AS
WITH as_of AS (SELECT max(snapshot_date) AS day FROM pool_snapshots)
SELECT s.pool_id, p.chain, p.project, p.symbol, p.pool_meta, p.stablecoin,
       a.day AS as_of_date,
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
JOIN pool_snapshots s ON s.snapshot_date > a.day - 30 AND s.snapshot_date <= a.day
JOIN pools p ON p.pool_id = s.pool_id
GROUP BY s.pool_id, p.chain, p.project, p.symbol, p.pool_meta, p.stablecoin, a.day
WITH DATA
"""

COMMENTS = {
    ("VIEW", "pool_latest"): "Each pool's newest snapshot with its pool and project attributes "
    "(is_current: the snapshot is of the newest day loaded).",
    ("VIEW", "pool_apy_rolling"): "Every snapshot with its pool's APY mean, sample standard deviation and "
    "number of days over the 7 and 30 calendar days ending that day. Filter on pool_id to stay fast.",
    ("MATERIALIZED VIEW", "chain_daily_stats"): "Per day per chain: pools, TVL, stablecoin TVL, mean, median, "
    "TVL-weighted and max APY, outliers. Refreshed by the chain_daily_stats asset.",
    ("MATERIALIZED VIEW", "project_daily_stats"): "Per day per project: pools, chains, TVL, stablecoin TVL, "
    "mean, median, TVL-weighted and max APY, outliers. Refreshed by the project_daily_stats asset.",
    ("MATERIALIZED VIEW", "pool_apy_stats"): "Per pool, as of the newest snapshot day: APY mean, sample "
    "standard deviation and days over the last 7 and 30 days, 30-day APY range and mean TVL. Refreshed by "
    "the pool_apy_stats asset.",
}


def upgrade() -> None:
    op.execute(POOL_LATEST)
    op.execute(POOL_APY_ROLLING)
    op.execute(CHAIN_DAILY_STATS)
    # A unique index lets REFRESH ... CONCURRENTLY keep the view readable while it is rebuilt.
    op.execute("CREATE UNIQUE INDEX ux_chain_daily_stats ON chain_daily_stats (chain, snapshot_date)")
    op.execute("CREATE INDEX ix_chain_daily_stats_snapshot_date ON chain_daily_stats (snapshot_date)")
    op.execute(PROJECT_DAILY_STATS)
    op.execute("CREATE UNIQUE INDEX ux_project_daily_stats ON project_daily_stats (project, snapshot_date)")
    op.execute("CREATE INDEX ix_project_daily_stats_snapshot_date ON project_daily_stats (snapshot_date)")
    op.execute(POOL_APY_STATS)
    op.execute("CREATE UNIQUE INDEX ux_pool_apy_stats ON pool_apy_stats (pool_id)")
    op.execute("CREATE INDEX ix_pool_apy_stats_chain ON pool_apy_stats (chain)")
    op.execute("CREATE INDEX ix_pool_apy_stats_project ON pool_apy_stats (project)")
    for (kind, name), comment in COMMENTS.items():
        quoted = comment.replace("'", "''")
        op.execute(f"COMMENT ON {kind} {name} IS '{quoted}'")


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW IF EXISTS pool_apy_stats")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS project_daily_stats")
    op.execute("DROP MATERIALIZED VIEW IF EXISTS chain_daily_stats")
    op.execute("DROP VIEW IF EXISTS pool_apy_rolling")
    op.execute("DROP VIEW IF EXISTS pool_latest")
