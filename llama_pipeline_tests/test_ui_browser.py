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

import os
import re
import time
from pathlib import Path

import pytest

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic, synthetic_datasets
from llama_pipeline_tests.testing.payload_server import PayloadServer
from llama_pipeline.transform.pools import parse_pools
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


def expected_graph(monkeypatch) -> tuple[set[str], set[tuple[str, str]]]:
    """Every asset of the code location and every (upstream, downstream) edge, from the definitions."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    edges = {(p.to_user_string(), k.to_user_string()) for k in keys for p in graph.get(k).parent_keys}
    return {k.to_user_string() for k in keys}, edges


def shown_name(label: str, names: set[str]) -> str:
    """The asset a node label stands for: zoomed out, the UI shortens long names to 'project_dai…_stats'."""
    if label in names:
        return label
    head, sep, tail = label.partition("…")
    matches = [n for n in names if sep and n.startswith(head) and n.endswith(tail)]
    assert len(matches) == 1, f"node label {label!r} matches {matches}"
    return matches[0]


# Asset nodes (foreignObjects holding an asset name) and edges (paths ending in an arrow marker), in the
# graph's SVG coordinates.
_GRAPH_JS = """() => {
  const svg = document.querySelector('svg[class*=svgContainer]');
  if (!svg) return {nodes: [], edges: []};
  const nodes = [...svg.querySelectorAll('foreignObject')].flatMap(fo => {
    const name = fo.querySelector('[class*=assetName]');
    if (!name) return [];
    const n = k => parseFloat(fo.getAttribute(k));
    return [{label: name.textContent.trim(), x: n('x'), y: n('y'), w: n('width'), h: n('height')}];
  });
  const edges = [...svg.querySelectorAll('path[marker-end]')].map(p => p.getAttribute('d'));
  return {nodes, edges};
}"""


def edges_drawn(graph: dict, names: set[str]) -> set[tuple[str, str]]:
    """(upstream, downstream) of every arrow: it leaves the right side of one node and ends at the left
    side of another (the layout is horizontal)."""
    nodes = [dict(node, name=shown_name(node["label"], names)) for node in graph["nodes"]]

    def at(x: float, y: float, side: str) -> str:
        hits = [n["name"] for n in nodes
                if abs((n["x"] + n["w"] if side == "right" else n["x"]) - x) <= 15 and n["y"] <= y <= n["y"] + n["h"]]
        assert len(hits) == 1, f"no single node at the {side} side of ({x}, {y}): {hits}"
        return hits[0]

    drawn = set()
    for d in graph["edges"]:
        numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", d)]
        (x0, y0), (x1, y1) = numbers[:2], numbers[-2:]
        assert x0 < x1, f"an edge runs right to left: {d}"
        drawn.add((at(x0, y0, "right"), at(x1, y1, "left")))
    return drawn


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
    loaded_pools = len(parse_pools(pools["data"], today).snapshots)

    with PayloadServer() as http, dagster_database(server_url) as dagster_pg_url:
        http.set("/pools", synthetic.dumps(pools))
        http.set("/protocols", synthetic.dumps(protocols))
        synthetic_datasets.serve(http, pools, lending=20, chains=20, chain_days=30, protocol_days=30)
        env = {"DATABASE_URL": database_url, "WAREHOUSE_SCHEMA": schema_name,
               "SOURCE_URL": http.url("/pools"), "PROTOCOLS_URL": http.url("/protocols"),
               "LEND_BORROW_URL": http.url("/lendBorrow"), "CHAINS_URL": http.url("/v2/chains"),
               "CHAIN_TVL_URL": http.url("/v2/historicalChainTvl/{chain}"),
               "PROTOCOL_URL": http.url("/protocol/{slug}")}
        with dagster_webserver(tmp_path / "dagster_home", dagster_pg_url, env) as ui, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            # tall enough for every group of the expanded graph: the UI draws only the nodes in view
            page = browser.new_page(viewport={"width": 2400, "height": 2400})
            page.set_default_timeout(60_000)
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
                    graph = page.evaluate(_GRAPH_JS)
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
                expect(dialog).to_be_hidden(timeout=60_000)  # twenty assets and their checks take a while to submit

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
