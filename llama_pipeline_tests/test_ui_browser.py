"""The Dagster UI in a real browser: Debian's Chromium, headless, driven by Playwright.

A ``dagster-webserver`` on 127.0.0.1 (free port) serves the repository's workspace against a throwaway
instance (DAGSTER_HOME in a temporary folder; runs and events in PostgreSQL through dagster-postgres,
in a database of their own on the test server; default run coordinator and launcher, so a run
launched from the UI starts without a daemon) and a throwaway warehouse schema, with SOURCE_URL and
PROTOCOLS_URL on a local payload server serving small synthetic payloads.

The test opens the global asset graph and checks every asset and every edge, launches today's
partition of the whole graph from the UI, waits for the run's success, and checks the partitions view.
Screenshots go to ``test-artifacts/ui/`` (or ``$LLAMA_TEST_ARTIFACTS/ui``).

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``; another binary via
``LLAMA_CHROMIUM``) and the ``playwright`` Python package; nothing is downloaded (no
``playwright install``). Without either, the test is skipped and says which is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import time
from pathlib import Path

import pytest

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic, synthetic_datasets
from llama_pipeline_tests.testing.payload_server import PayloadServer
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline_tests.run_timing import RunTiming, run_timing
from llama_pipeline_tests.ui_graph import GRAPH_JS, edges_drawn, expected_graph, shown_name
from llama_pipeline_tests.ui_server import (
    ROOT,
    dagster_database,
    dagster_webserver,
    run_failure_details,
)

CHROMIUM = os.environ.get("LLAMA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("LLAMA_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
RUN_TIMEOUT = 600  # seconds; generous: a whole-graph run from the UI takes well under a minute


def _missing() -> str | None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return (f"Chromium not found at {CHROMIUM}: install Debian's package (apt-get install chromium) "
                "or point LLAMA_CHROMIUM at a Chromium binary")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright; no browser download needed)"
    return None


needs_browser = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


SCREENSHOTS = ("01_asset_graph.png", "02_launch_dialog.png", "03_runs.png", "04_pool_snapshots_partitions.png")


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("[0-9][0-9]_*.png"):  # this test's screenshots from an earlier run
        old.unlink(missing_ok=True)
    return ARTIFACTS


@needs_browser
def test_asset_graph_launch_today_and_partitions_view(server_url, database_url, schema_name, query_schema,
                                                     artifacts, monkeypatch, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    names, edges = expected_graph(monkeypatch)
    assert {"raw_pools", "pool_snapshots", "chain_daily_stats"} <= names
    today = utc_today()
    protocols = synthetic.generate_protocols(30, seed=17)
    pools = synthetic.generate_pools(40, seed=17, protocols=protocols, day=today)
    loaded_pools = len(parse_pools(synthetic.dumps(pools), today).snapshots)

    with PayloadServer() as http, dagster_database(server_url) as dagster_pg_url:
        http.set("/pools", synthetic.dumps(pools))
        http.set("/protocols", synthetic.dumps(protocols))
        synthetic_datasets.serve(http, pools, lending=20, chains=20, chain_days=30, protocol_days=30)
        env = {"DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name,
               **synthetic_datasets.source_settings(http)}
        with dagster_webserver(tmp_path / "dagster_home", dagster_pg_url, env, daemon=True) as ui, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # tall enough for every group of the expanded graph: the UI draws only the nodes in view
            page = browser.new_page(viewport={"width": 2400, "height": 2400})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=30_000)  # assertions too: the UI answers slowly on a loaded machine
            shot = 0

            def screenshot(name: str) -> None:
                nonlocal shot
                shot += 1
                page.screenshot(path=str(artifacts / f"{shot:02d}_{name}.png"))

            try:
                # -- the asset graph: every asset, every edge, left to right ---------------------------
                page.goto(ui.url + "/asset-groups", wait_until="networkidle")
                page.locator("foreignObject.group").first.wait_for()
                page.locator("[aria-label=settings]").last.click()
                page.get_by_role("menuitem", name=re.compile("Expand all groups")).click()
                page.keyboard.press("Escape")
                # Wait for the expanded layout to settle: the same drawing twice, with every asset in it.
                deadline, previous = time.monotonic() + 60, None
                while time.monotonic() < deadline:
                    graph = page.evaluate(GRAPH_JS)
                    if graph == previous and len(graph["nodes"]) == len(names) and len(graph["edges"]) == len(edges):
                        break
                    previous = graph
                    time.sleep(1)
                screenshot("asset_graph")
                assert {shown_name(n["label"], names) for n in graph["nodes"]} == names
                assert edges_drawn(graph, names) == edges
                for group in ("ingestion", "warehouse", "analytics"):
                    expect(page.locator("foreignObject.group", has_text=group).first).to_be_visible()

                # -- launch today's partition of the whole graph from the UI ---------------------------
                page.get_by_role("button", name=re.compile("Materialize all")).click()
                dialog = page.get_by_role("dialog")
                expect(dialog).to_contain_text(f"Launch runs to materialize {len(names)} assets")
                dialog.get_by_role("button", name="Latest", exact=True).click()
                expect(dialog.locator("input").first).to_have_value(today.isoformat())
                expect(dialog).to_contain_text("1 partition")
                screenshot("launch_dialog")
                dialog.get_by_role("button", name=re.compile(r"Launch 1 run")).click()
                expect(dialog).to_be_hidden(timeout=60_000)  # launching waits on the server: slow on a loaded machine

                # -- wait for the run to succeed, as the runs page shows it -----------------------------
                page.goto(ui.url + "/runs", wait_until="networkidle")
                # The runs table is virtualized (div rows); the newest run comes first.
                status = page.locator("[class*=VirtualizedTable_row]", has=page.locator('a[href^="/runs/"]')).first
                deadline = time.monotonic() + RUN_TIMEOUT
                while True:
                    text = status.inner_text() if status.count() else ""
                    if re.search(r"\bSuccess\b|\bFailure\b|\bCanceled\b", text):
                        break
                    assert time.monotonic() < deadline, f"the run did not finish in {RUN_TIMEOUT} s:\n{ui.log_tail()}"
                    time.sleep(3)
                    page.reload(wait_until="networkidle")
                screenshot("runs")
                assert "Success" in text, f"the run did not succeed: {text}\n{run_failure_details(ui.dagster_home)}"
                assert f"partition: {today.isoformat()}" in text
                record_timing(ui.dagster_home, artifacts, "ui_one_day_run")

                # -- the partitions view shows today's partition materialized ---------------------------
                page.goto(ui.url + "/assets/pool_snapshots?view=partitions", wait_until="networkidle")
                expect(page.get_by_text("Materialized (1)")).to_be_visible()
                expect(page.get_by_text("Failed (0)")).to_be_visible()
                # Today's partition selected: its materialization's metadata (the numbers the plots use).
                page.goto(ui.url + f"/assets/pool_snapshots?view=partitions&partition={today.isoformat()}",
                          wait_until="networkidle")
                expect(page.get_by_text("pool_count", exact=True).first).to_be_visible()
                expect(page.get_by_text("No partition selected")).to_be_hidden()
                screenshot("pool_snapshots_partitions")
            except Exception:
                screenshot("failure")
                raise
            finally:
                browser.close()

    # What the run wrote, as the warehouse has it.
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (today,)) == [(loaded_pools,)]
    assert query_schema("SELECT count(*) FROM pool_latest WHERE is_current") == [(loaded_pools,)]
    assert query_schema("SELECT sum(pool_count) FROM chain_daily_stats WHERE snapshot_date = %s",
                        (today,)) == [(loaded_pools,)]
    assert all((artifacts / name).stat().st_size > 10_000 for name in SCREENSHOTS)


DAY_SIZES = (40, 55, 30)  # pools on each day of the backfilled range: the days must not look alike


def _wait_for_backfill(dagster_home: Path, timeout: float = RUN_TIMEOUT):
    """The instance's newest backfill, once it and its runs are done."""
    from dagster import DagsterInstance, RunsFilter
    from dagster._core.execution.backfill import BulkActionStatus

    deadline = time.monotonic() + timeout
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        while True:
            backfill = instance.get_backfills(limit=1)[0]
            runs = instance.get_runs(filters=RunsFilter.for_backfill(backfill.backfill_id))
            if backfill.status != BulkActionStatus.REQUESTED and runs and all(r.is_finished for r in runs):
                return backfill, runs
            assert time.monotonic() < deadline, f"backfill {backfill.backfill_id} not done in {timeout} s"
            time.sleep(2)


@needs_browser
def test_range_backfill_shows_each_days_figures_and_checks_and_an_empty_day_fails(
        server_url, database_url, schema_name, query_schema, monkeypatch, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from llama_pipeline.write.warehouse import Warehouse
    from llama_pipeline_tests.conftest import archive_payloads

    names, _ = expected_graph(monkeypatch)
    today = utc_today()
    days = [today - dt.timedelta(days=n) for n in (5, 4, 3)]
    empty = today - dt.timedelta(days=2)  # neither a stored payload nor chart history
    protocols = synthetic.generate_protocols(30, seed=19)
    payloads = {day: synthetic.generate_pools(n, seed=19, protocols=protocols, day=day) for day, n in zip(days, DAY_SIZES)}
    artifacts = ARTIFACTS
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("days_*.png"):
        old.unlink(missing_ok=True)

    with PayloadServer() as http, dagster_database(server_url) as dagster_pg_url:
        # Today's endpoints are served but never asked for (the days are past); charts are unknown (404).
        synthetic_datasets.serve(http, payloads[days[-1]], lending=20, chains=20, chain_days=30, protocol_days=30)
        env = {"DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name,
               **synthetic_datasets.source_settings(http)}
        warehouse = Warehouse(database_url=database_url, schema_name=schema_name)
        warehouse.setup_for_execution(None)  # the tables, so that the days' payloads can be stored
        for day, payload in payloads.items():
            archive_payloads(warehouse, day, payload, protocols)
        with dagster_webserver(tmp_path / "dagster_home", dagster_pg_url, env, daemon=True) as ui, \
                sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(60_000)
            expect.set_options(timeout=30_000)  # assertions too: the UI answers slowly on a loaded machine

            def screenshot(name: str) -> None:
                page.screenshot(path=str(artifacts / f"days_{name}.png"))

            def launch(partitions: str, shot: str) -> None:
                page.goto(ui.url + "/asset-groups", wait_until="networkidle")
                page.get_by_role("button", name=re.compile("Materialize all")).click()
                dialog = page.get_by_role("dialog")
                expect(dialog).to_contain_text(f"Launch runs to materialize {len(names)} assets")
                field = dialog.locator("input:not([type=checkbox])").first  # the partition range input
                field.fill(partitions)
                field.press("Enter")
                screenshot(shot)
                dialog.get_by_role("button", name=re.compile(r"^Launch (backfill|1 run)$")).click()
                expect(dialog).to_be_hidden(timeout=60_000)  # launching waits on the server: slow on a loaded machine

            try:
                # -- a 3-day range, launched as Dagster launches a backfill (one run: single_run) -----
                launch(f"[{days[0].isoformat()}...{days[-1].isoformat()}]", "01_launch_range")
                backfill, runs = _wait_for_backfill(ui.dagster_home)
                assert len(runs) == 1 and runs[0].status.value == "SUCCESS", run_failure_details(ui.dagster_home)
                page.goto(ui.url + f"/runs/b/{backfill.backfill_id}?tab=partitions", wait_until="networkidle")
                screenshot("02_backfill")

                # -- each day's partition page shows that day's own figures ----------------------------
                for n, (day, size) in enumerate(zip(days, DAY_SIZES)):
                    page.goto(ui.url + f"/assets/pool_snapshots?view=partitions&partition={day.isoformat()}",
                              wait_until="networkidle")
                    for key in ("pool_count", "dagster/row_count"):
                        row = page.locator("tr", has=page.get_by_text(key, exact=True)).first
                        expect(row).to_contain_text(str(size))
                    screenshot(f"03_pool_snapshots_{n}_{day.isoformat()}")
                page.goto(ui.url + "/assets/pool_snapshots?view=checks", wait_until="networkidle")
                # (Its "latest execution" may be the daemon's capture sensor's run of today, so the days'
                # results are read by their keys below.)
                expect(page.get_by_text("counts_add_up").first).to_be_visible()
                screenshot("04_pool_snapshots_checks")
                page.locator("button[role=tab]", has_text="Partitions").click()  # the check's own tab
                expect(page.get_by_text("Loading partitions...")).to_be_hidden(timeout=60_000)
                page.wait_for_load_state("networkidle")
                screenshot("04_counts_add_up_partitions")
                # Each day's own result, as the instance the UI reads stores it.
                for day, size in zip(days, DAY_SIZES):
                    result = check_result(ui.dagster_home, "pool_snapshots", "counts_add_up", day)
                    assert result.status.value == "SUCCEEDED" and \
                        result.event.dagster_event.event_specific_data.metadata["rows_loaded"].value == size
                rows = query_schema("SELECT snapshot_date, count(*) FROM pool_snapshots GROUP BY 1 ORDER BY 1")
                assert rows == list(zip(days, DAY_SIZES))

                # -- a day with nothing to load fails, saying why; it is not green -----------------------
                launch(empty.isoformat(), "05_launch_empty_day")
                page.goto(ui.url + "/runs", wait_until="networkidle")
                deadline = time.monotonic() + RUN_TIMEOUT
                status = page.locator("[class*=VirtualizedTable_row]", has=page.locator('a[href^="/runs/"]')).first
                while not re.search(r"\bSuccess\b|\bFailure\b", status.inner_text() if status.count() else ""):
                    assert time.monotonic() < deadline, ui.log_tail()
                    time.sleep(3)
                    page.reload(wait_until="networkidle")
                assert "Failure" in status.inner_text()
                status.locator('a[href^="/runs/"]').first.click()
                page.wait_for_load_state("networkidle")
                expect(page.get_by_text(f"{empty.isoformat()}: neither a stored /pools payload").first).to_be_visible()
                expect(page.get_by_text("raw_pools (nothing to load) failed for 1 of 1 day(s)").first).to_be_visible()
                screenshot("06_failed_run")
                # (The daemon's capture sensor may also try today, which this server does not serve: so the
                # day is looked up by its key, not by the count of failed days.)
                # raw_pools too: raw_pool_charts ran first in the run and found no point for the day (its
                # charts are unknown here), so raw_pools failed it before the warehouse step.
                for asset in ("raw_pools", "chains", "pool_snapshots"):
                    page.goto(ui.url + f"/assets/{asset}?view=partitions&partition={empty.isoformat()}",
                              wait_until="networkidle")
                    expect(page.get_by_text("Materialized (3)")).to_be_visible()
                    expect(page.get_by_text(re.compile(r"^Failed \(\d+\)$"))).to_be_visible()
                    screenshot(f"07_{asset}_partitions")
                    assert failed_without_materialization(ui.dagster_home, asset, empty), asset
            except Exception:
                screenshot("failure")
                raise
            finally:
                browser.close()

    # The day with nothing stays empty everywhere; the three days are as loaded.
    assert query_schema("SELECT count(*) FROM pool_snapshots WHERE snapshot_date = %s", (empty,)) == [(0,)]
    assert query_schema("SELECT count(*) FROM pools") == [(max(DAY_SIZES),)]


def failed_without_materialization(dagster_home: Path, asset: str, day: dt.date) -> bool:
    """Dagster never recorded the day as materialized for ``asset`` (the UI shows it failed)."""
    from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

    records = AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[day.isoformat()])
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return not instance.fetch_materializations(records, limit=1).records


def check_result(dagster_home: Path, asset: str, check: str, day: dt.date):
    """A daily check's latest execution for one day."""
    from dagster import AssetCheckKey, AssetKey, DagsterInstance
    from dagster._core.event_api import PartitionKeyFilter

    key = AssetCheckKey(AssetKey(asset), check)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        return instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=day.isoformat()))[key]


def record_timing(dagster_home: Path, artifacts: Path, name: str) -> RunTiming:
    """The latest run's launch-to-success time and its breakdown, kept beside the screenshots (a figure,
    not an assertion: speed is measured by benchmarks/ui_run.py)."""
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        timing = run_timing(instance, instance.get_runs(limit=1)[0].run_id)
    (artifacts / f"{name}.json").write_text(json.dumps(timing.as_dict(), indent=2))
    print(f"{name}: {timing.summary()}")
    return timing


@pytest.fixture
def query_schema(database_url, schema_name):
    """SQL against the schema the webserver's runs write to (created by their migration)."""
    import contextlib

    import psycopg2

    def run(sql: str, params: tuple = ()) -> list[tuple]:
        with contextlib.closing(psycopg2.connect(database_url)) as conn, conn, conn.cursor() as cur:
            cur.execute(f'SET LOCAL search_path TO "{schema_name}"')
            cur.execute(sql, params)
            return cur.fetchall()

    return run


def test_edges_are_read_from_node_geometry():
    names = {"a", "b", "project_daily_stats"}
    graph = {
        "nodes": [{"label": "a", "x": 0, "y": 0, "w": 100, "h": 50},
                  {"label": "b", "x": 200, "y": 0, "w": 100, "h": 50},
                  {"label": "project_dai…_stats", "x": 400, "y": 100, "w": 100, "h": 50}],
        "edges": ["M100,25C150,25,150,25,195,25", "M300,25C350,25,350,125,395,125"],
    }
    assert edges_drawn(graph, names) == {("a", "b"), ("b", "project_daily_stats")}
    with pytest.raises(AssertionError):
        shown_name("proj…stats_x", names)
