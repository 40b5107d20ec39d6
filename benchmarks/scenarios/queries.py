"""6a and 6. Analytics upkeep and the user's queries, on the backfilled schema (extended to ``--query-days``).

The extension copies backfilled days by SQL, so it needs the backfill's schema: that scenario runs first.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import time

from llama_pipeline import schema as wschema
from llama_pipeline_tests.testing.payload_server import PayloadServer

from .common import (ANALYTICS, QUERY_TARGET_MS, Bench, Checks, Payloads, connect, fmt, log, make_resources, median,
                     table, timed)
from .pipeline_hooks import materialize, step_figures

NEEDS = ("backfill",)

_SNAPSHOT_COLUMNS = ", ".join(f'"{c}"' for c in ("pool_id", "snapshot_date", *wschema.SNAPSHOT_METRICS, "source"))
# The questions of issue 5, as a user asks them of the warehouse (the targets).
QUERIES = {
    "latest snapshot of every pool [pool_latest]": f"SELECT {_SNAPSHOT_COLUMNS} FROM pool_latest",
    "one pool, last 90 days": """
        SELECT * FROM pool_snapshots
        WHERE pool_id = %(pool)s AND snapshot_date > %(last)s::date - 90 ORDER BY snapshot_date""",
    "TVL per chain per day, 90 days [chain_daily_stats]": """
        SELECT chain, snapshot_date, total_tvl_usd FROM chain_daily_stats
        WHERE snapshot_date > %(last)s::date - 90""",
    "top 100 by APY, TVL > $1M, one day": """
        SELECT * FROM pool_snapshots
        WHERE snapshot_date = %(last)s AND tvl_usd > 1000000 ORDER BY apy DESC NULLS LAST LIMIT 100""",
}
# The same two questions answered from the base tables alone, for comparison (not targets).
BASE_QUERIES = {
    "latest snapshot of every pool, from pool_snapshots": """
        SELECT s.* FROM pools p
        JOIN pool_snapshots s ON s.pool_id = p.pool_id AND s.snapshot_date = p.last_seen_date""",
    "TVL per chain per day, 90 days, from pool_snapshots": """
        SELECT p.chain, s.snapshot_date, sum(s.tvl_usd) AS tvl_usd
        FROM pool_snapshots s JOIN pools p USING (pool_id)
        WHERE s.snapshot_date > %(last)s::date - 90
        GROUP BY p.chain, s.snapshot_date""",
}


def extend_snapshots(url: str, schema_name: str, days: int, target_days: int) -> dict:
    """Make ``pool_snapshots`` hold ``target_days`` days for the query benchmark without running the pipeline
    for each of them: copies of the backfilled days, shifted back by whole multiples of ``days``, with TVL and
    APY moved by a deterministic factor. Only item 6 (queries) and the per-day table size see these rows."""
    columns = [c.name for c in wschema.pool_snapshots.columns]
    moved = {"snapshot_date": "snapshot_date - %(shift)s",
             "tvl_usd": "tvl_usd * (1 + 0.05 * sin(%(shift)s + hashtext(pool_id::text) %% 7))",
             "apy": "apy * (1 + 0.1 * cos(%(shift)s + hashtext(pool_id::text) %% 5))"}
    select = ", ".join(moved.get(c, f'"{c}"') for c in columns)
    started = time.perf_counter()
    with contextlib.closing(connect(url)) as conn, conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT max(snapshot_date) FROM pool_snapshots")
        last = cur.fetchone()[0]
        oldest = last - dt.timedelta(days=target_days - 1)
        copy = 1
        while last - dt.timedelta(days=copy * days + days - 1) > oldest - dt.timedelta(days=days):
            shift = copy * days
            cur.execute(f"INSERT INTO pool_snapshots ({', '.join(chr(34) + c + chr(34) for c in columns)}) "
                        f"SELECT {select} FROM pool_snapshots WHERE snapshot_date > %(last)s::date - %(days)s "
                        "AND snapshot_date - %(shift)s >= %(oldest)s",
                        {"shift": shift, "last": last, "days": days, "oldest": oldest})
            copy += 1
        cur.execute("SELECT count(*), count(DISTINCT snapshot_date) FROM pool_snapshots")
        rows, distinct_days = cur.fetchone()
    return {"rows": rows, "days": distinct_days, "seconds": time.perf_counter() - started}


def run_queries(url: str, schema_name: str, reps: int) -> list[dict]:
    """Each query warm, three ways: the database's execution time (EXPLAIN ANALYZE), the round trip with
    every row delivered to the client as text (COPY ... TO STDOUT, what psql or a BI tool pays), and the
    same through psycopg2's fetchall into Python objects. The target is judged on the round trip."""
    results = []
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT max(snapshot_date), count(*) FROM pool_snapshots")
        last, total = cur.fetchone()
        cur.execute("SELECT pool_id FROM pool_snapshots WHERE snapshot_date = %s ORDER BY tvl_usd DESC NULLS LAST "
                    "LIMIT 1", (last,))
        pool = cur.fetchone()[0]
        params = {"last": last, "pool": pool}
        for name, sql in {**QUERIES, **BASE_QUERIES}.items():
            literal = cur.mogrify(sql, params).decode()

            def round_trip() -> float:
                started = time.perf_counter()
                cur.copy_expert(f"COPY ({literal}) TO STDOUT", io.BytesIO())
                return (time.perf_counter() - started) * 1000

            def fetch_all() -> tuple[float, int]:
                started = time.perf_counter()
                cur.execute(literal)
                count = len(cur.fetchall())
                return (time.perf_counter() - started) * 1000, count

            for _ in range(2):  # warm-up
                round_trip()
                fetch_all()
            trips = [round_trip() for _ in range(max(reps, 3))]
            fetches = [fetch_all() for _ in range(max(reps, 3))]
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + literal)
            plan = cur.fetchone()[0][0]
            nodes = _plan_nodes(plan["Plan"])
            indexes = sorted({n.get("Index Name") for n in nodes if n.get("Index Name")})
            seq = sorted({n.get("Relation Name") for n in nodes if n.get("Node Type") == "Seq Scan"})
            results.append({"query": name, "target": name in QUERIES, "ms": median(trips),
                            "fetchall_ms": median([f[0] for f in fetches]), "rows": fetches[0][1],
                            "indexes": indexes, "seq_scans": seq, "plan_ms": plan.get("Execution Time"),
                            "snapshot_rows": total})
        conn.rollback()
    return results


def _plan_nodes(node: dict) -> list[dict]:
    found = [node]
    for child in node.get("Plans", []):
        found += _plan_nodes(child)
    return found


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    days = bench.args.days
    schema_name = bench.schema("year")
    resources = make_resources(bench.url, schema_name, server)
    if bench.args.query_days > days:
        log(f"6. extending pool_snapshots to {bench.args.query_days} days by SQL copies of the backfilled days")
        bench.results["query_extension"] = extend_snapshots(bench.url, schema_name, days, bench.args.query_days)
    with contextlib.closing(connect(bench.url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'VACUUM (ANALYZE) "{schema_name}".pool_snapshots')
            cur.execute(f'VACUUM (ANALYZE) "{schema_name}".pools')
            cur.execute(f'SELECT min(snapshot_date), max(snapshot_date) FROM "{schema_name}".pool_snapshots')
            oldest, newest = cur.fetchone()
    if bench.results.get("query_extension"):
        log(f"6. analytics for {oldest}..{newest} (the copied days), one range run")
        seconds, result = timed(lambda: materialize(bench.assets, resources, day_range=(oldest, newest),
                                                    selection=ANALYTICS))
        bench.results["analytics_year"] = {"total": seconds, "steps": step_figures(result)}
    log("6. analytics for the newest day alone, at this size (the daily cost)")
    daily = []
    for _ in range(bench.reps):
        seconds, result = timed(lambda: materialize(bench.assets, resources, day=newest, selection=ANALYTICS))
        daily.append({"total": seconds, "steps": step_figures(result)})
    bench.results["analytics_daily"] = daily
    with contextlib.closing(connect(bench.url)) as conn:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in ("pool_latest", "chain_daily_stats", "pool_apy_stats"):
                cur.execute(f'VACUUM (ANALYZE) "{schema_name}".{name}')
    log("6. queries")
    bench.results["queries"] = run_queries(bench.url, schema_name, bench.reps)


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    back = results["backfill"]
    queries = results["queries"]
    extension = results.get("query_extension")
    if extension:
        print(f"\n(6: pool_snapshots extended from {back['days']} backfilled days to {extension['days']} days, "
              f"{extension['rows']:,} rows, by SQL copies of the backfilled days in {extension['seconds']:.0f} s)")
    rows = []
    year = results.get("analytics_year")
    daily = results.get("analytics_daily", [])
    for name in ANALYTICS:  # each relation's refresh, two at a time in the one step
        rows.append([f"{name} (refresh)", fmt(year["steps"].get(name, {}).get("refresh")) if year else "-",
                     fmt(median([d["steps"].get(name, {}).get("refresh") for d in daily
                                 if d["steps"].get(name, {}).get("refresh") is not None])) if daily else "-"])
    rows.append(["analytics (the step)", fmt(year["steps"].get("analytics", {}).get("step")) if year else "-",
                 fmt(median([d["steps"].get("analytics", {}).get("step") for d in daily])) if daily else "-"])
    rows.append(["all five (whole run)", fmt(year["total"]) if year else "-",
                 fmt(median([d["total"] for d in daily])) if daily else "-"])
    table(f"6a. Analytics upkeep at {extension['days'] if extension else back['days']} days", [
        "asset", "all days, one range run", f"newest day alone (median of {len(daily)})"], rows)
    table(f"6. Queries at {extension['days'] if extension else back['days']} days ({queries[0]['snapshot_rows']:,} "
          f"snapshot rows), warm, median of {max(args.reps, 3)}",
          ["query", "round trip (COPY out)", "fetchall (Python)", "in the database", "rows", "indexes used",
           "seq scans", f"< {QUERY_TARGET_MS:.0f} ms"],
          [[q["query"], fmt(q["ms"], "ms"), fmt(q.get("fetchall_ms"), "ms"), fmt(q.get("plan_ms"), "ms"),
            f"{q['rows']:,}", ", ".join(q["indexes"]) or "-", ", ".join(q["seq_scans"]) or "-",
            ("yes" if q["ms"] < QUERY_TARGET_MS else "NO") if q.get("target", True) else "(not a target)"]
           for q in queries])
    for q in queries:
        if not q.get("target", True):
            continue
        checks.check(f"query: {q['query']} (ms)", q["ms"], QUERY_TARGET_MS, "le")
