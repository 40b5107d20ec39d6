"""Asset checks against the real warehouse: blocking checks stop bad days before they spread, warnings
flag odd data, results are stored per partition and work for range runs."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from llama_pipeline.defs.ingestion import checks as ingestion_checks
from llama_pipeline.defs.warehouse import checks as warehouse_checks
from llama_pipeline.partitions import DAILY, utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.conftest import all_assets, asset_keys, archive_payloads, warehouse_assets
from llama_pipeline_tests.defs.test_pipeline import serve, snapshot_of

BLOCKING = {
    "raw_pools:pool_count_not_collapsed", "projects:counts_add_up", "pools:counts_add_up",
    "pool_snapshots:counts_add_up", "chains:keys_unique", "projects:keys_unique", "pools:keys_unique",
    "pool_snapshots:keys_unique", "pools:pools_join_chain_and_project", "pool_snapshots:snapshots_join_pools",
}
WARNINGS = {
    "raw_pools:pools_fields_stable", "raw_protocols:protocols_fields_stable", "pool_snapshots:values_in_range",
    "pools:pool_projects_listed", "chains:chains_in_alias_map", "pool_snapshots:rejects_within_threshold",
    "projects:rejects_within_threshold",
}


def all_checks() -> list[dg.AssetChecksDefinition]:
    found = []
    for module in (ingestion_checks, warehouse_checks):
        found += [v for v in vars(module).values() if isinstance(v, dg.AssetChecksDefinition)]
    return found


def run(assets, resources, partition=None, *, partition_range=None, run_config=None,
        only_checks: bool = False) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` with every check of theirs, or only run their daily checks (the way the
    ``daily_checks`` job re-judges stored days)."""
    keys = asset_keys(assets)
    tags = {}
    if partition_range:
        tags = {"dagster/asset_partition_range_start": partition_range[0].isoformat(),
                "dagster/asset_partition_range_end": partition_range[1].isoformat()}
    elif partition is None:
        partition = utc_today()
    partition_key = partition.isoformat() if partition else None
    if only_checks:
        selection = dg.AssetSelection.checks_for_assets(*keys) & warehouse_checks.daily_checks_job.selection
        job = dg.define_asset_job("checks_only", selection=selection)
        if partition_key:  # as the UI launches it (Dagster infers no partitioning for a check-only job)
            tags = {"dagster/partition": partition_key}
        return dg.Definitions(assets=all_assets(), asset_checks=all_checks(), jobs=[job], resources=resources) \
            .resolve_job_def("checks_only").execute_in_process(tags=tags, raise_on_error=False,
                                                               run_config=run_config or {})
    return dg.materialize(
        [*all_assets(), *all_checks()], selection=dg.AssetSelection.assets(*keys), resources=resources, tags=tags,
        partition_key=partition_key, raise_on_error=False, run_config=run_config or {},
    )


def evaluations(result) -> dict[str, dg.AssetCheckEvaluation]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()}


def evaluations_by_day(result) -> dict[tuple[str, str | None], dg.AssetCheckEvaluation]:
    """A range run's results: one per check and day."""
    return {(f"{e.asset_key.to_user_string()}:{e.check_name}", e.partition): e
            for e in result.get_asset_check_evaluations()}


def meta(evaluation, key):
    value = evaluation.metadata[key]
    return value.value if hasattr(value, "value") else value


def started_steps(result) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == "STEP_START"}


def test_checks_are_defined_partitioned_blocking_and_described():
    specs = {f"{s.asset_key.to_user_string()}:{s.name}": s for c in all_checks() for s in c.check_specs}
    assert BLOCKING | WARNINGS <= set(specs)
    for key, spec in specs.items():
        assert spec.description, key
        assert spec.blocking == (key in BLOCKING), key
        if key not in ("pool_snapshots:pool_snapshots_fresh", "raw_pools:yesterday_captured"):  # judge "now"
            assert spec.partitions_def == DAILY, key


def test_a_clean_day_passes_every_blocking_check_per_partition(resources, http, small_day):
    serve(http, *small_day)
    result = run(all_assets(), resources)
    assert result.success
    found = evaluations(result)
    assert BLOCKING | WARNINGS | {"pool_snapshots:pool_snapshots_fresh"} <= set(found)
    for key in BLOCKING:
        assert found[key].passed, (key, found[key].description)
        assert found[key].partition == utc_today().isoformat(), key  # stored per partition
    # The synthetic day has projects /protocols lacks: a warning, not a failure.
    placeholders = found["pools:pool_projects_listed"]
    assert not placeholders.passed and placeholders.severity == dg.AssetCheckSeverity.WARN
    assert meta(placeholders, "placeholder_projects") > 0
    assert found["pool_snapshots:pool_snapshots_fresh"].passed
    assert found["pools:counts_add_up"].description.startswith(f"{len(small_day[0]['data']):,} records")
    assert found["pool_snapshots:rejects_within_threshold"].passed


def test_a_collapsed_payload_blocks_downstream_and_keeps_the_tables(resources, warehouse, query):
    protocols = synthetic.generate_protocols(80, seed=21)
    day1, day2 = dt.date(2026, 10, 10), dt.date(2026, 10, 11)
    full = synthetic.generate_pools(200, seed=21, protocols=protocols, day=day1)
    archive_payloads(warehouse, day1, full, protocols)
    assert run(all_assets(), resources, day1).success
    before = snapshot_of(query)

    half_empty = {"status": "success", "data": full["data"][:60]}  # 30% of yesterday
    archive_payloads(warehouse, day2, half_empty, protocols)
    result = run(all_assets(), resources, day2)
    assert not result.success
    check = evaluations(result)["raw_pools:pool_count_not_collapsed"]
    assert not check.passed and check.partition == day2.isoformat()
    assert meta(check, "previous_pool_count") == 200 and meta(check, "pool_count") == 60
    assert "30%" in check.description
    # Nothing downstream of raw_pools ran: the warehouse tables are exactly as before.
    assert not {"pools", "pool_snapshots", "chains", "projects"} & started_steps(result)
    after = snapshot_of(query)
    assert {t: v for t, v in after.items() if t != "raw_payloads"} == \
        {t: v for t, v in before.items() if t != "raw_payloads"}

    # The threshold is configurable per run (check config) and from the environment.
    config = {"ops": {"raw_pools_pool_count_not_collapsed": {"config": {"min_fraction": 0.25}}}}
    assert run(all_assets(), resources, day2, run_config=config).success
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (day2,)) == [(60,)]


def test_fraction_from_the_environment(resources, warehouse, monkeypatch):
    protocols = synthetic.generate_protocols(40, seed=22)
    day1, day2 = dt.date(2026, 10, 12), dt.date(2026, 10, 13)
    full = synthetic.generate_pools(100, seed=22, protocols=protocols, day=day1)
    archive_payloads(warehouse, day1, full, protocols)
    archive_payloads(warehouse, day2, {"status": "success", "data": full["data"][:80]}, protocols)
    monkeypatch.setenv("LLAMA_MIN_POOL_FRACTION", "0.9")
    result = run([all_assets()[0]], resources, partition_range=(day1, day2))
    by_day = evaluations_by_day(result)
    assert by_day[("raw_pools:pool_count_not_collapsed", day1.isoformat())].passed
    assert not by_day[("raw_pools:pool_count_not_collapsed", day2.isoformat())].passed
    monkeypatch.setenv("LLAMA_MIN_POOL_FRACTION", "0.75")
    assert evaluations(run([all_assets()[0]], resources, day2))["raw_pools:pool_count_not_collapsed"].passed


def test_lost_rows_fail_counts_add_up(resources, warehouse, query):
    protocols = synthetic.generate_protocols(60, seed=23)
    day = dt.date(2026, 10, 14)
    payload = synthetic.generate_pools(120, seed=23, protocols=protocols, day=day)
    archive_payloads(warehouse, day, payload, protocols)
    assert run(warehouse_assets(), resources, day).success
    # A row disappears behind the pipeline's back: the checks, re-run alone, notice.
    lost = payload["data"][5]["pool"]
    query("DELETE FROM pool_snapshots WHERE pool_id = %s", (lost,))
    query("UPDATE pools SET last_seen_date = first_seen_date - 1 WHERE pool_id = %s", (lost,))
    query("DELETE FROM projects WHERE slug = %s AND listed_in_protocols", (protocols[0]["slug"],))
    result = run(warehouse_assets(), resources, day, only_checks=True)
    found = evaluations(result)
    for asset in ("pools", "pool_snapshots", "projects"):
        check = found[f"{asset}:counts_add_up"]
        assert not check.passed, asset
        assert meta(check, "unaccounted") == 1, asset
    assert "119 rows loaded" in found["pool_snapshots:counts_add_up"].description


def test_rejects_add_up_and_warn_above_the_threshold(resources, http, small_day):
    pools_payload, protocols = small_day
    bad = [dict(pools_payload["data"][0], pool="not-a-uuid"), dict(pools_payload["data"][1], tvlUsd="lots"),
           pools_payload["data"][2], pools_payload["data"][3], "not an object"]  # duplicate ids
    http.set("/pools", synthetic.dumps({"status": "success", "data": pools_payload["data"] + bad}))
    http.set("/protocols", synthetic.dumps(protocols))
    result = run(all_assets(), resources)
    assert result.success  # rejects never fail the day
    found = evaluations(result)
    for asset in ("pools", "pool_snapshots"):
        assert found[f"{asset}:counts_add_up"].passed
        assert meta(found[f"{asset}:counts_add_up"], "rejected") == 5
    rejects = found["pool_snapshots:rejects_within_threshold"]
    assert not rejects.passed and rejects.severity == dg.AssetCheckSeverity.WARN  # 5/305 > 1%
    assert meta(rejects, "rejected") == 5
    config = {"ops": {"pool_snapshots_rejects_within_threshold": {"config": {"max_fraction": 0.05}}}}
    assert evaluations(run(warehouse_assets(), resources, run_config=config))[
        "pool_snapshots:rejects_within_threshold"].passed


def test_warnings_for_odd_values_unknown_chains_and_changed_fields(resources, warehouse):
    protocols = synthetic.generate_protocols(60, seed=24)
    day1, day2 = dt.date(2026, 10, 15), dt.date(2026, 10, 16)
    payload = synthetic.generate_pools(100, seed=24, protocols=protocols, day=day1)
    archive_payloads(warehouse, day1, payload, protocols)
    records = [dict(r) for r in payload["data"]]
    records[0]["apy"] = -3.0
    records[1]["apy"] = 5e6
    records[2]["tvlUsd"] = -10
    records[3]["chain"] = "Neverheardofchain"
    for record in records:
        record.pop("mu", None)
        record["brandNewMetric"] = 1
    archive_payloads(warehouse, day2, {"status": "success", "data": records}, protocols)
    result = run(warehouse_assets() + all_assets()[:2], resources, partition_range=(day1, day2))
    assert result.success  # warnings do not block
    found = evaluations_by_day(result)
    first, second = day1.isoformat(), day2.isoformat()
    values = found[("pool_snapshots:values_in_range", second)]
    assert not values.passed and values.severity == dg.AssetCheckSeverity.WARN
    assert (meta(values, "apy_below_0"), meta(values, "apy_above_1e6"), meta(values, "tvl_negative")) == (1, 1, 1)
    assert found[("pool_snapshots:values_in_range", first)].passed
    chains = found[("chains:chains_in_alias_map", second)]
    assert not chains.passed and "Neverheardofchain" in json.dumps({k: meta(chains, k) for k in chains.metadata})
    fields = found[("raw_pools:pools_fields_stable", second)]
    assert not fields.passed
    assert meta(fields, "appeared") == ["brandNewMetric"]
    assert meta(fields, "vanished") == ["mu"]
    assert found[("raw_protocols:protocols_fields_stable", second)].passed
    # A range run reports one result per check and day, each judging its own day.
    assert {day for key, day in found if key == "pool_snapshots:counts_add_up"} == {first, second}
    assert all(e.passed for (key, _), e in found.items() if key == "pool_snapshots:counts_add_up")


def test_duplicate_keys_and_orphans_are_caught(resources, warehouse, query):
    protocols = synthetic.generate_protocols(60, seed=25)
    day = dt.date(2026, 10, 17)
    payload = synthetic.generate_pools(80, seed=25, protocols=protocols, day=day)
    archive_payloads(warehouse, day, payload, protocols)
    assert run(warehouse_assets(), resources, day).success
    # Constraints normally make this impossible; the checks do not rely on them.
    query("ALTER TABLE pool_snapshots DROP CONSTRAINT pool_snapshots_pkey")
    query("ALTER TABLE pool_snapshots DROP CONSTRAINT IF EXISTS pool_snapshots_pool_id_fkey")
    query("ALTER TABLE pools DROP CONSTRAINT IF EXISTS pools_project_fkey")
    query("INSERT INTO pool_snapshots SELECT * FROM pool_snapshots LIMIT 1")
    query("UPDATE pools SET project = 'no-such-project' WHERE pool_id = %s", (payload["data"][0]["pool"],))
    found = evaluations(run(warehouse_assets(), resources, day, only_checks=True))
    assert not found["pool_snapshots:keys_unique"].passed
    assert not found["pools:pools_join_chain_and_project"].passed
    assert "no-such-project" in json.dumps(meta(found["pools:pools_join_chain_and_project"], "sample"))
    assert found["pools:keys_unique"].passed


def test_freshness_judges_the_newest_stored_day(resources, warehouse, query, monkeypatch):
    protocols = synthetic.generate_protocols(40, seed=26)
    old = utc_today() - dt.timedelta(days=3)
    archive_payloads(warehouse, old, synthetic.generate_pools(50, seed=26, protocols=protocols, day=old), protocols)
    result = run(warehouse_assets(), resources, old)
    assert result.success  # freshness does not block
    fresh = evaluations(result)["pool_snapshots:pool_snapshots_fresh"]
    assert not fresh.passed and meta(fresh, "latest_snapshot_date") == old.isoformat()
    monkeypatch.setenv("LLAMA_FRESHNESS_HOURS", "96")
    # The scheduled check-only job runs without materializing anything.
    job = dg.Definitions(assets=all_assets(), asset_checks=all_checks(), jobs=[warehouse_checks.freshness_checks_job],
                         resources=resources).resolve_job_def("freshness_checks")
    job_result = job.execute_in_process(raise_on_error=False)
    assert evaluations(job_result)["pool_snapshots:pool_snapshots_fresh"].passed
    assert not job_result.get_asset_materialization_events()
    monkeypatch.delenv("LLAMA_FRESHNESS_HOURS")
    assert not evaluations(job.execute_in_process(raise_on_error=False))["pool_snapshots:pool_snapshots_fresh"].passed
