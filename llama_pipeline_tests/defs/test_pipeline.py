"""The whole graph against a real PostgreSQL and a real HTTP server: days, re-runs, backfills, ranges."""

from __future__ import annotations

import datetime as dt

import pytest

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic
from llama_pipeline_tests.conftest import all_assets, archive_payloads, materialize, warehouse_assets

TABLES = ("chains", "projects", "pools", "pool_snapshots", "raw_payloads", "rejects")


def snapshot_of(query) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order (rejects without their generated id)."""
    state = {}
    for table in TABLES:
        columns = "*" if table != "rejects" else "asset, partition_date, record_index, record_key, reason, record"
        if table == "raw_payloads":
            columns = "endpoint, partition_date, sha256, size_bytes, record_count"
        state[table] = sorted(query(f"SELECT {columns} FROM {table}"), key=repr)
    return state


def serve(http, pools_payload, protocols_payload) -> None:
    http.set("/pools", synthetic.dumps(pools_payload))
    http.set("/protocols", synthetic.dumps(protocols_payload))


def test_whole_graph_loads_today(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    result = materialize(all_assets(), resources)
    assert result.success
    today = utc_today()
    n_pools = len(pools_payload["data"])
    assert query("SELECT count(*) FROM pools") == [(n_pools,)]
    assert query("SELECT count(*), min(snapshot_date), max(snapshot_date) FROM pool_snapshots") == [(n_pools, today, today)]
    # Every pool joins a chain and a project, including projects that /protocols lacks.
    assert query("SELECT count(*) FROM pools p JOIN chains c ON c.name = p.chain JOIN projects j ON j.slug = p.project") \
        == [(n_pools,)]
    placeholders = {p["project"] for p in pools_payload["data"]} - {p["slug"] for p in protocols}
    assert placeholders, "the generator should name some projects /protocols lacks"
    assert set(r[0] for r in query("SELECT slug FROM projects WHERE NOT listed_in_protocols")) == placeholders
    # Spellings of both endpoints fold into one chain row.
    assert query("SELECT count(*) FROM chains WHERE name = 'Binance'") == [(0,)]
    # Values arrive unchanged.
    first = pools_payload["data"][0]
    row = query("SELECT tvl_usd, apy, symbol FROM pool_snapshots s JOIN pools USING (pool_id) WHERE pool_id = %s",
                (first["pool"],))
    assert row == [(float(first["tvlUsd"]), first["apy"], first["symbol"])]
    # The raw payload is archived byte for byte.
    from llama_pipeline.fetch.raw_archive import load
    assert load(resources["warehouse"], "pools", today).body == synthetic.dumps(pools_payload)
    # Metadata for the UI.
    snap = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["pool_snapshots"]][0]
    meta = snap.materialization.metadata
    assert meta["dagster/row_count"].value == n_pools
    assert meta["pool_count"].value == n_pools
    assert meta["total_tvl_usd"].value == pytest.approx(sum(float(p["tvlUsd"]) for p in pools_payload["data"]))
    assert "preview" in meta
    # The UI shows a materialization's column schema over the definition's: none is added at run time,
    # so raw_pools keeps its API record's fields and the tables their declared columns.
    for event in result.get_asset_materialization_events():
        assert "dagster/column_schema" not in event.materialization.metadata, event.asset_key


def test_same_day_twice_gives_identical_tables(resources, http, query, small_day):
    serve(http, *small_day)
    assert materialize(all_assets(), resources).success
    first = snapshot_of(query)
    second_run = materialize(all_assets(), resources)
    assert second_run.success
    assert snapshot_of(query) == first
    pools_event = [e for e in second_run.get_asset_materialization_events() if e.asset_key.path == ["pools"]][0]
    assert pools_event.materialization.metadata["updated"].value == 0
    assert pools_event.materialization.metadata["inserted"].value == 0


def test_two_consecutive_days_then_older_day_backfilled(resources, query, warehouse):
    protocols = synthetic.generate_protocols(120, seed=3)
    day1_payload = synthetic.generate_pools(200, seed=3, protocols=protocols, day=dt.date(2026, 11, 1))
    day2_payload = synthetic.evolve_pools(day1_payload, seed=3, changed=0.2, new=0.05, gone=0.05)
    day1, day2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    archive_payloads(warehouse, day1, day1_payload, protocols)
    archive_payloads(warehouse, day2, day2_payload, protocols)

    # Newer day first, then the older one: the older day widens first_seen but never overwrites.
    assert materialize(warehouse_assets(), resources, day2).success
    after_day2 = dict((r[0], r[1:]) for r in query("SELECT pool_id::text, symbol, pool_meta, project FROM pools"))
    assert materialize(warehouse_assets(), resources, day1).success

    by_id_2 = {p["pool"]: p for p in day2_payload["data"]}
    by_id_1 = {p["pool"]: p for p in day1_payload["data"]}
    rows = {r[0]: r[1:] for r in query(
        "SELECT pool_id::text, symbol, pool_meta, project, first_seen_date, last_seen_date FROM pools")}
    assert set(rows) == set(by_id_1) | set(by_id_2)
    for pool_id, (symbol, meta, project, first_seen, last_seen) in rows.items():
        if pool_id in by_id_2:
            assert (symbol, meta, project) == after_day2[pool_id]  # newer attributes survive
            assert last_seen == day2
            assert first_seen == (day1 if pool_id in by_id_1 else day2)
        else:  # gone on day 2: known only from day 1
            assert (first_seen, last_seen) == (day1, day1)
            assert symbol == by_id_1[pool_id]["symbol"]
    changed = [pid for pid in by_id_1.keys() & by_id_2.keys() if by_id_1[pid]["symbol"] != by_id_2[pid]["symbol"]]
    assert changed, "the evolved day should change some symbols"
    counts = dict(query("SELECT snapshot_date, count(*) FROM pool_snapshots GROUP BY 1"))
    assert counts == {day1: len(by_id_1), day2: len(by_id_2)}

    # Re-running day 2 afterwards changes nothing.
    before = snapshot_of(query)
    assert materialize(warehouse_assets(), resources, day2).success
    assert snapshot_of(query) == before


def test_range_run_writes_every_day(resources, query, warehouse):
    protocols = synthetic.generate_protocols(80, seed=5)
    payload = synthetic.generate_pools(120, seed=5, protocols=protocols, day=dt.date(2026, 10, 1))
    days = [dt.date(2026, 10, 1) + dt.timedelta(days=i) for i in range(4)]
    expected: dict[str, tuple] = {}  # pool -> (symbol, pool_meta, project, first seen, last seen)
    for day in days:
        archive_payloads(warehouse, day, payload, protocols)
        for pool in payload["data"]:
            first_seen = expected[pool["pool"]][3] if pool["pool"] in expected else day
            expected[pool["pool"]] = (pool["symbol"], pool["poolMeta"], pool["project"], first_seen, day)
        payload = synthetic.evolve_pools(payload, seed=day.toordinal(), changed=0.2, new=0.05, gone=0.05)
    result = materialize(all_assets(), resources, partition_range=(days[0], days[-1]))
    assert result.success
    # The range merges each pool once, as of its newest day, exactly as day-by-day runs would.
    assert {r[0]: r[1:] for r in query("SELECT pool_id::text, symbol, pool_meta, project, first_seen_date, "
                                       "last_seen_date FROM pools")} == expected
    counts = dict(query("SELECT snapshot_date, count(*) FROM pool_snapshots GROUP BY 1"))
    assert sorted(counts) == days
    assert query("SELECT min(first_seen_date), max(last_seen_date) FROM pools") == [(days[0], days[-1])]
    # The same range again is idempotent.
    before = snapshot_of(query)
    assert materialize(warehouse_assets(), resources, partition_range=(days[0], days[-1])).success
    assert snapshot_of(query) == before


def test_past_day_without_payload_is_never_filled_with_today(resources, http, query, small_day):
    serve(http, *small_day)
    past = utc_today() - dt.timedelta(days=3)
    # No stored payload and no history: the warehouse knows no pools to fetch charts for.
    result = materialize(all_assets(), resources, past, raise_on_error=False)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert "Load today's partition first" in message
    # The snapshots alone (e.g. a backfill that leaves out raw_pool_charts) say why and what to do.
    result = materialize(warehouse_assets(), resources, past, raise_on_error=False)
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    message = str(failure.step_failure_data.user_failure_data)
    assert "never filled with today's data" in message and past.isoformat() in message
    assert http.count("/pools") == 0
    for table in ("raw_payloads", "pools", "pool_snapshots"):
        assert query(f"SELECT count(*) FROM {table}") == [(0,)]


def test_rerun_of_today_replaces_todays_payload(resources, http, query, small_day):
    pools_payload, protocols = small_day
    serve(http, pools_payload, protocols)
    assert materialize(all_assets(), resources).success
    smaller = {"status": "success", "data": pools_payload["data"][:100]}
    serve(http, smaller, protocols)
    assert materialize(all_assets(), resources).success
    assert query("SELECT record_count FROM raw_payloads WHERE endpoint = 'pools'") == [(100,)]
    assert query("SELECT count(*) FROM pool_snapshots") == [(100,)]


def test_downstream_replays_stored_payload_without_network(resources, http, query, small_day):
    serve(http, *small_day)
    assert materialize(all_assets(), resources).success
    before = snapshot_of(query)
    http.set("/pools", b"gone", status=500)
    assert materialize(warehouse_assets(), resources).success
    assert snapshot_of(query) == before
    assert http.count("/pools") == 1


def test_a_day_whose_protocols_failed_still_loads_from_its_pools(resources, query, warehouse):
    from llama_pipeline.fetch.payloads import RawPayload, decode_records
    from llama_pipeline.fetch.raw_archive import store

    protocols = synthetic.generate_protocols(60, seed=4)
    payload = synthetic.generate_pools(90, seed=4, protocols=protocols)
    full_day, pools_only_day = dt.date(2026, 8, 1), dt.date(2026, 8, 2)
    archive_payloads(warehouse, full_day, payload, protocols)
    assert materialize(warehouse_assets(), resources, full_day).success
    before = dict(query("SELECT slug, name FROM projects"))
    body = synthetic.dumps(payload)
    with warehouse.connection() as conn:  # /pools arrived that day, /protocols did not
        store(conn, warehouse.schema_name, [RawPayload("pools", pools_only_day, "u", dt.datetime.now(dt.timezone.utc),
                                                       200, None, body, len(decode_records("pools", body, "u")))])
    assert materialize(warehouse_assets(), resources, pools_only_day).success
    assert dict(query("SELECT slug, name FROM projects")) == before  # attributes kept, not nulled
    used = {p["project"] for p in payload["data"]}
    assert dict(query("SELECT slug, last_seen_date FROM projects WHERE slug = ANY(%s)", (sorted(used),))) == {
        slug: pools_only_day for slug in used}
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (pools_only_day,)) == [(90,)]
