"""Quarantine of unusable captures, and the capture_coverage view.

Every /pools and /protocols response that arrives whole is written to ``raw_payload_quarantine`` as
'pending' before it is parsed, in a transaction of its own, so that not even a parser crash or a kill
loses it. A capture that validates moves to ``raw_payloads`` (its pending row deleted in the same
transaction); one that does not stays here as 'refused' with its reason. ``capture_coverage`` says for
every day since the first stored one what the day holds and since when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# One row per day from the first day anything was stored up to today (UTC). The per-day subqueries
# read pool_snapshots and rejects through their (snapshot_date) and (asset, partition_date) indexes.
CAPTURE_COVERAGE = """
CREATE VIEW capture_coverage AS
WITH bounds AS (
    SELECT least((SELECT min(partition_date) FROM raw_payloads),
                 (SELECT min(snapshot_date) FROM pool_snapshots)) AS first_day,
           (now() AT TIME ZONE 'UTC')::date AS today
)
SELECT d.day::date AS day,
       pools.fetched_at AS pools_fetched_at,
       protocols.fetched_at AS protocols_fetched_at,
       CASE WHEN s.from_payload THEN 'payload' WHEN s.pool_count > 0 THEN 'chart' ELSE 'none' END
           AS snapshots_source,
       s.pool_count,
       (SELECT count(*) FROM rejects r WHERE r.asset = 'pool_snapshots' AND r.partition_date = d.day)
           AS rejects,
       (SELECT count(*) FROM raw_payload_quarantine q WHERE q.partition_date = d.day AND q.status = 'refused')
           AS quarantined
FROM bounds, generate_series(bounds.first_day, bounds.today, interval '1 day') AS d(day)
LEFT JOIN raw_payloads pools ON pools.endpoint = 'pools' AND pools.partition_date = d.day
LEFT JOIN raw_payloads protocols ON protocols.endpoint = 'protocols' AND protocols.partition_date = d.day
CROSS JOIN LATERAL (
    SELECT count(*) AS pool_count, coalesce(bool_or(source = 'pools'), false) AS from_payload
    FROM pool_snapshots ps WHERE ps.snapshot_date = d.day
) s
"""


def upgrade() -> None:
    op.create_table(
        "raw_payload_quarantine",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("endpoint", sa.Text, nullable=False, comment="Which payload: 'pools' or 'protocols'."),
        sa.Column("partition_date", sa.Date, nullable=False, comment="UTC day the capture was fetched for."),
        sa.Column("url", sa.Text, nullable=False, comment="URL fetched (credentials removed)."),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False, comment="When the response arrived."),
        sa.Column("http_status", sa.Integer, nullable=False, comment="HTTP status of the response."),
        sa.Column("content_type", sa.Text, comment="Content-Type header of the response."),
        sa.Column("compression", sa.Text, nullable=False, comment="How body is compressed: 'zstd' (or 'gzip')."),
        sa.Column("body", sa.LargeBinary, nullable=False, comment="The response body, byte for byte, compressed."),
        sa.Column("size_bytes", sa.BigInteger, nullable=False, comment="Uncompressed body size in bytes."),
        sa.Column("sha256", sa.Text, nullable=False, comment="SHA-256 of the uncompressed body."),
        sa.Column("status", sa.Text, nullable=False,
                  comment="'pending' while it is validated, 'refused' when it could not be used."),
        sa.Column("reason", sa.Text, comment="Why it was refused; NULL while pending."),
        sa.Column("run_id", sa.Text, comment="Dagster run that fetched it."),
        sa.Index("ix_raw_payload_quarantine_endpoint_day", "endpoint", "partition_date"),
        comment="Captures that arrived whole but could not be used (or are being validated), with the reason.",
    )
    op.execute("ALTER TABLE raw_payload_quarantine ALTER COLUMN body SET STORAGE EXTERNAL")
    op.execute(CAPTURE_COVERAGE)
    op.execute("COMMENT ON VIEW capture_coverage IS 'Per day since the first stored day: when /pools and "
               "/protocols were captured, which source filled pool_snapshots, pools, rejects, quarantined captures.'")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS capture_coverage")
    op.drop_table("raw_payload_quarantine")
