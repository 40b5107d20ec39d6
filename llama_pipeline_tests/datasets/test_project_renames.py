"""Project renames: pool ids that move from a slug that left /protocols to a new one are recorded once,
and a project's daily series runs on under its current slug."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from llama_pipeline.defs.analytics import assets as analytics
from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.conftest import all_assets, archive_payloads, dataset_assets
from llama_pipeline_tests.testing import synthetic

DAY1, DAY2 = utc_today() - dt.timedelta(days=3), utc_today() - dt.timedelta(days=2)
ASSETS = [*all_assets(), *dataset_assets(), analytics.analytics]  # runs project_daily_stats alone
WAREHOUSE = ["chains", "projects", "project_renames", "pools", "pool_snapshots", "project_daily_stats"]


def run(resources, day: dt.date) -> None:
    result = dg.materialize(ASSETS, selection=WAREHOUSE, resources=resources, partition_key=day.isoformat())
    assert result.success


def two_days(warehouse) -> tuple[str, str, str]:
    """Day 1 as generated; day 2 with every pool of one project under a new slug (the old slug gone
    from /protocols), and one pool of another live project reassigned to a third live project."""
    protocols = synthetic.generate_protocols(80, seed=5)
    payload = synthetic.generate_pools(200, seed=5, protocols=protocols)
    slugs = {p["slug"] for p in protocols}
    by_project: dict[str, list[dict]] = {}
    for pool in payload["data"]:
        by_project.setdefault(pool["project"], []).append(pool)
    listed = sorted((p for p in by_project if p in slugs), key=lambda p: -len(by_project[p]))
    old, moved_from, moved_to = listed[0], listed[1], listed[2]
    new = f"{old}-renamed"
    archive_payloads(warehouse, DAY1, payload, protocols)
    day2 = [{**p, "project": new} if p["project"] == old else dict(p) for p in payload["data"]]
    reassigned = next(p for p in day2 if p["project"] == moved_from)
    reassigned["project"] = moved_to
    protocols2 = [{**p, "slug": new} if p["slug"] == old else p for p in protocols]
    archive_payloads(warehouse, DAY2, {**payload, "data": day2}, protocols2)
    return old, new, moved_from


def test_a_rename_is_recorded_and_the_series_follows_the_project(resources, warehouse, query):
    old, new, not_renamed = two_days(warehouse)
    run(resources, DAY1)
    run(resources, DAY2)
    pools_of_old = query("SELECT count(*) FROM pool_snapshots s JOIN pools p USING (pool_id) "
                         "WHERE s.snapshot_date = %s AND p.project = %s", (DAY2, new))[0][0]
    assert query("SELECT old_slug, new_slug, detected_on, pools_moved FROM project_renames") == [
        (old, new, DAY2, pools_of_old)]
    assert not query("SELECT 1 FROM project_renames WHERE old_slug = %s", (not_renamed,))
    assert query("SELECT current_slug FROM project_current_slug WHERE slug = %s", (old,)) == [(new,)]
    assert query("SELECT current_slug FROM project_current_slug WHERE slug = %s", (not_renamed,)) == [(not_renamed,)]
    # the daily stats keep each day's slug; the series view runs on under the current one
    assert query("SELECT snapshot_date FROM project_daily_stats WHERE project = %s", (new,)) == [(DAY2,)]
    assert query("SELECT snapshot_date, slug_on_day FROM project_daily_series WHERE project = %s "
                 "ORDER BY 1", (new,)) == [(DAY1, old), (DAY2, new)]


def test_backfilling_an_older_day_never_records_a_rename_backwards(resources, warehouse, query):
    old, new, _ = two_days(warehouse)
    run(resources, DAY1)
    run(resources, DAY2)
    run(resources, DAY1)  # re-run the older day after the newer
    assert query("SELECT old_slug, new_slug FROM project_renames") == [(old, new)]
    run(resources, DAY2)  # and the newer again: recorded once
    assert query("SELECT count(*) FROM project_renames") == [(1,)]


def test_a_chain_of_renames_resolves_to_the_last_slug(resources, warehouse, query):
    with warehouse.connection() as conn, conn.cursor() as cur:
        cur.execute(f'SET LOCAL search_path TO "{warehouse.schema_name}"')
        for slug in ("a", "b", "c"):
            cur.execute("INSERT INTO projects (slug, listed_in_protocols, first_seen_date, last_seen_date) "
                        "VALUES (%s, true, %s, %s)", (slug, DAY1, DAY1))
        cur.execute("INSERT INTO project_renames VALUES ('a', 'b', %s, 1), ('b', 'c', %s, 1)", (DAY1, DAY2))
    assert query("SELECT slug, current_slug FROM project_current_slug ORDER BY 1") == [
        ("a", "c"), ("b", "c"), ("c", "c")]
