"""Datasets beside the yields: lending rates, chains' ids, chain and protocol TVL history, project
renames, and the archive of history responses; a view that follows projects across renames.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TEXT_ARRAY = pg.ARRAY(sa.Text)

# Each slug with the slug it is known by now, following renames to their end (a -> b -> c gives a -> c);
# a slug never renamed maps to itself. The depth bound stops a rename cycle (b renamed back to a).
PROJECT_CURRENT_SLUG = """
CREATE VIEW project_current_slug AS
WITH RECURSIVE walk(slug, current_slug, depth) AS (
    SELECT slug, slug, 0 FROM projects
    UNION ALL
    SELECT w.slug, r.new_slug, w.depth + 1
    FROM walk w JOIN project_renames r ON r.old_slug = w.current_slug
    WHERE w.depth < 20
)
SELECT DISTINCT ON (slug) slug, current_slug FROM walk ORDER BY slug, depth DESC
"""

PROJECT_DAILY_SERIES = """
CREATE VIEW project_daily_series AS
SELECT m.current_slug AS project, s.project AS slug_on_day, s.snapshot_date, s.project_name, s.project_category,
       s.chain_count, s.pool_count, s.total_tvl_usd, s.stablecoin_tvl_usd, s.mean_apy, s.median_apy,
       s.tvl_weighted_apy, s.max_apy, s.outlier_count
FROM project_daily_stats s JOIN project_current_slug m ON m.slug = s.project
"""


def upgrade() -> None:
    for name, type_, comment in (
        ("gecko_id", sa.Text, "CoinGecko id of the chain's token (gecko_id, /v2/chains)."),
        ("token_symbol", sa.Text, "Symbol of the chain's token (tokenSymbol, /v2/chains)."),
        ("cmc_id", sa.Text, "CoinMarketCap id (cmcId, /v2/chains)."),
        ("chain_id", sa.BigInteger, "EVM chain id (chainId, /v2/chains); NULL for other chains."),
    ):
        op.add_column("chains", sa.Column(name, type_, comment=comment))
    for table in ("raw_payloads", "raw_payload_quarantine"):
        op.alter_column(table, "endpoint", existing_type=sa.Text, existing_nullable=False,
                        comment="Which payload: 'pools', 'protocols', 'lend_borrow' or 'chain_list'.")

    op.create_table(
        "lend_borrow_snapshots",
        sa.Column("pool_id", pg.UUID(as_uuid=False), sa.ForeignKey("pools.pool_id"), primary_key=True,
                  comment="DeFiLlama pool id (pool), the same id as /pools."),
        sa.Column("snapshot_date", sa.Date, primary_key=True, comment="UTC day the snapshot describes."),
        sa.Column("apy_base_borrow", sa.Float, comment="Base borrow APY, percent (apyBaseBorrow)."),
        sa.Column("apy_reward_borrow", sa.Float, comment="Reward APY paid to borrowers, percent (apyRewardBorrow)."),
        sa.Column("total_supply_usd", sa.Float, comment="Total supplied, USD (totalSupplyUsd)."),
        sa.Column("total_borrow_usd", sa.Float, comment="Total borrowed, USD (totalBorrowUsd)."),
        sa.Column("debt_ceiling_usd", sa.Float, comment="Debt ceiling, USD (debtCeilingUsd); NULL when none."),
        sa.Column("ltv", sa.Float, comment="Maximum loan-to-value, 0..1 (ltv)."),
        sa.Column("borrowable", sa.Boolean, comment="Whether the asset can be borrowed (borrowable)."),
        sa.Column("minted_coin", sa.Text, comment="Coin minted when borrowing, e.g. GHO (mintedCoin)."),
        sa.Column("borrow_factor", sa.Float, comment="Borrow factor (borrowFactor)."),
        sa.Column("reward_tokens", TEXT_ARRAY, comment="Reward tokens of the lending record (rewardTokens), only "
                  "where they differ from the pool's."),
        sa.Column("underlying_tokens", TEXT_ARRAY, comment="Underlying tokens of the lending record "
                  "(underlyingTokens), only where they differ from the pool's."),
        sa.Column("extra", pg.JSONB, comment="Fields the API added that have no column yet, and _invalid_fields."),
        sa.Column("source", sa.Text, nullable=False, server_default="lend_borrow",
                  comment="What filled the row: 'lend_borrow' (/lendBorrow) or 'chart' (/chartLendBorrow history, "
                  "for days without a payload; its columns are the borrow side and the amounts, the rest NULL)."),
        comment="One row per lending pool per day from /lendBorrow: borrow rates, supply, borrow, limits.",
    )
    op.create_index("ix_lend_borrow_snapshots_snapshot_date", "lend_borrow_snapshots", ["snapshot_date"])

    op.create_table(
        "chain_tvl_daily",
        sa.Column("chain", sa.Text, sa.ForeignKey("chains.name"), primary_key=True, comment="Canonical chain name."),
        sa.Column("day", sa.Date, primary_key=True, comment="UTC day of the point (date, 00:00 UTC)."),
        sa.Column("tvl_usd", sa.Float,
                  comment="The chain's TVL, USD (tvl); the newest day is DeFiLlama's live value."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the point was fetched."),
        comment="Every day of each chain's TVL from /v2/historicalChainTvl/{chain}; a re-fetch upserts.",
    )
    op.create_index("ix_chain_tvl_daily_day", "chain_tvl_daily", ["day"])

    op.create_table(
        "protocol_tvl_daily",
        sa.Column("slug", sa.Text, sa.ForeignKey("projects.slug"), primary_key=True, comment="Protocol slug."),
        sa.Column("chain", sa.Text, primary_key=True,
                  comment="Series key: a canonical chain, '(total)' for the protocol's total, or either with the "
                  "suffix of a -staking/-borrowed/-pool2... series ('Ethereum-staking', '(total)-borrowed')."),
        sa.Column("day", sa.Date, primary_key=True, comment="UTC day of the point."),
        sa.Column("base_chain", sa.Text, comment="The canonical chain of the series; NULL for '(total)' series."),
        sa.Column("tvl_kind", sa.Text, nullable=False,
                  comment="'tvl' for plain TVL, else the suffix as sent in lower case ('staking', 'borrowed' ...)."),
        sa.Column("tvl_usd", sa.Float, comment="TVL, USD (totalLiquidityUSD)."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the point was fetched."),
        comment="Each selected protocol's daily TVL per chain and in total from /protocol/{slug}; a re-fetch "
        "upserts.",
    )
    op.create_index("ix_protocol_tvl_daily_day", "protocol_tvl_daily", ["day"])

    op.create_table(
        "project_renames",
        sa.Column("old_slug", sa.Text, primary_key=True, comment="The slug the pools were listed under before."),
        sa.Column("new_slug", sa.Text, primary_key=True, comment="The slug the same pool ids arrived under."),
        sa.Column("detected_on", sa.Date, nullable=False, comment="First day the pools arrived under new_slug."),
        sa.Column("pools_moved", sa.Integer, nullable=False, comment="Pool ids that moved on detected_on."),
        comment="Project slugs DeFiLlama renamed in place: pool ids that moved from a slug that left "
        "/protocols to a new one.",
    )

    op.create_table(
        "raw_series",
        sa.Column("endpoint", sa.Text, primary_key=True,
                  comment="Which history: 'chain_tvl' (/v2/historicalChainTvl), 'protocol' (/protocol) or "
                  "'lend_borrow_chart' (/chartLendBorrow)."),
        sa.Column("series_key", sa.Text, primary_key=True, comment="The chain, protocol slug or pool id fetched."),
        sa.Column("url", sa.Text, nullable=False, comment="URL fetched (API key and credentials removed)."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
        sa.Column("http_status", sa.Integer, comment="HTTP status (NULL when no response came)."),
        sa.Column("error", sa.Text, comment="Why the response could not be used; NULL when it could."),
        sa.Column("compression", sa.Text, comment="How body is compressed: 'zstd'."),
        sa.Column("body", sa.LargeBinary, comment="The response body, byte for byte, compressed."),
        sa.Column("size_bytes", sa.BigInteger, comment="Uncompressed body size in bytes."),
        sa.Column("sha256", sa.Text, comment="SHA-256 of the uncompressed body."),
        sa.Column("point_count", sa.Integer, comment="Daily points loaded from it."),
        sa.Column("rejected_points", sa.Integer, comment="Points set aside (in rejects) with their reason."),
        sa.Column("first_day", sa.Date, comment="First day it covers."),
        sa.Column("last_day", sa.Date, comment="Last day it covers."),
        comment="The latest history response of each chain and protocol, kept losslessly, with failures and "
        "reasons.",
    )
    op.execute("ALTER TABLE raw_series ALTER COLUMN body SET STORAGE EXTERNAL")
    op.execute(PROJECT_CURRENT_SLUG)
    op.execute(PROJECT_DAILY_SERIES)


def downgrade() -> None:
    op.execute("DROP VIEW project_daily_series")
    op.execute("DROP VIEW project_current_slug")
    for table in ("raw_series", "project_renames", "protocol_tvl_daily", "chain_tvl_daily", "lend_borrow_snapshots"):
        op.drop_table(table)
    for table in ("raw_payloads", "raw_payload_quarantine"):
        op.alter_column(table, "endpoint", existing_type=sa.Text, existing_nullable=False,
                        comment="Which payload: 'pools' or 'protocols'.")
    for name in ("chain_id", "cmc_id", "token_symbol", "gecko_id"):
        op.drop_column("chains", name)
