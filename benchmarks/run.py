"""The performance benchmark of issue 5: the pipeline against the floor and its peers, in one run.

    .venv/bin/python benchmarks/run.py [--quick] [--scenario NAME[,NAME]] [--days 365] [--reps 5]
                                       [--database-url URL]

Every contender gets the same synthetic payloads (``llama_pipeline_tests.testing.synthetic``), served over
real HTTP on 127.0.0.1 by ``PayloadServer``, and writes into the same PostgreSQL database (one schema
per contender, dropped and re-created). Figures are medians of ``--reps`` repetitions after a warm-up.
The script prints one table per numbered item of the issue and a last table of ratios vs targets.

Each scenario is a module of ``benchmarks/scenarios/`` (``run`` measures, ``report`` prints its table);
``--scenario`` picks some, and the scenarios their figures are relative to run with them (``NEEDS``).
Nothing here changes the pipeline: what the benchmark reads from the pipeline's internals (per-day
backfill times from wrapping the warehouse step's decode, builders and table writes in this process
only, ...) is all in
``scenarios/pipeline_hooks.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import dagster as dg  # noqa: E402

from scenarios import backfill, floor, footprint, next_day, one_day, peers, queries  # noqa: E402
from scenarios.common import (DEFAULT_URL, Bench, Checks, Payloads, connect, drop_schema, ensure_database,  # noqa: E402
                              log, table)
from llama_pipeline_tests.testing.payload_server import PayloadServer  # noqa: E402

# In the order they run. Peers and footprint come after what they compare with or measure; the RSS child
# process is independent of what ran before it in this one.
SCENARIOS = {"one_day": one_day, "floor": floor, "next_day": next_day, "peers": peers, "backfill": backfill,
             "queries": queries, "footprint": footprint}
# In the order the report prints them (the numbering).
REPORT_ORDER = ("one_day", "floor", "peers", "next_day", "backfill", "queries", "footprint")


def selected(names: str | None) -> list[str]:
    """The scenarios to run, in running order: those asked for and those their figures need."""
    wanted = list(SCENARIOS) if not names else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    closed = set()
    pending = list(wanted)
    while pending:
        name = pending.pop()
        if name not in closed:
            closed.add(name)
            pending.extend(SCENARIOS[name].NEEDS)
    return [n for n in SCENARIOS if n in closed]


def report(results: dict, args: argparse.Namespace, scenarios: list[str]) -> list[tuple[str, float, float, str, bool]]:
    checks = Checks()
    for name in REPORT_ORDER:
        if name in scenarios:
            SCENARIOS[name].report(results, args, checks)
    table("Targets", ["target", "measured", "limit", "met"],
          [[name, f"{measured:.2f}", f"{'<=' if how == 'le' else '>='} {limit:g}", "yes" if ok else "NO"]
           for name, measured, limit, how, ok in checks.rows])
    return checks.rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny payloads, 3 backfill days, 1 rep (smoke run)")
    parser.add_argument("--scenario", default=None, metavar="NAME[,NAME]",
                        help=f"comma-separated, of {', '.join(SCENARIOS)} (default all); the ones they need run too")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--days", type=int, default=None, help="backfill days (default 365; 3 with --quick)")
    parser.add_argument("--query-days", type=int, default=None,
                        help="days of snapshots for the queries; beyond --days they are SQL copies (default 365)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    parser.add_argument("--slow-reps", type=int, default=3, help="at most this many reps for dlt and row-by-row")
    parser.add_argument("--pools", type=int, default=None, help="pools per day (default 17000; 200 with --quick)")
    parser.add_argument("--protocols", type=int, default=None, help="protocols (default 7000; 80 with --quick)")
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--schema-prefix", default=None, help="schemas are <prefix>_<contender>")
    parser.add_argument("--keep", action="store_true", help="keep the one-year schema for inspection")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--child-one-day", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-mode", choices=("materialize", "run-worker"), default="materialize",
                        help=argparse.SUPPRESS)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument("--pools-url", help=argparse.SUPPRESS)
    parser.add_argument("--protocols-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_one_day:
        footprint.child_one_day(args)
        return 0
    scenarios = selected(args.scenario)
    args.days = args.days or (3 if args.quick else 365)
    args.reps = args.reps or (1 if args.quick else 5)
    args.query_days = args.query_days or (args.days if args.quick else 365)
    args.pools = args.pools or (200 if args.quick else 17000)
    args.protocols = args.protocols or (80 if args.quick else 7000)
    args.schema_prefix = args.schema_prefix or f"bench_{os.getpid()}"
    ensure_database(args.database_url)

    started = time.perf_counter()
    log(f"scenarios: {', '.join(scenarios)}")
    log(f"generating payloads: {args.pools} pools, {args.protocols} protocols")
    payloads = Payloads(args.pools, args.protocols)
    bench = Bench(args)
    try:
        with PayloadServer() as server:
            for name in scenarios:
                SCENARIOS[name].run(bench, server, payloads)
                bench.dump()
    finally:
        for name in ("day", "rbr", *(() if args.keep else ("year",))):
            drop_schema(args.database_url, bench.schema(name))

    with contextlib.closing(connect(args.database_url)) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg_version = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
    every = len(scenarios) == len(SCENARIOS)
    print(f"# llama-pipeline benchmark: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB RAM, PostgreSQL {pg_version} "
          f"(shared_buffers {shared_buffers}), Python {sys.version.split()[0]}, dagster {dg.__version__}; "
          f"{args.pools:,} pools, {args.protocols:,} protocols, {args.days} backfill days, {args.reps} reps"
          f"{' (quick)' if args.quick else ''}{'' if every else '; scenarios: ' + ', '.join(scenarios)}")
    checks = report(bench.results, args, scenarios)
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": bench.results,
                                               "checks": checks}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
