"""The tables of the datasets that share the yields' dimensions (migration 0007): lending rates, chain
TVL, protocol TVL, project renames, and the archive of their history responses.

They live in ``schema.metadata`` with the yields' tables (``schema`` imports this module at its end), so
the IO manager, the README's table reference and the migration test see one data contract.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from llama_pipeline.schema import TEXT_ARRAY, metadata

# protocol_tvl_daily.chain of the protocol's total (its ``tvl`` series) and of its cross-chain totals
# (``staking``, ``borrowed`` ...): no chain is spelt with parentheses, so it cannot collide with one.
TOTAL_CHAIN = "(total)"

LEND_BORROW_METRICS: dict[str, tuple[str, sa.types.TypeEngine, str]] = {
    # column: (API field, type, meaning)
    "apy_base_borrow": ("apyBaseBorrow", sa.Float(), "Base borrow APY, percent (apyBaseBorrow)."),
    "apy_reward_borrow": ("apyRewardBorrow", sa.Float(), "Reward APY paid to borrowers, percent (apyRewardBorrow)."),
    "total_supply_usd": ("totalSupplyUsd", sa.Float(), "Total supplied, USD (totalSupplyUsd)."),
    "total_borrow_usd": ("totalBorrowUsd", sa.Float(), "Total borrowed, USD (totalBorrowUsd)."),
    "debt_ceiling_usd": ("debtCeilingUsd", sa.Float(), "Debt ceiling, USD (debtCeilingUsd); NULL when none."),
    "ltv": ("ltv", sa.Float(), "Maximum loan-to-value, 0..1 (ltv)."),
    "borrowable": ("borrowable", sa.Boolean(), "Whether the asset can be borrowed (borrowable)."),
    "minted_coin": ("mintedCoin", sa.Text(), "Coin minted when borrowing, e.g. GHO (mintedCoin)."),
    "borrow_factor": ("borrowFactor", sa.Float(), "Borrow factor (borrowFactor)."),
}

lend_borrow_snapshots = sa.Table(
    "lend_borrow_snapshots",
    metadata,
    sa.Column("pool_id", pg.UUID(as_uuid=False), sa.ForeignKey("pools.pool_id"), primary_key=True,
              comment="DeFiLlama pool id (pool), the same id as /pools."),
    sa.Column("snapshot_date", sa.Date, primary_key=True, comment="UTC day the snapshot describes."),
    *(sa.Column(name, type_, comment=meaning) for name, (_, type_, meaning) in LEND_BORROW_METRICS.items()),
    sa.Column("reward_tokens", TEXT_ARRAY,
              comment="Reward tokens of the lending record (rewardTokens), only where they differ from the pool's."),
    sa.Column("underlying_tokens", TEXT_ARRAY,
              comment="Underlying tokens of the lending record (underlyingTokens), only where they differ from the "
              "pool's."),
    sa.Column("extra", pg.JSONB, comment="Fields the API added that have no column yet, and _invalid_fields."),
    sa.Column("source", sa.Text, nullable=False, server_default="lend_borrow",
              comment="What filled the row: 'lend_borrow' (/lendBorrow) or 'chart' (/chartLendBorrow history, "
              "for days without a payload; its columns are the borrow side and the amounts, the rest NULL)."),
    sa.Index("ix_lend_borrow_snapshots_snapshot_date", "snapshot_date"),
    comment="One row per lending pool per day from /lendBorrow: borrow rates, supply, borrow, limits.",
)

chain_tvl_daily = sa.Table(
    "chain_tvl_daily",
    metadata,
    sa.Column("chain", sa.Text, sa.ForeignKey("chains.name"), primary_key=True, comment="Canonical chain name."),
    sa.Column("day", sa.Date, primary_key=True, comment="UTC day of the point (date, 00:00 UTC)."),
    sa.Column("tvl_usd", sa.Float, comment="The chain's TVL, USD (tvl); the newest day is DeFiLlama's live value."),
    sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the point was fetched."),
    sa.Index("ix_chain_tvl_daily_day", "day"),
    comment="Every day of each chain's TVL from /v2/historicalChainTvl/{chain}; a re-fetch upserts.",
)

protocol_tvl_daily = sa.Table(
    "protocol_tvl_daily",
    metadata,
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
    sa.Index("ix_protocol_tvl_daily_day", "day"),
    comment="Each selected protocol's daily TVL per chain and in total from /protocol/{slug}; a re-fetch upserts.",
)

project_renames = sa.Table(
    "project_renames",
    metadata,
    sa.Column("old_slug", sa.Text, primary_key=True, comment="The slug the pools were listed under before."),
    sa.Column("new_slug", sa.Text, primary_key=True, comment="The slug the same pool ids arrived under."),
    sa.Column("detected_on", sa.Date, nullable=False, comment="First day the pools arrived under new_slug."),
    sa.Column("pools_moved", sa.Integer, nullable=False, comment="Pool ids that moved on detected_on."),
    comment="Project slugs DeFiLlama renamed in place: pool ids that moved from a slug that left "
    "/protocols to a new one.",
)

raw_series = sa.Table(
    "raw_series",
    metadata,
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
    comment="The latest history response of each chain and protocol, kept losslessly, with failures and reasons.",
)

CHAIN_METADATA_COLUMNS = ("gecko_id", "token_symbol", "cmc_id", "chain_id")
