"""7. Memory and disk: peak RSS of a one-day run in a fresh process, and the backfilled schema's size per day.

The RSS figure needs nothing else (``--scenario footprint`` alone takes about half a minute). The disk
figures measure the backfill's schema (``<prefix>_year``): they are taken only when that schema exists
(``--scenario backfill,footprint``, or a schema kept with ``--keep`` and the same ``--schema-prefix``),
and the report says when they were not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys

import dagster as dg

from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.partitions import utc_today
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline_tests.testing.payload_server import PayloadServer

from .common import (ROOT, TABLES, TARGETS, Bench, Checks, Payloads, connect, drop_schema, fmt, fresh_schema, log,
                     table, timed)
from .pipeline_hooks import materialize, pipeline_assets

NEEDS: tuple[str, ...] = ()
RUN_SCRIPT = ROOT / "benchmarks" / "run.py"  # its hidden --child-one-day flag calls child_one_day


def child_one_day(args: argparse.Namespace) -> None:
    """In a fresh process: one whole-graph materialization of today; print peak RSS as JSON.

    ``--child-mode materialize`` (the figure issue 13 tracks) runs ``dg.materialize``, which keeps every
    step's output value until the run ends (``execute_in_process`` captures them for ``output_for_node``).
    ``run-worker`` executes the job as a production run worker does (``dg.execute_job`` on the code
    location's job, the in-process executor, resources from the environment), where a step's output is
    freed once the IO manager has written it."""
    fresh_schema(args.database_url, args.child_schema)
    rss_before = high_water_mb()
    if args.child_mode == "run-worker":
        run = lambda: run_as_worker(args)  # noqa: E731
    else:
        warehouse = Warehouse(database_url=args.database_url, schema_name=args.child_schema)
        resources = {
            "warehouse": warehouse,
            "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
            "decoded_payloads": DecodedPayloads(),
            "defillama": DefiLlamaClient(pools_url=args.pools_url, protocols_url=args.protocols_url,
                                         chart_url=chart_url(args.pools_url), read_timeout=120),
        }
        run = lambda: materialize(pipeline_assets(), resources)  # noqa: E731
    seconds, _ = timed(run)
    rss = high_water_mb()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    drop_schema(args.database_url, args.child_schema)
    print(json.dumps({"peak_rss_mb": rss, "rss_before_run_mb": rss_before, "ru_maxrss_mb": ru_maxrss,
                      "seconds": seconds}))


def chart_url(pools_url: str) -> str:
    return pools_url.rsplit("/", 1)[0] + "/chart/{pool}"


def code_location_job() -> dg.JobDefinition:
    """The yields' graph as a job of the code location, loaded as a run worker loads it (resources from
    the environment)."""
    from llama_pipeline.definitions import defs

    keys = [key for asset in pipeline_assets() for key in asset.keys]
    job = dg.define_asset_job("footprint_one_day", selection=dg.AssetSelection.assets(*keys))
    return dg.Definitions.merge(defs(), dg.Definitions(jobs=[job])).resolve_job_def(job.name)


def run_as_worker(args: argparse.Namespace) -> None:
    # The environment a deployment gives the code location (os.environ of this child process only).
    os.environ.update({"DATABASE_URL": args.database_url, "WAREHOUSE_SCHEMA": args.child_schema,
                       "SOURCE_URL": args.pools_url, "PROTOCOLS_URL": args.protocols_url,
                       "CHART_URL": chart_url(args.pools_url)})
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.execute_job(dg.reconstructable(code_location_job), instance=instance,
                                tags={"dagster/partition": utc_today().isoformat()}, raise_on_error=True)
        if not result.success:
            raise RuntimeError("the run-worker run failed")


def high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM). Not ``ru_maxrss``: on Linux that keeps the high-water mark of
    the forked parent across ``exec``, so a child of a big benchmark process would report the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_rss(url: str, server: PayloadServer, prefix: str, mode: str = "materialize") -> dict:
    command = [sys.executable, str(RUN_SCRIPT), "--child-one-day", "--child-mode", mode, "--database-url", url,
               "--child-schema", f"{prefix}_rss", "--pools-url", server.url("/pools"),
               "--protocols-url", server.url("/protocols")]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def disk_figures(url: str, schema_name: str) -> dict:
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute(f'SET search_path TO "{schema_name}"')
        cur.execute("SELECT count(DISTINCT partition_date), coalesce(sum(octet_length(body)), 0) FROM raw_payloads")
        raw_days, raw_body = cur.fetchone()
        cur.execute("SELECT count(DISTINCT snapshot_date) FROM pool_snapshots")
        snap_days = cur.fetchone()[0]
        sizes = {}
        for name in ("raw_payloads", *TABLES):
            cur.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_indexes_size(%s)",
                        (f'"{schema_name}".{name}',) * 3)
            sizes[name] = dict(zip(("total", "heap", "indexes"), cur.fetchone()))
        conn.rollback()
    return {"raw_days": raw_days, "raw_body_bytes": raw_body, "snapshot_days": snap_days, "sizes": sizes}


def schema_exists(url: str, schema_name: str) -> bool:
    with contextlib.closing(connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'raw_payloads'",
                    (schema_name,))
        found = cur.fetchone() is not None
        conn.rollback()
    return found


def run(bench: Bench, server: PayloadServer, payloads: Payloads) -> None:
    log("7. peak RSS of a one-day run (subprocess)")
    server.set("/pools", payloads.day1_body)
    server.set("/protocols", payloads.protocols_body)
    bench.results["rss"] = measure_rss(bench.url, server, bench.prefix)
    bench.results["rss_run_worker"] = measure_rss(bench.url, server, bench.prefix, "run-worker")
    year = bench.schema("year")
    bench.results["disk"] = disk_figures(bench.url, year) if schema_exists(bench.url, year) else None


def report(results: dict, args: argparse.Namespace, checks: Checks) -> None:
    disk = results["disk"]
    rss = results["rss"]
    rows = [["peak RSS, one-day run (subprocess, VmHWM; dg.materialize)", fmt(rss["peak_rss_mb"], "MB")],
            ["  of which before the run (imports)", fmt(rss["rss_before_run_mb"], "MB")]]
    worker = results.get("rss_run_worker")
    if worker:
        rows.append(["peak RSS, the same run as a run worker executes it (dg.execute_job)",
                     fmt(worker["peak_rss_mb"], "MB")])
    checks.check("peak RSS one day (MB)", rss["peak_rss_mb"], *TARGETS["peak RSS one day (MB)"])
    if disk is None:
        rows.append(["disk per day", "not measured: no backfilled schema (run with --scenario backfill)"])
        table("7. Memory and disk", ["figure", "value"], rows)
        return
    mb = 1024 * 1024
    raw_per_day = disk["sizes"]["raw_payloads"]["total"] / max(1, disk["raw_days"]) / mb
    rows += [["raw_payloads on disk per day (pg_total_relation_size / days)", fmt(raw_per_day, "MB")],
            ["raw payload bodies per day (compressed bytes)", fmt(disk["raw_body_bytes"] / max(1, disk["raw_days"]) / mb,
                                                                   "MB")]]
    for name in TABLES:
        s = disk["sizes"][name]
        per = f" = {s['total'] / max(1, disk['snapshot_days']) / mb:.2f} MB/day" if name == "pool_snapshots" else ""
        rows.append([f"{name}: heap + indexes", f"{s['heap'] / mb:.1f} + {s['indexes'] / mb:.1f} MB{per}"])
    all_tables = sum(disk["sizes"][n]["total"] for n in TABLES)
    rows.append(["4 tables with indexes per day", fmt(all_tables / max(1, disk["snapshot_days"]) / mb, "MB")])
    table("7. Memory and disk", ["figure", "value"], rows)
    checks.check("raw payloads per day (MB)", raw_per_day, *TARGETS["raw payloads per day (MB)"])
