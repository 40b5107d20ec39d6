"""Analytics views, lineage and plot metadata against real PostgreSQL and payloads loaded by the pipeline.

Expected figures are computed here in Python from the payloads (the records' values as the pipeline's
parser accepts them), independently of the SQL of migration 0003.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics

import dagster as dg
import pytest

from llama_pipeline.defs.analytics import assets as analytics
from llama_pipeline_tests.testing import synthetic
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline.decode.protocols import parse_protocols
from llama_pipeline_tests.conftest import all_assets, asset_keys, archive_payloads, warehouse_assets

ANALYTICS = [analytics.analytics]  # the five relations, one multi-asset
# Day 3 is a week after day 2: the 7-day windows ending on day 3 hold day 3 alone, the 30-day ones all.
DAYS = (dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 9))


def run(assets, resources, day: dt.date) -> dg.ExecuteInProcessResult:
    return dg.materialize([*all_assets(), *ANALYTICS], selection=asset_keys(assets), resources=resources,
                          partition_key=day.isoformat())


def close(actual, expected) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)


def assert_rows(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, row in expected.items():
        got = actual[key]
        assert len(got) == len(row), key
        for name, (a, e) in enumerate(zip(got, row)):
            if isinstance(e, float) or isinstance(a, float):
                assert close(a, e), (key, name, a, e)
            else:
                assert a == e, (key, name, a, e)


@pytest.fixture
def loaded(resources, warehouse):
    """Three days loaded through the pipeline, the analytics refreshed after each; the parsed rows."""
    protocols = synthetic.generate_protocols(60, seed=21)
    payload = synthetic.generate_pools(150, seed=21, protocols=protocols, day=DAYS[0])
    parsed, results = {}, {}
    for i, day in enumerate(DAYS):
        if i:
            payload = synthetic.evolve_pools(payload, seed=i, changed=0.2, new=0.05, gone=0.05)
        records = payload["data"]
        if i == 0:  # a bad row, set aside as a reject and counted in the metadata
            records = [*records, {**records[0], "pool": "not-a-pool-id"}]
        archive_payloads(warehouse, day, {**payload, "data": records}, protocols)
        parsed[day] = parse_pools(synthetic.dumps({**payload, "data": records}), day)
        results[day] = run([*warehouse_assets(), *ANALYTICS], resources, day)
        assert results[day].success
    names = {row.slug: (row.name, row.category) for row in plain(parse_protocols(synthetic.dumps(protocols), DAYS[-1]).projects)}
    return parsed, names, results


def plain(frame):
    """A DataFrame's rows with missing values as None (pandas gives NaN)."""
    return frame.astype(object).where(frame.notna(), None).itertuples()


def expected_inputs(parsed):
    """Snapshot rows per day and each pool's attributes as of the newest day it was seen."""
    attributes, snapshots = {}, {}
    for day in sorted(parsed):
        for row in plain(parsed[day].pools):
            attributes[row.pool_id] = row  # later days overwrite: the dimension keeps the newest
        snapshots[day] = {row.pool_id: row for row in plain(parsed[day].snapshots)}
    return attributes, snapshots


def median(values):
    return statistics.median(values) if values else None


def daily_stats(rows, attributes):
    apys = [r.apy for r in rows if r.apy is not None]
    tvls = [r.tvl_usd for r in rows if r.tvl_usd is not None]
    stable = [r.tvl_usd for r in rows if attributes[r.pool_id].stablecoin and r.tvl_usd is not None]
    weighted = [(r.apy, r.tvl_usd) for r in rows if r.apy is not None and r.tvl_usd is not None]
    weight = sum(t for a, t in weighted)
    return (
        len(rows),
        float(sum(tvls)) if tvls else None,
        float(sum(stable)) if stable else None,
        statistics.fmean(apys) if apys else None,
        median(apys),
        sum(a * t for a, t in weighted) / weight if weight else None,
        max(apys) if apys else None,
        sum(1 for r in rows if r.outlier),
    )


STATS = ("pool_count, total_tvl_usd, stablecoin_tvl_usd, mean_apy, median_apy, tvl_weighted_apy, max_apy, "
         "outlier_count")


def test_daily_stats_per_chain_and_project(loaded, query):
    parsed, names, _ = loaded
    _, snapshots = expected_inputs(parsed)
    expected_chain, expected_project = {}, {}
    for i, day in enumerate(DAYS):
        # Each day is aggregated when it is loaded, under the pools' attributes as of then: a project
        # renamed on a later day keeps its older days (the days were loaded in order here).
        attributes, _ = expected_inputs({d: parsed[d] for d in DAYS[:i + 1]})
        by_chain, by_project = {}, {}
        for row in snapshots[day].values():
            by_chain.setdefault(attributes[row.pool_id].chain, []).append(row)
            by_project.setdefault(attributes[row.pool_id].project, []).append(row)
        for chain, rows in by_chain.items():
            expected_chain[(day, chain)] = daily_stats(rows, attributes)
        for project, rows in by_project.items():
            name, category = names.get(project, (None, None))
            chain_count = len({attributes[r.pool_id].chain for r in rows})
            expected_project[(day, project)] = (name, category, chain_count, *daily_stats(rows, attributes))
    actual = {(r[0], r[1]): r[2:] for r in query(f"SELECT snapshot_date, chain, {STATS} FROM chain_daily_stats")}
    assert_rows(actual, expected_chain)
    actual = {(r[0], r[1]): r[2:] for r in query(
        f"SELECT snapshot_date, project, project_name, project_category, chain_count, {STATS} FROM project_daily_stats")}
    assert_rows(actual, expected_project)
    assert len({chain for _, chain in expected_chain}) > 3 and len(expected_project) > 20


def test_latest_snapshot_per_pool(loaded, query):
    parsed, names, _ = loaded
    attributes, snapshots = expected_inputs(parsed)
    expected = {}
    for day in DAYS:
        for pool_id, row in snapshots[day].items():
            a = attributes[pool_id]
            expected[pool_id] = (a.chain, a.project, names.get(a.project, (None,))[0], a.symbol, day, day == DAYS[-1],
                                 row.tvl_usd, row.apy, row.apy_base, row.apy_reward, "pools")
    actual = {r[0]: r[1:] for r in query(
        "SELECT pool_id::text, chain, project, project_name, symbol, snapshot_date, is_current, tvl_usd, apy, "
        "apy_base, apy_reward, source FROM pool_latest")}
    assert_rows(actual, expected)
    gone = [p for p, row in expected.items() if not row[5]]
    assert gone, "some pools should have disappeared before the last day"


def window(values: list[float]) -> tuple:
    values = [v for v in values if v is not None]
    return (statistics.fmean(values) if values else None,
            statistics.stdev(values) if len(values) > 1 else None,
            len(values))


def test_apy_averages_and_volatility_per_pool(loaded, query):
    parsed, _, _ = loaded
    attributes, snapshots = expected_inputs(parsed)
    as_of = DAYS[-1]
    expected = {}
    for pool_id in set().union(*(snapshots[d] for d in DAYS)):
        seen = [snapshots[d][pool_id] for d in DAYS if pool_id in snapshots[d]]
        last7 = [snapshots[d][pool_id].apy for d in DAYS if pool_id in snapshots[d] and (as_of - d).days < 7]
        apys = [r.apy for r in seen if r.apy is not None]
        today = snapshots[as_of].get(pool_id)
        expected[pool_id] = (
            attributes[pool_id].chain, as_of,
            today.apy if today is not None else None, today.tvl_usd if today is not None else None,
            *window(last7), *window([r.apy for r in seen]),
            min(apys) if apys else None, max(apys) if apys else None,
            statistics.fmean([r.tvl_usd for r in seen if r.tvl_usd is not None]),
        )
    actual = {r[0]: r[1:] for r in query(
        "SELECT pool_id::text, chain, as_of_date, apy, tvl_usd, apy_avg_7d, apy_stddev_7d, apy_days_7d, apy_avg_30d, "
        "apy_stddev_30d, apy_days_30d, apy_min_30d, apy_max_30d, tvl_avg_30d FROM pool_apy_stats")}
    assert_rows(actual, expected)
    # Day 3's 7-day window holds day 3 alone: one point, no volatility; the 30-day one holds all three.
    assert any(row[6] == 1 and row[9] == 3 for row in actual.values())

    # The rolling view gives the same figures for every day; one pool's history reads only its rows.
    pool_id = next(p for p in expected if all(p in snapshots[d] for d in DAYS))
    rows = query("SELECT snapshot_date, apy_avg_7d, apy_stddev_7d, apy_days_7d, apy_avg_30d, apy_stddev_30d, "
                 "apy_days_30d FROM pool_apy_rolling WHERE pool_id = %s ORDER BY snapshot_date", (pool_id,))
    want = []
    for day in DAYS:
        apys7 = [snapshots[d][pool_id].apy for d in DAYS if d <= day and (day - d).days < 7]
        apys30 = [snapshots[d][pool_id].apy for d in DAYS if d <= day and (day - d).days < 30]
        want.append((day, *window(apys7), *window(apys30)))
    for got, exp in zip(rows, want, strict=True):
        assert got[0] == exp[0] and all(close(a, e) if isinstance(e, float) else a == e
                                        for a, e in zip(got[1:], exp[1:])), (got, exp)
    assert query("SELECT count(*) FROM pool_apy_rolling") == query("SELECT count(*) FROM pool_snapshots")


def test_plain_views_read_through_the_primary_key(loaded, query, warehouse):
    pool_id = query("SELECT pool_id::text FROM pools LIMIT 1")[0][0]

    def plan(sql: str, params: tuple = ()) -> str:
        with warehouse.connection() as conn, conn.cursor() as cur:
            cur.execute(f'SET LOCAL search_path TO "{warehouse.schema_name}"')
            cur.execute("SET LOCAL enable_seqscan = off")  # tiny tables: make the planner show what it can do
            cur.execute("EXPLAIN " + sql, params)
            return "\n".join(r[0] for r in cur.fetchall())

    # The pool filter goes below the window functions, into the primary key's index.
    assert "Index Cond: (pool_id = " in plan("SELECT * FROM pool_apy_rolling WHERE pool_id = %s", (pool_id,))
    # pool_latest is a table: reading it scans 17,000 rows, never the snapshots.
    assert "pool_snapshots" not in plan("SELECT * FROM pool_latest")


def test_assets_report_row_counts_and_figures(loaded, query):
    _, _, results = loaded
    last = DAYS[-1]
    events = {e.asset_key.to_user_string(): e.materialization.metadata
              for e in results[last].get_asset_materialization_events()}
    for view in analytics.VIEWS:
        meta = events[view.name]
        # Per-day relations report the day's rows; the others (one row per pool) all of theirs.
        per_day = "snapshot_date" in view.unique_key
        rows = query(f"SELECT count(*) FROM {view.name}" + (" WHERE snapshot_date = %s" if per_day else ""),
                     (last,) if per_day else ())[0][0]
        assert meta["dagster/row_count"].value == rows > 0, view.name
        if view.kind != analytics.VIEW:
            assert meta["refresh_seconds"].value >= 0
    chains_on_day = query("SELECT count(*), sum(total_tvl_usd) FROM chain_daily_stats WHERE snapshot_date = %s",
                          (last,))[0]
    assert events["chain_daily_stats"]["chain_count"].value == chains_on_day[0]
    assert events["chain_daily_stats"]["total_tvl_usd"].value == pytest.approx(chains_on_day[1])
    assert events["pool_apy_stats"]["as_of_date"].value == last.isoformat()
    assert events["pool_latest"]["current_pools"].value == query(
        "SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (last,))[0][0]
    # Plots of the warehouse itself: pool_snapshots reports its figures per partition, rejects included.
    snap = events["pool_snapshots"]
    assert snap["pool_count"].value == query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s",
                                             (last,))[0][0]
    for day in DAYS:
        meta = next(e for e in results[day].get_asset_materialization_events()
                    if e.asset_key.to_user_string() == "pool_snapshots").materialization.metadata
        assert meta["rejected"].value == query(
            "SELECT count(*) FROM rejects WHERE asset = 'pool_snapshots' AND partition_date = %s", (day,))[0][0]
    assert query("SELECT count(*) FROM rejects WHERE asset = 'pool_snapshots' AND partition_date = %s",
                 (DAYS[0],))[0][0] > 0
    for name in ("total_tvl_usd", "median_apy"):
        assert isinstance(snap[name].value, float)


def test_views_match_their_declared_column_schema(warehouse, query):
    pg_types = {"float": "double precision"}
    for view in analytics.VIEWS:
        rows = query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), c.relkind FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (warehouse.schema_name, view.name),
        )
        assert rows and rows[0][2] == {"table": "r", "view": "v"}[view.kind], view.name
        declared = [(c.name, pg_types.get(c.type, c.type)) for c in view.columns]
        assert [(name, type_) for name, type_, _ in rows] == declared, view.name


def _refresh(warehouse, view, days):
    with warehouse.connection() as conn, conn.cursor() as cur:
        return analytics.refresh_on(cur, view, warehouse.schema_name, days)


def test_refresh_of_an_empty_warehouse_and_missing_views(warehouse, query):
    for view in analytics.VIEWS:
        meta = _refresh(warehouse, view, (DAYS[0],)).per_day[DAYS[0]]
        assert meta["dagster/row_count"] == 0, view.name
    query("DROP TABLE pool_apy_stats")
    with pytest.raises(dg.Failure, match="alembic upgrade head"):
        _refresh(warehouse, analytics.VIEWS[-1], (DAYS[0],))


@pytest.fixture
def defs(monkeypatch) -> dg.Definitions:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs as load

    return load()


def test_every_asset_is_described_and_its_column_lineage_points_at_real_upstream_columns(defs):
    graph = defs.resolve_asset_graph()
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    for key, spec in specs.items():
        name = key.to_user_string()
        assert spec.description and spec.group_name and spec.kinds and spec.owners, name
        assert isinstance(spec.metadata.get("dagster/column_schema"), dg.TableSchema), name
    lineage_of = {key: spec.metadata.get("dagster/column_lineage") for key, spec in specs.items()}
    datasets = {"lend_borrow_snapshots", "lend_borrow_history", "chain_metadata", "chain_tvl_daily",
                "protocol_tvl_daily", "project_renames"}
    expected = {"chains", "projects", "pools", "pool_snapshots", *(v.name for v in analytics.VIEWS), *datasets}
    assert {k.to_user_string() for k, v in lineage_of.items() if v is not None} == expected
    for key, column_lineage in lineage_of.items():
        if column_lineage is None:
            continue
        own = {c.name for c in specs[key].metadata["dagster/column_schema"].columns}
        parents = graph.get(key).parent_keys
        for column, deps in column_lineage.deps_by_column.items():
            assert column in own, (key, column)
            for dep in deps:
                assert dep.asset_key in parents, (key, column, dep)
                upstream = {c.name for c in specs[dep.asset_key].metadata["dagster/column_schema"].columns}
                assert dep.column_name in upstream, (key, column, dep)
    # Snapshot metrics lead back to the API's fields.
    tvl = lineage_of[dg.AssetKey("pool_snapshots")].deps_by_column["tvl_usd"]
    assert dg.TableColumnDep(asset_key=dg.AssetKey("raw_pools"), column_name="tvlUsd") in tvl
    # So do the datasets' (their raw assets describe the API record, like raw_pools), and their keys
    # lead to the shared dimensions.
    borrow = lineage_of[dg.AssetKey("lend_borrow_snapshots")].deps_by_column
    assert borrow["apy_base_borrow"] == [dg.TableColumnDep(asset_key=dg.AssetKey("raw_lend_borrow"),
                                                           column_name="apyBaseBorrow")]
    assert dg.TableColumnDep(asset_key=dg.AssetKey("pools"), column_name="pool_id") in borrow["pool_id"]
    assert lineage_of[dg.AssetKey("chain_metadata")].deps_by_column["token_symbol"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey("raw_chain_list"), column_name="tokenSymbol")]
    assert lineage_of[dg.AssetKey("chain_tvl_daily")].deps_by_column["chain"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey("chain_metadata"), column_name="name")]
    assert lineage_of[dg.AssetKey("protocol_tvl_daily")].deps_by_column["slug"] == [
        dg.TableColumnDep(asset_key=dg.AssetKey("projects"), column_name="slug")]
    for raw in ("raw_lend_borrow", "raw_chain_list"):
        assert specs[dg.AssetKey(raw)].metadata["archive_schema"].columns, raw
    # The graph reads left to right: raw -> dimensions -> snapshots -> analytics; the datasets beside the
    # yields read the raw payloads and the dimensions, and nothing of the yields reads them.
    groups = {"ingestion": 0, "warehouse": 1, "lend_borrow": 1.5, "chain_tvl": 1.5, "protocol_tvl": 1.5,
              "analytics": 2}
    for key in graph.get_all_asset_keys():
        for parent in graph.get(key).parent_keys:
            assert groups[specs[parent].group_name] <= groups[specs[key].group_name], (parent, key)
    for view in analytics.VIEWS:
        assert specs[dg.AssetKey(view.name)].group_name == "analytics"
        assert set(specs[dg.AssetKey(view.name)].kinds) == {"postgres", "sql"}


def test_views_refresh_by_themselves_after_a_table_is_loaded_alone(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs as load
    from llama_pipeline.partitions import utc_today

    defs = load()
    assert defs.resolve_sensor_def("analytics_automation").default_status == dg.DefaultSensorStatus.RUNNING
    instance = dg.DagsterInstance.ephemeral()
    today = utc_today().isoformat()
    views = {"pool_latest", "pool_apy_rolling", "chain_daily_stats", "project_daily_stats", "pool_apy_stats"}

    def loaded(*names: str) -> None:
        for name in names:
            instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=today))

    # Today's whole graph loaded by the daily run, views included: nothing more to do.
    loaded("raw_pools", "raw_protocols", "raw_pool_charts", "chains", "projects", "pools", "pool_snapshots", *views)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0
    # pool_snapshots reloaded alone (e.g. from the CLI): the views of today are requested.
    loaded("pool_snapshots")
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert {r.key.to_user_string() for r in second.results if r.true_subset.size} >= {
        "pool_latest", "chain_daily_stats", "pool_apy_stats"}
    # An older day reloaded alone: the per-day tables of that day are requested too (later days do not
    # recompute it).
    for name in views:
        instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=today))
    older = (utc_today() - dt.timedelta(days=40)).isoformat()
    for name in ("raw_pools", "raw_protocols", "raw_pool_charts", "chains", "projects", "pools", "pool_snapshots",
                 *views):
        instance.report_runless_asset_event(dg.AssetMaterialization(name, partition=older))
    third = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
    instance.report_runless_asset_event(dg.AssetMaterialization("pool_snapshots", partition=older))
    fourth = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=third.cursor)
    requested = {(r.key.to_user_string(), key) for r in fourth.results for key in r.true_subset.expensively_compute_partition_keys()}
    assert ("chain_daily_stats", older) in requested and ("pool_latest", older) in requested


def test_analytics_tables_stay_right_when_an_older_day_is_loaded_after_a_newer_one(resources, warehouse, query):
    protocols = synthetic.generate_protocols(40, seed=5)
    older = synthetic.generate_pools(80, seed=5, protocols=protocols, day=DAYS[0])
    newer = synthetic.evolve_pools(older, seed=6, changed=0.1, new=0.1, gone=0.1)
    archive_payloads(warehouse, DAYS[1], newer, protocols)
    archive_payloads(warehouse, DAYS[0], older, protocols)
    assert run([*warehouse_assets(), *ANALYTICS], resources, DAYS[1]).success
    before = query("SELECT * FROM pool_latest ORDER BY pool_id")
    stats_newer = query("SELECT * FROM chain_daily_stats WHERE snapshot_date = %s ORDER BY chain", (DAYS[1],))

    # The backfill of the older day adds its own rows and leaves the newer day's alone.
    assert run([*warehouse_assets(), *ANALYTICS], resources, DAYS[0]).success
    assert query("SELECT * FROM chain_daily_stats WHERE snapshot_date = %s ORDER BY chain", (DAYS[1],)) == stats_newer
    assert query("SELECT count(DISTINCT snapshot_date) FROM chain_daily_stats") == [(2,)]
    gone = {r[0] for r in query("SELECT pool_id::text FROM pool_snapshots WHERE snapshot_date = %s EXCEPT "
                                "SELECT pool_id::text FROM pool_snapshots WHERE snapshot_date = %s", (DAYS[0], DAYS[1]))}
    assert gone
    latest = {r[0]: (r[1], r[2]) for r in query("SELECT pool_id::text, snapshot_date, is_current FROM pool_latest")}
    # Every pool's newest snapshot: the newer day, except for the pools only the older day has.
    expected = {r[0]: r[1] for r in query("SELECT pool_id::text, max(snapshot_date) FROM pool_snapshots GROUP BY 1")}
    assert {p: day for p, (day, _) in latest.items()} == expected
    assert all(current == (day == DAYS[1]) for day, current in latest.values())
    assert {p for p, (day, _) in latest.items() if day == DAYS[0]} == gone
    # The other pools read as before the backfill (the newest day's attributes and snapshot), except that
    # first_seen_date now goes back to the older day, as in pools.
    after = {r[0]: r for r in query("SELECT * FROM pool_latest ORDER BY pool_id")}
    first_seen = [c.name for c in analytics.VIEWS[0].columns].index("first_seen_date")
    assert [after[r[0]][:first_seen] + after[r[0]][first_seen + 1:] for r in before] == [
        r[:first_seen] + r[first_seen + 1:] for r in before]
    assert query("SELECT count(*) FROM pool_latest l JOIN pools p USING (pool_id) WHERE (l.first_seen_date, "
                 "l.last_seen_date) IS DISTINCT FROM (p.first_seen_date, p.last_seen_date)") == [(0,)]
    assert query("SELECT count(*) FROM pool_latest WHERE first_seen_date = %s", (DAYS[0],))[0][0] > 0


def _two_days_then_the_second_without_a_pool(resources, warehouse, query) -> str:
    """Load two days with the same 40 pools, then store the second day's payload again without one of
    them (today fetched again, say); return that pool's id."""
    protocols = synthetic.generate_protocols(30, seed=9)
    payload = synthetic.generate_pools(40, seed=9, protocols=protocols, day=DAYS[0])
    for day in DAYS[:2]:
        archive_payloads(warehouse, day, payload, protocols)
        assert run([*warehouse_assets(), *ANALYTICS], resources, day).success
    dropped = payload["data"][5]["pool"]
    assert query("SELECT snapshot_date, is_current FROM pool_latest WHERE pool_id = %s", (dropped,)) == [
        (DAYS[1], True)]
    archive_payloads(warehouse, DAYS[1], {**payload, "data": [r for r in payload["data"] if r["pool"] != dropped]},
                     protocols)
    return dropped


def test_a_pool_a_reloaded_day_no_longer_has_falls_back_to_its_previous_snapshot(resources, warehouse, query):
    dropped = _two_days_then_the_second_without_a_pool(resources, warehouse, query)
    assert run([*warehouse_assets(), *ANALYTICS], resources, DAYS[1]).success
    assert query("SELECT snapshot_date, is_current FROM pool_latest WHERE pool_id = %s", (dropped,)) == [
        (DAYS[0], False)]
    assert query("SELECT count(*), count(*) FILTER (WHERE is_current) FROM pool_latest") == [(40, 39)]


def test_a_range_reloading_a_day_that_lost_a_pool_takes_its_newest_remaining_snapshot(resources, warehouse, query):
    dropped = _two_days_then_the_second_without_a_pool(resources, warehouse, query)
    result = dg.materialize([*all_assets(), *ANALYTICS], selection=asset_keys([*warehouse_assets(), *ANALYTICS]),
                            resources=resources, tags={"dagster/asset_partition_range_start": DAYS[0].isoformat(),
                                                       "dagster/asset_partition_range_end": DAYS[1].isoformat()})
    assert result.success
    assert query("SELECT snapshot_date, is_current FROM pool_latest WHERE pool_id = %s", (dropped,)) == [
        (DAYS[0], False)]
    assert query("SELECT count(*) FROM pool_latest") == [(40,)]


def test_an_old_partition_leaves_the_as_of_newest_tables_as_of_the_newest_day(resources, warehouse, query):
    """pool_latest and pool_apy_stats describe the newest stored day whatever partition runs: an old day
    loaded later is not written into them under its own label, and their metadata names the day they are
    as of."""
    protocols = synthetic.generate_protocols(30, seed=13)
    newest = synthetic.generate_pools(60, seed=13, protocols=protocols, day=DAYS[2])
    old = DAYS[2] - dt.timedelta(days=45)  # outside the 30-day window that ends on the newest day
    within = DAYS[2] - dt.timedelta(days=3)
    archive_payloads(warehouse, DAYS[2], newest, protocols)
    archive_payloads(warehouse, old, synthetic.evolve_pools(newest, seed=1, changed=0.5, new=0, gone=0), protocols)
    archive_payloads(warehouse, within, synthetic.evolve_pools(newest, seed=2, changed=0.5, new=0, gone=0), protocols)
    assert run([*warehouse_assets(), *ANALYTICS], resources, DAYS[2]).success
    stats = query("SELECT xmin::text, * FROM pool_apy_stats ORDER BY pool_id")
    latest = query("SELECT xmin::text, * FROM pool_latest ORDER BY pool_id")

    result = run([*warehouse_assets(), *ANALYTICS], resources, old)
    assert result.success
    events = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    # Nothing the old day can change: the rows are not even rewritten (same row versions).
    assert query("SELECT xmin::text, * FROM pool_apy_stats ORDER BY pool_id") == stats
    first_seen = 1 + [c.name for c in analytics.VIEWS[0].columns].index("first_seen_date")
    strip = lambda rows: [r[1:first_seen] + r[first_seen + 1:] for r in rows]  # noqa: E731
    assert strip(query("SELECT xmin::text, * FROM pool_latest ORDER BY pool_id")) == strip(latest)
    for name in ("pool_apy_stats", "pool_latest"):
        meta = events[name]
        assert meta["as_of_date"].value == DAYS[2].isoformat() and meta["partition_is_as_of_date"].value is False
        assert DAYS[2].isoformat() in meta["as_of"].value and old.isoformat() in meta["as_of"].value
    assert events["pool_apy_stats"]["rows_written"].value == 0

    # A day inside the window does change the newest day's figures: recomputed, still as of the newest day.
    result = run([*warehouse_assets(), *ANALYTICS], resources, within)
    assert result.success
    assert query("SELECT DISTINCT as_of_date FROM pool_apy_stats") == [(DAYS[2],)]
    assert query("SELECT min(apy_days_30d), max(apy_days_30d) FROM pool_apy_stats") == [(2, 2)]
    meta = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert meta["pool_apy_stats"]["rows_written"].value == 60 and meta["pool_apy_stats"]["as_of_date"].value == DAYS[2].isoformat()


def test_a_failed_refresh_leaves_every_analytics_relation_as_it_was(resources, warehouse, query):
    """The relations are refreshed together and committed together: one that fails (here a table a
    migration should have made is gone) rolls back the others' work of the run, on either connection."""
    protocols = synthetic.generate_protocols(30, seed=17)
    payload = synthetic.generate_pools(50, seed=17, protocols=protocols, day=DAYS[0])
    archive_payloads(warehouse, DAYS[0], payload, protocols)
    archive_payloads(warehouse, DAYS[1], synthetic.evolve_pools(payload, seed=3, changed=0.5), protocols)
    assert run([*warehouse_assets(), *ANALYTICS], resources, DAYS[0]).success
    tables = ("pool_latest", "chain_daily_stats", "project_daily_stats")
    before = {name: query(f"SELECT xmin::text, * FROM {name} ORDER BY 2, 3") for name in tables}
    query("DROP TABLE pool_apy_stats")

    result = dg.materialize([*all_assets(), *ANALYTICS], selection=asset_keys([*warehouse_assets(), *ANALYTICS]),
                            resources=resources, partition_key=DAYS[1].isoformat(), raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "pool_apy_stats is missing" in str(failure.event_specific_data.error)
    assert query("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (DAYS[1],))[0][0] > 0
    assert {name: query(f"SELECT xmin::text, * FROM {name} ORDER BY 2, 3") for name in tables} == before
    assert not {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} & {
        view.name for view in analytics.VIEWS}
