"""Chart points keyed by the pool first, and rejects indexed by their record key: a chart backfill
that stays as fast at its last chart as at its first.

``pool_chart_points`` was keyed by (snapshot_date, pool_id), for the reads that fill a day. A backfill
writes it chart by chart (one pool, every day of its life), so each batch of 50 charts inserted into
every part of that key and, once the key outgrew shared memory, read and wrote nearly all of it
(57,500 blocks read and as many written per batch at 6.1 million points); deleting a re-fetched pool's points by ``pool_id``
scanned the whole table (1.6 s at 5.8 million points). Both grow with the points stored: the backfill
was quadratic. Keyed (pool_id, snapshot_date), a chart's points are one run of the key, its delete an
index range; the index on ``snapshot_date`` (B-tree deduplication: a day's entries are one posting
list, new ones at its end) takes one page per day per batch (1,650 blocks read at 7.3 million points).

A re-fetched chart or series also replaces what its earlier fetch set aside in ``rejects``, found by
(asset, record_key): an index of its own instead of scanning the asset's rows.

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
    op.drop_constraint("pool_chart_points_pkey", "pool_chart_points", type_="primary")
    op.create_primary_key("pool_chart_points_pkey", "pool_chart_points", ["pool_id", "snapshot_date"])
    op.create_index("ix_pool_chart_points_snapshot_date", "pool_chart_points", ["snapshot_date"])
    op.create_index("ix_rejects_asset_record_key", "rejects", ["asset", "record_key"])


def downgrade() -> None:
    op.drop_index("ix_rejects_asset_record_key", table_name="rejects")
    op.drop_index("ix_pool_chart_points_snapshot_date", table_name="pool_chart_points")
    op.drop_constraint("pool_chart_points_pkey", "pool_chart_points", type_="primary")
    op.create_primary_key("pool_chart_points_pkey", "pool_chart_points", ["snapshot_date", "pool_id"])
