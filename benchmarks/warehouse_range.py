"""Memory and time of the warehouse step over stored days: one day against a range run.

    .venv/bin/python benchmarks/warehouse_range.py [--pools 17000] [--days 30] [--database-url URL]

Stores ``--days`` past days of synthetic /pools (``--pools`` pools) and /protocols payloads with
``raw_archive.store`` (as benchmarks/run.py item 5 does), then, each in a fresh process (so peak RSS is
the run's own, VmHWM): the floor for one day (the same decode and parse, COPY into keyless tables), the
warehouse step for one day, and the step for the whole range. Prints the figures as a table and JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 11


def _high_water_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _day_payload(args: tuple) -> tuple[dt.date, bytes, int]:
    from llama_pipeline_tests.testing import synthetic

    n_pools, day = args
    protocols = synthetic.generate_protocols(max(50, n_pools * 7 // 17), seed=SEED)
    envelope = synthetic.generate_pools(n_pools, seed=SEED, protocols=protocols, day=day)
    return day, synthetic.dumps(envelope), len(envelope["data"])


def store_days(url: str, schema_name: str, days: list[dt.date], n_pools: int) -> None:
    import psycopg2

    from llama_pipeline.db_url import libpq_url
    from llama_pipeline.fetch.payloads import RawPayload
    from llama_pipeline.fetch.raw_archive import store
    from llama_pipeline.write.warehouse import migrate_to_head
    from llama_pipeline_tests.testing import synthetic

    with contextlib.closing(psycopg2.connect(libpq_url(url))) as conn, conn, conn.cursor() as cur:
        cur.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')
    migrate_to_head(url, schema_name)
    protocols = synthetic.generate_protocols(max(50, n_pools * 7 // 17), seed=SEED)
    protocols_body = synthetic.dumps(protocols)
    with ProcessPoolExecutor(max_workers=2) as pool:
        for day, body, count in pool.map(_day_payload, [(n_pools, d) for d in days]):
            now = dt.datetime.combine(day, dt.time(23), tzinfo=dt.timezone.utc)
            payloads = [RawPayload("pools", day, "http://127.0.0.1/pools", now, 200, "application/json", body, count),
                        RawPayload("protocols", day, "http://127.0.0.1/protocols", now, 200, "application/json",
                                   protocols_body, len(protocols))]
            with contextlib.closing(psycopg2.connect(libpq_url(url))) as conn, conn:
                store(conn, schema_name, payloads)


def child(args: argparse.Namespace) -> None:
    """In a fresh process: the floor, or the warehouse step for ``--first`` .. ``--last``."""
    import dagster as dg

    from llama_pipeline.decode.decoded_payloads import DecodedPayloads
    from llama_pipeline.write.io_manager import WarehouseIOManager
    from llama_pipeline.write.warehouse import Warehouse

    warehouse = Warehouse(database_url=args.database_url, schema_name=args.schema, migrate_on_start=False)
    first, last = dt.date.fromisoformat(args.first), dt.date.fromisoformat(args.last)
    rss_before = _high_water_mb()
    started = time.perf_counter()
    if args.child == "floor":
        figures = _floor(warehouse, first)
    else:
        from llama_pipeline.defs.warehouse.assets import warehouse_tables

        tags = {}
        partition = first.isoformat()
        if first != last:
            tags = {"dagster/asset_partition_range_start": first.isoformat(),
                    "dagster/asset_partition_range_end": last.isoformat()}
            partition = None
        result = dg.materialize([warehouse_tables], partition_key=partition, tags=tags, resources={
            "warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
            "decoded_payloads": DecodedPayloads()})
        assert result.success
        figures = {}
    seconds = time.perf_counter() - started
    days = (last - first).days + 1
    print(json.dumps({**figures, "seconds": seconds, "days": days, "per_day": seconds / days,
                      "rss_before_run_mb": rss_before, "peak_rss_mb": _high_water_mb()}))


def _floor(warehouse, day: dt.date) -> dict:
    """Decode and parse the day as the step does, COPY the four tables' rows into keyless temp tables."""
    from llama_pipeline import schema
    from llama_pipeline.decode import warehouse_days
    from llama_pipeline.decode.protocols import chain_rows, with_placeholders
    from llama_pipeline.write.pg_copy import copy_buffer

    decoded = warehouse_days.decode_day(warehouse, day, protocols=True)
    frames = {"chains": chain_rows(day, decoded.pool_chain_spellings, decoded.protocol_chain_spellings),
              "projects": with_placeholders(decoded.protocols, decoded.pool_projects, day).projects,
              "pools": decoded.pools.pools, "pool_snapshots": decoded.pools.snapshots}
    with warehouse.connection() as conn, conn.cursor() as cur:
        for name, frame in frames.items():
            columns = [c for c in schema.metadata.tables[name].columns if c.name in frame.columns]
            cur.execute(f'CREATE TEMP TABLE "floor_{name}" AS SELECT {", ".join(c.name for c in columns)} '
                        f'FROM "{warehouse.schema_name}"."{name}" WITH NO DATA')
            cur.copy_expert(f'COPY "floor_{name}" FROM STDIN', copy_buffer(frame, columns))
    return {"rows": sum(len(f) for f in frames.values())}


def run_child(args: argparse.Namespace, kind: str, first: dt.date, last: dt.date) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--database-url", args.database_url,
               "--schema", args.schema, "--first", first.isoformat(), "--last", last.isoformat()]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=17_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--schema", default="bench_warehouse_range")
    parser.add_argument("--reuse", action="store_true", help="keep the days stored by an earlier run of this script")
    parser.add_argument("--child", choices=["floor", "step"])
    parser.add_argument("--first")
    parser.add_argument("--last")
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    today = dt.datetime.now(dt.timezone.utc).date()
    days = [today - dt.timedelta(days=args.days - i) for i in range(args.days)]
    started = time.perf_counter()
    if not args.reuse:
        store_days(args.database_url, args.schema, days, args.pools)
    print(f"stored {args.days} days of {args.pools:,} pools in {time.perf_counter() - started:.0f} s", flush=True)
    figures = {
        "floor, one day": run_child(args, "floor", days[-1], days[-1]),
        "step, one day (fresh tables)": run_child(args, "step", days[0], days[0]),
        f"step, {args.days}-day range": run_child(args, "step", days[0], days[-1]),
        "step, one day (loaded tables)": run_child(args, "step", days[-1], days[-1]),
    }
    floor = figures["floor, one day"]["per_day"]
    print(f"{'run':34} {'s/day':>7} {'x floor':>8} {'peak RSS MB':>12} {'RSS before run':>15}")
    for name, f in figures.items():
        print(f"{name:34} {f['per_day']:7.2f} {f['per_day'] / floor:8.2f} {f['peak_rss_mb']:12.0f} "
              f"{f['rss_before_run_mb']:15.0f}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
