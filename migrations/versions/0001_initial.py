"""Initial warehouse: raw payloads, chains, projects, pools, pool snapshots and rejects.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TEXT_ARRAY = pg.ARRAY(sa.Text)


def _seen() -> list[sa.Column]:
    return [
        sa.Column("first_seen_date", sa.Date, nullable=False, comment="First snapshot day this row was seen."),
        sa.Column("last_seen_date", sa.Date, nullable=False, comment="Last snapshot day this row was seen."),
    ]


def upgrade() -> None:
    op.create_table(
        "raw_payloads",
        sa.Column("endpoint", sa.Text, primary_key=True, comment="Which payload: 'pools' or 'protocols'."),
        sa.Column("partition_date", sa.Date, primary_key=True, comment="UTC day the payload describes."),
        sa.Column("url", sa.Text, nullable=False, comment="URL fetched (credentials removed)."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
        sa.Column("http_status", sa.Integer, nullable=False, comment="HTTP status of the response."),
        sa.Column("content_type", sa.Text, comment="Content-Type header of the response."),
        sa.Column("compression", sa.Text, nullable=False, comment="How body is compressed: 'zstd' (or 'gzip')."),
        sa.Column("body", sa.LargeBinary, nullable=False, comment="The response body, byte for byte, compressed."),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="Uncompressed body size in bytes."),
        sa.Column("sha256", sa.Text, nullable=False, comment="SHA-256 of the uncompressed body."),
        sa.Column("record_count", sa.Integer, nullable=False, comment="Records in the payload's list."),
        comment="Every HTTP payload the pipeline fetched, one per endpoint per day, kept losslessly.",
    )
    # The body is compressed by the pipeline already; a second pass by TOAST would only cost time.
    op.execute("ALTER TABLE raw_payloads ALTER COLUMN body SET STORAGE EXTERNAL")

    op.create_table(
        "chains",
        sa.Column("name", sa.Text, primary_key=True, comment="Canonical chain name (as /pools spells it)."),
        sa.Column("aliases", TEXT_ARRAY, nullable=False, comment="Every spelling seen for this chain."),
        *_seen(),
        comment="One row per network, with the spellings of both endpoints folded together.",
    )

    op.create_table(
        "projects",
        sa.Column("slug", sa.Text, primary_key=True, comment="DeFiLlama protocol slug; pools.project joins here."),
        sa.Column("name", sa.Text, comment="Display name."),
        sa.Column("defillama_id", sa.Text, comment="DeFiLlama's protocol id."),
        sa.Column("symbol", sa.Text, comment="Governance token symbol (NULL when DeFiLlama says '-')."),
        sa.Column("category", sa.Text, comment="Protocol category (Dexs, Lending, ...)."),
        sa.Column("chain", sa.Text, comment="Main chain label ('Multi-Chain' when several), canonical name."),
        sa.Column("chains", TEXT_ARRAY, comment="Canonical names of the chains it is deployed on."),
        sa.Column("audits", sa.Integer, comment="Number of audits."),
        sa.Column("audit_note", sa.Text),
        sa.Column("audit_links", TEXT_ARRAY),
        sa.Column("parent_protocol", sa.Text, comment="Slug of the parent protocol ('parent#' removed)."),
        sa.Column("forked_from", TEXT_ARRAY),
        sa.Column("oracles", TEXT_ARRAY),
        sa.Column("url", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("logo", sa.Text),
        sa.Column("twitter", sa.Text),
        sa.Column("github", TEXT_ARRAY),
        sa.Column("gecko_id", sa.Text),
        sa.Column("cmc_id", sa.Text),
        sa.Column("address", sa.Text, comment="Token address as sent (may carry a 'chain:' prefix)."),
        sa.Column("module", sa.Text, comment="DeFiLlama adapter module."),
        sa.Column("methodology", sa.Text),
        sa.Column("listed_at", sa.DateTime(timezone=True), comment="When DeFiLlama listed it."),
        sa.Column("dead_from", sa.Date, comment="Day the protocol was marked dead."),
        sa.Column("tvl", sa.Float, comment="TVL in USD."),
        sa.Column("change_1h", sa.Float, comment="TVL change over 1 hour, percent."),
        sa.Column("change_1d", sa.Float, comment="TVL change over 1 day, percent."),
        sa.Column("change_7d", sa.Float, comment="TVL change over 7 days, percent."),
        sa.Column("mcap", sa.Float, comment="Market cap in USD."),
        sa.Column("staking", sa.Float, comment="Staking TVL in USD."),
        sa.Column("pool2", sa.Float, comment="Pool2 TVL in USD."),
        sa.Column("chain_tvls", pg.JSONB, comment="TVL per chain, keys as sent (with -staking, -pool2 ... suffixes)."),
        sa.Column("listed_in_protocols", sa.Boolean, nullable=False, comment="False for a slug only pools name."),
        sa.Column("extra", pg.JSONB, comment="Every other field of the protocol record, as sent."),
        *_seen(),
        comment="Every DeFiLlama protocol keyed by slug, plus every project a pool names.",
    )

    op.create_table(
        "pools",
        sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment="DeFiLlama pool id (stable UUID)."),
        sa.Column("chain", sa.Text, sa.ForeignKey("chains.name"), nullable=False, comment="Canonical chain name."),
        sa.Column("project", sa.Text, sa.ForeignKey("projects.slug"), nullable=False, comment="Project slug."),
        sa.Column("symbol", sa.Text, comment="Pool symbol, e.g. 'USDC-WETH'."),
        sa.Column("pool_meta", sa.Text, comment="Free-text qualifier that tells apart pools sharing a symbol."),
        sa.Column("exposure", sa.Text, comment="'single' or 'multi'."),
        sa.Column("il_risk", sa.Text, comment="Impermanent-loss risk: 'yes' or 'no'."),
        sa.Column("stablecoin", sa.Boolean),
        sa.Column("underlying_tokens", TEXT_ARRAY),
        sa.Column("reward_tokens", TEXT_ARRAY),
        *_seen(),
        comment="One row per yield pool, attributes as of the newest day seen.",
    )
    op.create_index("ix_pools_chain", "pools", ["chain"])
    op.create_index("ix_pools_project", "pools", ["project"])

    op.create_table(
        "pool_snapshots",
        sa.Column("pool_id", pg.UUID(as_uuid=False), sa.ForeignKey("pools.pool_id"), primary_key=True),
        sa.Column("snapshot_date", sa.Date, primary_key=True, comment="UTC day the snapshot describes."),
        sa.Column("tvl_usd", sa.Float),
        sa.Column("apy", sa.Float),
        sa.Column("apy_base", sa.Float),
        sa.Column("apy_reward", sa.Float),
        sa.Column("apy_pct_1d", sa.Float),
        sa.Column("apy_pct_7d", sa.Float),
        sa.Column("apy_pct_30d", sa.Float),
        sa.Column("apy_base_7d", sa.Float),
        sa.Column("apy_mean_30d", sa.Float),
        sa.Column("apy_base_inception", sa.Float),
        sa.Column("il_7d", sa.Float),
        sa.Column("volume_usd_1d", sa.Float),
        sa.Column("volume_usd_7d", sa.Float),
        sa.Column("mu", sa.Float),
        sa.Column("sigma", sa.Float),
        sa.Column("count", sa.Integer),
        sa.Column("outlier", sa.Boolean),
        sa.Column("predicted_class", sa.Text),
        sa.Column("predicted_probability", sa.Float),
        sa.Column("binned_confidence", sa.Integer),
        sa.Column("source", sa.Text, nullable=False, comment="Payload that filled the row ('pools')."),
        sa.Column("extra", pg.JSONB, comment="Fields the API added that have no column yet, as sent."),
        comment="One row per pool per day with every daily metric of /pools.",
    )
    op.create_index("ix_pool_snapshots_snapshot_date", "pool_snapshots", ["snapshot_date"])

    op.create_table(
        "rejects",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("asset", sa.Text, nullable=False, comment="Asset that set the record aside."),
        sa.Column("partition_date", sa.Date, nullable=False, comment="Day of the payload."),
        sa.Column("record_index", sa.Integer, nullable=False, comment="Position of the record in the payload."),
        sa.Column("record_key", sa.Text, comment="The record's id, when it had a usable one."),
        sa.Column("reason", sa.Text, nullable=False, comment="Why it was set aside."),
        sa.Column("record", sa.Text, nullable=False, comment="The record as JSON text (ASCII-escaped)."),
        comment="Records that could not be loaded, with the reason, per asset and day.",
    )
    op.create_index("ix_rejects_asset_partition_date", "rejects", ["asset", "partition_date"])


def downgrade() -> None:
    op.drop_table("rejects")
    op.drop_table("pool_snapshots")
    op.drop_table("pools")
    op.drop_table("projects")
    op.drop_table("chains")
    op.drop_table("raw_payloads")
