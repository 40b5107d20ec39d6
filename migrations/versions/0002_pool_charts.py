"""Pool chart history: each pool's /chart payload, archived losslessly, and its daily points.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_pool_charts",
        sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment="Pool whose history this is."),
        sa.Column("url", sa.Text, nullable=False, comment="URL fetched."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
        sa.Column("http_status", sa.Integer, comment="HTTP status (NULL when no response came)."),
        sa.Column("error", sa.Text, comment="Why the chart could not be used; NULL when it could."),
        sa.Column("body", sa.LargeBinary, comment="The response body, byte for byte, gzip-compressed."),
        sa.Column("size_bytes", sa.BigInteger, comment="Uncompressed body size in bytes."),
        sa.Column("sha256", sa.Text, comment="SHA-256 of the uncompressed body."),
        sa.Column("point_count", sa.Integer, comment="Daily points in the chart."),
        sa.Column("first_day", sa.Date, comment="First day the chart covers."),
        sa.Column("last_day", sa.Date, comment="Last day the chart covers."),
        comment="The latest /chart/{pool} payload of each pool, kept losslessly, with failures and reasons.",
    )
    op.execute("ALTER TABLE raw_pool_charts ALTER COLUMN body SET STORAGE EXTERNAL")

    op.create_table(
        "pool_chart_points",
        sa.Column("snapshot_date", sa.Date, primary_key=True, comment="UTC day of the point (the day's last)."),
        sa.Column("pool_id", pg.UUID(as_uuid=False), primary_key=True, comment="Pool the point belongs to."),
        sa.Column("tvl_usd", sa.Float),
        sa.Column("apy", sa.Float),
        sa.Column("apy_base", sa.Float),
        sa.Column("apy_reward", sa.Float),
        sa.Column("il_7d", sa.Float),
        sa.Column("apy_base_7d", sa.Float),
        sa.Column("price_per_share", sa.Float),
        comment="Each stored chart's daily points, one row per pool per day, for filling past snapshots.",
    )


    op.alter_column(
        "pool_snapshots", "source", existing_type=sa.Text, existing_nullable=False,
        comment="Payload that filled the row: 'pools' (/pools) or 'chart' (/chart history).",
    )


def downgrade() -> None:
    op.alter_column(
        "pool_snapshots", "source", existing_type=sa.Text, existing_nullable=False,
        comment="Payload that filled the row ('pools').",
    )
    op.drop_table("pool_chart_points")
    op.drop_table("raw_pool_charts")
