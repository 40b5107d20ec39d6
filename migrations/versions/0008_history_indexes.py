"""Indexes led by the pool for replacing a re-fetched chart's points, and by the record key for
replacing what its earlier fetch set aside.

``pool_chart_points`` is keyed by (snapshot_date, pool_id), for the reads that fill a day; deleting one
pool's points by ``pool_id`` then scanned the whole table, so a chart backfill slowed down with every
chart it stored (quadratic in the points: at 4,000 pools x 1,460 days, 1.6 s per delete). The index on
``pool_id`` alone is small (B-tree deduplication keeps a pool's entries together: 42 MB for 5.8
million points, against 322 MB for the key) and turns the delete into a bitmap index scan (30 ms).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pool_chart_points_pool_id", "pool_chart_points", ["pool_id"])
    op.create_index("ix_rejects_asset_record_key", "rejects", ["asset", "record_key"])


def downgrade() -> None:
    op.drop_index("ix_rejects_asset_record_key", table_name="rejects")
    op.drop_index("ix_pool_chart_points_pool_id", table_name="pool_chart_points")
