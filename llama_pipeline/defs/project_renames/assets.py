"""Project renames, detected from pool ids that move to a new slug; analytics follow them through the
``project_current_slug`` and ``project_daily_series`` views (migration 0007)."""

import datetime as dt

import dagster as dg

from llama_pipeline import lineage
from llama_pipeline.dataset_assets import common
from llama_pipeline.io_manager import column_schema
from llama_pipeline.parsed_payloads import pools_day
from llama_pipeline.partitions import days_of
from llama_pipeline.raw_archive import MissingPayload, RawArchive
from llama_pipeline.schema_datasets import project_renames as renames_table
from llama_pipeline.transform.project_renames import detect_renames
from llama_pipeline.warehouse import Warehouse
from llama_pipeline.warehouse_lock import partition_lock_key, quote_ident


def _moves(cur, s: str, day: dt.date, today: list[tuple[str, str]]) -> tuple[list[tuple[str, str, str]], set[str]]:
    """Pools whose stored slug (written by an older day only: a backfilled older day never moves a pool
    back) differs from the day's, and which of those stored slugs are gone that day."""
    cur.execute(
        f"""
        SELECT p.pool_id::text, p.project, d.project
        FROM unnest(%s::uuid[], %s::text[]) AS d(pool_id, project)
        JOIN {s}.pools p ON p.pool_id = d.pool_id
        WHERE p.project <> d.project AND p.last_seen_date < %s
        """,
        ([p for p, _ in today], [j for _, j in today], day),
    )
    moves = cur.fetchall()
    old = sorted({m[1] for m in moves})
    # projects has run for the day (a dependency): a slug still listed or named that day was seen on it
    cur.execute(f"SELECT slug FROM {s}.projects WHERE slug = ANY(%s) AND last_seen_date < %s", (old, day))
    return moves, {row[0] for row in cur.fetchall()}


@dg.asset(metadata={"table": renames_table.name, "dagster/column_schema": column_schema(renames_table),
                    **lineage.metadata_for("project_renames")},
          deps=[dg.AssetKey("projects")], **common("warehouse", {"postgres"}))
def project_renames(context: dg.AssetExecutionContext, raw_pools: RawArchive, warehouse: Warehouse) -> dg.MaterializeResult:
    """Slugs DeFiLlama renamed in place: pool ids that arrive under a new project slug while their old
    slug has left /protocols (and no pool names it any more), recorded once as (old_slug, new_slug,
    detected_on). Runs before pools takes the new slug; the views project_current_slug and
    project_daily_series let a project's daily series run on under its current slug."""
    days = days_of(context.partition_time_window)
    s = quote_ident(warehouse.schema_name)
    found = 0
    detected: list[str] = []
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (partition_lock_key(warehouse.schema_name, renames_table.name),))
        for day in days:
            try:
                pools = pools_day(raw_pools, day).parsed.pools
            except MissingPayload:
                continue  # a day filled from history names no projects
            moves, gone = _moves(cur, s, day, list(zip(pools["pool_id"], pools["project"])))
            renames = detect_renames(moves, gone, day)
            for row in renames.itertuples(index=False):
                cur.execute(
                    f"INSERT INTO {s}.project_renames (old_slug, new_slug, detected_on, pools_moved) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (old_slug, new_slug) DO NOTHING",
                    (row.old_slug, row.new_slug, row.detected_on, int(row.pools_moved)),
                )
                found += cur.rowcount
                detected.append(f"{row.old_slug} -> {row.new_slug} ({row.detected_on}, {row.pools_moved} pools)")
        cur.execute(f"SELECT count(*) FROM {s}.project_renames")
        total = cur.fetchone()[0]
    for line in detected:
        context.log.info(f"project renamed: {line}")
    return dg.MaterializeResult(metadata={"renames_detected": found, "table_rows": total,
                                          "renames": ", ".join(detected[:20]) or "none",
                                          "dagster/table_name": f"{warehouse.schema_name}.{renames_table.name}"})
