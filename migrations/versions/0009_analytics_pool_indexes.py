"""The one-row-per-pool analytics tables keep their primary key only: no index on chain or project.

``pool_latest`` and ``pool_apy_stats`` hold one row per pool (17,000 today) and are rewritten after every
load: ``pool_apy_stats`` as a whole, ``pool_latest`` for every pool with a snapshot on the run's days
(every pool on a normal day). Each row written also went into ``ix_*_chain`` and ``ix_*_project``: on a
one-day schema the INSERT of ``pool_latest`` took 176-237 ms with them and 111-142 ms without (min-median
of nine, the SELECT part ~60 ms of either), ``pool_apy_stats`` 155-192 ms against 96-125 ms. No query
needs them: the queries benchmark and the README's example queries read these tables whole or filter on
columns without an index (``is_current``, ``stablecoin``, ``tvl_usd``), and a filter on one chain or
project reads the 17,000 rows in a few milliseconds whichever plan it gets.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_DROPPED = {"pool_latest": ("chain", "project"), "pool_apy_stats": ("chain", "project")}


def upgrade() -> None:
    for table, columns in _DROPPED.items():
        for column in columns:
            op.drop_index(f"ix_{table}_{column}", table_name=table)


def downgrade() -> None:
    for table, columns in _DROPPED.items():
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column])
