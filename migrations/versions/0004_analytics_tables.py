"""Analytics as tables kept up to date by their assets, instead of views over every snapshot.

``chain_daily_stats`` and ``project_daily_stats`` were materialized views: every refresh re-aggregated
every snapshot ever stored (5 s a day at one year, growing). ``pool_latest`` was a plain view that
probed the primary key once per pool on every read (~150 ms at one year). ``pool_apy_stats`` was a
materialized view refreshed CONCURRENTLY, which computes the new contents and then diffs them against
the old. All four become tables that their assets maintain: the daily stats replace the run's days,
``pool_latest`` recomputes only the pools with a snapshot on those days, and ``pool_apy_stats`` is
replaced in one transaction (its 30-day window bounds the work). Readers see the previous rows until
the transaction commits. Their existing contents are computed here once. ``pool_apy_rolling`` (a view
read through the primary key) stays as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_FLOAT_METRICS = ("tvl_usd", "apy", "apy_base", "apy_reward", "apy_pct_1d", "apy_pct_7d", "apy_pct_30d",
                  "apy_base_7d", "apy_mean_30d", "apy_base_inception", "il_7d", "volume_usd_1d", "volume_usd_7d",
                  "mu", "sigma")


def _stats_columns() -> list[sa.Column]:
    return [
        sa.Column("pool_count", sa.BigInteger, nullable=False),
        sa.Column("total_tvl_usd", sa.Float),
        sa.Column("stablecoin_tvl_usd", sa.Float),
        sa.Column("mean_apy", sa.Float),
        sa.Column("median_apy", sa.Float),
        sa.Column("tvl_weighted_apy", sa.Float),
        sa.Column("max_apy", sa.Float),
        sa.Column("outlier_count", sa.BigInteger, nullable=False),
    ]


def _stats_select(key: str, extra_columns: str, join: str, group: str) -> str:
    return f"""
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
"""


_METRIC_LIST = ", ".join(f"s.{m}" for m in (*_FLOAT_METRICS, "count", "outlier", "predicted_class",
                                               "predicted_probability", "binned_confidence", "source"))
POOL_LATEST_FILL = f"""
INSERT INTO pool_latest
SELECT p.pool_id, p.chain, p.project, j.name, j.category,
       p.symbol, p.pool_meta, p.exposure, p.il_risk, p.stablecoin, p.underlying_tokens, p.reward_tokens,
       p.first_seen_date, p.last_seen_date, s.snapshot_date,
       s.snapshot_date = (SELECT max(snapshot_date) FROM pool_snapshots),
       {_METRIC_LIST}
FROM pools p
JOIN projects j ON j.slug = p.project
CROSS JOIN LATERAL (
    SELECT * FROM pool_snapshots x WHERE x.pool_id = p.pool_id ORDER BY x.snapshot_date DESC LIMIT 1
) s
"""


POOL_APY_STATS_SELECT = """
WITH as_of AS (SELECT max(snapshot_date) AS day FROM pool_snapshots),
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
    JOIN pool_snapshots s ON s.snapshot_date > a.day - 30 AND s.snapshot_date <= a.day
    GROUP BY s.pool_id
)
SELECT w.pool_id, p.chain, p.project, p.symbol, p.pool_meta, p.stablecoin, a.day AS as_of_date,
       w.apy, w.tvl_usd, w.apy_avg_7d, w.apy_stddev_7d, w.apy_days_7d, w.apy_avg_30d, w.apy_stddev_30d,
       w.apy_min_30d, w.apy_max_30d, w.apy_days_30d, w.tvl_avg_30d
FROM windows w
JOIN pools p ON p.pool_id = w.pool_id
CROSS JOIN as_of a
"""


def upgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW pool_apy_stats")
    op.execute("DROP MATERIALIZED VIEW chain_daily_stats")
    op.execute("DROP MATERIALIZED VIEW project_daily_stats")
    op.execute("DROP VIEW pool_latest")

    op.create_table(
        "chain_daily_stats",
        sa.Column("chain", sa.Text, primary_key=True),
        sa.Column("snapshot_date", sa.Date, primary_key=True),
        *_stats_columns(),
        sa.Index("ix_chain_daily_stats_snapshot_date", "snapshot_date"),
        comment="Per day per chain: pools, TVL, stablecoin TVL, mean, median, TVL-weighted and max APY, "
        "outliers. Each day's rows are replaced when the chain_daily_stats asset runs for it.",
    )
    op.execute("INSERT INTO chain_daily_stats (snapshot_date, chain, pool_count, total_tvl_usd, stablecoin_tvl_usd, "
               "mean_apy, median_apy, tvl_weighted_apy, max_apy, outlier_count)"
               + _stats_select("p.chain", "", "", "p.chain"))

    op.create_table(
        "project_daily_stats",
        sa.Column("project", sa.Text, primary_key=True),
        sa.Column("snapshot_date", sa.Date, primary_key=True),
        sa.Column("project_name", sa.Text),
        sa.Column("project_category", sa.Text),
        sa.Column("chain_count", sa.BigInteger, nullable=False),
        *_stats_columns(),
        sa.Index("ix_project_daily_stats_snapshot_date", "snapshot_date"),
        comment="Per day per project: pools, chains, TVL, stablecoin TVL, mean, median, TVL-weighted and max "
        "APY, outliers. Each day's rows are replaced when the project_daily_stats asset runs for it.",
    )
    op.execute("INSERT INTO project_daily_stats (snapshot_date, project, project_name, project_category, chain_count, "
               "pool_count, total_tvl_usd, stablecoin_tvl_usd, mean_apy, median_apy, tvl_weighted_apy, max_apy, "
               "outlier_count)"
               + _stats_select("j.slug", ", j.name, j.category, count(DISTINCT p.chain)",
                               "\nJOIN projects j ON j.slug = p.project", "j.slug"))

    op.create_table(
        "pool_latest",
        sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("project_name", sa.Text),
        sa.Column("project_category", sa.Text),
        sa.Column("symbol", sa.Text),
        sa.Column("pool_meta", sa.Text),
        sa.Column("exposure", sa.Text),
        sa.Column("il_risk", sa.Text),
        sa.Column("stablecoin", sa.Boolean),
        sa.Column("underlying_tokens", pg.ARRAY(sa.Text)),
        sa.Column("reward_tokens", pg.ARRAY(sa.Text)),
        sa.Column("first_seen_date", sa.Date, nullable=False),
        sa.Column("last_seen_date", sa.Date, nullable=False),
        sa.Column("snapshot_date", sa.Date, nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False),
        *(sa.Column(m, sa.Float) for m in _FLOAT_METRICS),
        sa.Column("count", sa.Integer),
        sa.Column("outlier", sa.Boolean),
        sa.Column("predicted_class", sa.Text),
        sa.Column("predicted_probability", sa.Float),
        sa.Column("binned_confidence", sa.Integer),
        sa.Column("source", sa.Text, nullable=False),
        sa.Index("ix_pool_latest_chain", "chain"),
        sa.Index("ix_pool_latest_project", "project"),
        comment="Each pool's newest snapshot with its pool and project attributes (is_current: the snapshot "
        "is of the newest day loaded). Kept up to date by the pool_latest asset.",
    )
    op.execute(POOL_LATEST_FILL)

    op.create_table(
        "pool_apy_stats",
        sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("chain", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("symbol", sa.Text),
        sa.Column("pool_meta", sa.Text),
        sa.Column("stablecoin", sa.Boolean),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("apy", sa.Float),
        sa.Column("tvl_usd", sa.Float),
        sa.Column("apy_avg_7d", sa.Float),
        sa.Column("apy_stddev_7d", sa.Float),
        sa.Column("apy_days_7d", sa.BigInteger, nullable=False),
        sa.Column("apy_avg_30d", sa.Float),
        sa.Column("apy_stddev_30d", sa.Float),
        sa.Column("apy_min_30d", sa.Float),
        sa.Column("apy_max_30d", sa.Float),
        sa.Column("apy_days_30d", sa.BigInteger, nullable=False),
        sa.Column("tvl_avg_30d", sa.Float),
        sa.Index("ix_pool_apy_stats_chain", "chain"),
        sa.Index("ix_pool_apy_stats_project", "project"),
        comment="Per pool, as of the newest snapshot day: APY mean, sample standard deviation and days over the "
        "last 7 and 30 days, 30-day APY range and mean TVL. Replaced by the pool_apy_stats asset.",
    )
    op.execute("INSERT INTO pool_apy_stats " + POOL_APY_STATS_SELECT)


def downgrade() -> None:
    op.drop_table("pool_apy_stats")
    op.drop_table("pool_latest")
    op.drop_table("project_daily_stats")
    op.drop_table("chain_daily_stats")
    # The views of 0003, as that revision wrote them.
    spec = importlib.util.spec_from_file_location("_rev_0003", Path(__file__).with_name("0003_analytics.py"))
    rev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rev)
    op.execute(rev.POOL_LATEST)
    op.execute(rev.CHAIN_DAILY_STATS)
    op.execute("CREATE UNIQUE INDEX ux_chain_daily_stats ON chain_daily_stats (chain, snapshot_date)")
    op.execute("CREATE INDEX ix_chain_daily_stats_snapshot_date ON chain_daily_stats (snapshot_date)")
    op.execute(rev.PROJECT_DAILY_STATS)
    op.execute("CREATE UNIQUE INDEX ux_project_daily_stats ON project_daily_stats (project, snapshot_date)")
    op.execute("CREATE INDEX ix_project_daily_stats_snapshot_date ON project_daily_stats (snapshot_date)")
    op.execute(rev.POOL_APY_STATS)
    op.execute("CREATE UNIQUE INDEX ux_pool_apy_stats ON pool_apy_stats (pool_id)")
    op.execute("CREATE INDEX ix_pool_apy_stats_chain ON pool_apy_stats (chain)")
    op.execute("CREATE INDEX ix_pool_apy_stats_project ON pool_apy_stats (project)")
    for (kind, name), comment in rev.COMMENTS.items():
        if name in ("pool_latest", "chain_daily_stats", "project_daily_stats", "pool_apy_stats"):
            quoted = comment.replace("'", "''")
            op.execute(f"COMMENT ON {kind} {name} IS '{quoted}'")
