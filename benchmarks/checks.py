"""What the daily asset checks cost for one full-size day: each rule alone, and the checks as one run.

    .venv/bin/python benchmarks/checks.py [--pools 17000] [--protocols 7000] [--reps 3] [--database-url URL]

Stores two days of synthetic payloads (yesterday and today, as the raw assets would have), loads the four
warehouse tables for both, then times every rule of ``llama_pipeline.quality.rules`` for today (the
fastest of ``--reps``) and the yields' daily checks through Dagster (``daily_checks``' selection of the
yields, one run, median of ``--reps``). ``benchmarks/run.py``'s whole graph is the assets alone: these
checks run besides it in the daily job.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import dagster as dg  # noqa: E402

from scenarios.common import (DEFAULT_URL, TABLES, Payloads, archive_day, connect, drop_schema,  # noqa: E402
                              ensure_database, fresh_schema, make_resources)
from scenarios.pipeline_hooks import materialize, pipeline_assets  # noqa: E402
from llama_pipeline_tests.testing.payload_server import PayloadServer  # noqa: E402


def rules(day: dt.date) -> dict:
    from llama_pipeline import clock
    from llama_pipeline.quality import rules as q

    return {
        **{f"{t}_counts_add_up": (lambda t: lambda db: q.counts_add_up(db, t, day))(t)
           for t in ("projects", "pools", "pool_snapshots")},
        **{f"{t}_keys_unique": (lambda t: lambda db: q.keys_unique(db, t, day))(t)
           for t in ("chains", "projects", "pools", "pool_snapshots")},
        "pools_join_chain_and_project": lambda db: q.pools_join(db, day),
        "snapshots_join_pools": lambda db: q.snapshots_join(db, day),
        "values_in_range": lambda db: q.values_in_range(db, day),
        "pool_projects_listed": lambda db: q.placeholder_projects(db, day),
        "chains_in_alias_map": lambda db: q.chains_known(db, day),
        "pool_snapshots_rejects": lambda db: q.rejects_within(db, "pool_snapshots", "pools", day, 0.01),
        "projects_rejects": lambda db: q.rejects_within(db, "projects", "protocols", day, 0.01),
        "pool_count_not_collapsed": lambda db: q.pool_count_holds(db, day, 0.5),
        "pools_fields_stable": lambda db: q.fields_stable(db, "pools", day),
        "protocols_fields_stable": lambda db: q.fields_stable(db, "protocols", day),
        "pool_snapshots_fresh": lambda db: q.freshness(db, clock.now(), 36.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=17_000)
    parser.add_argument("--protocols", type=int, default=7_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--schema", default="bench_checks")
    args = parser.parse_args()
    from llama_pipeline.definitions import defs
    from llama_pipeline.partitions import utc_today
    from llama_pipeline.quality import rules as q

    ensure_database(args.database_url)
    today = utc_today()
    yesterday = today - dt.timedelta(days=1)
    payloads = Payloads(args.pools, args.protocols)
    fresh_schema(args.database_url, args.schema)
    for day, body, records in ((yesterday, payloads.day1_body, payloads.day1["data"]),
                               (today, payloads.day2_body, payloads.day2["data"])):
        archive_day(args.database_url, args.schema, day, body, len(records), payloads.protocols_body,
                    len(payloads.protocols))
    assets = pipeline_assets()
    # The yields' daily checks (the timed two, freshness and yesterday's capture, are unpartitioned).
    checks = [c for c in (defs().asset_checks or [])
              if {k.asset_key.to_user_string() for k in c.check_keys} & {"raw_pools", "raw_protocols", *TABLES}
              and not {k.name for k in c.check_keys} & {"pool_snapshots_fresh", "yesterday_captured"}]
    try:
        with PayloadServer() as server:
            resources = make_resources(args.database_url, args.schema, server)
            for day in (yesterday, today):
                materialize(assets, resources, day=day, selection=TABLES)
            print(f"{args.pools:,} pools, {args.protocols:,} protocols; rules for {today} (fastest of {args.reps})")
            total = 0.0
            with contextlib.closing(connect(args.database_url)) as conn:
                db = q.Warehouse(conn, args.schema)
                for name, rule in rules(today).items():
                    seconds = []
                    for _ in range(args.reps):
                        started = time.perf_counter()
                        verdict = rule(db)
                        seconds.append(time.perf_counter() - started)
                        conn.rollback()
                    total += min(seconds)
                    print(f"  {name:32s} {min(seconds):6.3f} s  {'pass' if verdict.passed else 'FAIL'}")
            print(f"  {'every rule, one after another':32s} {total:6.3f} s")
            job = dg.Definitions(
                assets=assets, asset_checks=checks, resources=resources,
                jobs=[dg.define_asset_job("checks_alone", selection=dg.AssetSelection.checks(*checks),
)],
            ).resolve_job_def("checks_alone")
            runs = []
            for _ in range(args.reps):
                started = time.perf_counter()
                # Tagged rather than partition_key=: a job of checks alone selects no asset to validate a key against.
                result = job.execute_in_process(tags={"dagster/partition": today.isoformat()}, raise_on_error=False)
                runs.append(time.perf_counter() - started)
            steps = sum(1 for e in result.all_events if e.event_type_value == "STEP_SUCCESS")
            print(f"  {'the checks as one run (' + str(steps) + ' steps)':32s} {statistics.median(runs):6.3f} s")
    finally:
        drop_schema(args.database_url, args.schema)


if __name__ == "__main__":
    main()
