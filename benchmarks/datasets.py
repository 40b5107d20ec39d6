"""The benchmark of issue 15: the daily run with every dataset, all chains' TVL history, 200 protocols'.

    .venv/bin/python benchmarks/datasets.py [--quick] [--reps 3] [--history-only] [--database-url URL]

Same ground as benchmarks/run.py: synthetic payloads (``synthetic`` and ``synthetic_datasets``) over real
HTTP on 127.0.0.1, one PostgreSQL schema per scenario. The history scenarios run their one asset in a
child process, so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import dagster as dg  # noqa: E402

from scenarios.common import (DEFAULT_URL, SEED, Payloads, drop_schema, ensure_database, fmt,  # noqa: E402
                              fresh_schema, log, median, table, timed)
from scenarios.footprint import high_water_mb  # noqa: E402
from scenarios.pipeline_hooks import materialize, pipeline_assets  # noqa: E402
from llama_pipeline.fetch.http_client import DefiLlamaClient  # noqa: E402
from llama_pipeline.partitions import utc_today  # noqa: E402
from llama_pipeline.decode.decoded_payloads import DecodedPayloads  # noqa: E402
from llama_pipeline.write.io_manager import WarehouseIOManager  # noqa: E402
from llama_pipeline.write.warehouse import Warehouse  # noqa: E402
from llama_pipeline_tests.testing import synthetic_datasets  # noqa: E402
from llama_pipeline_tests.testing.payload_server import PayloadServer  # noqa: E402

TARGETS = {"daily with datasets / yields' whole graph": 1.3, "chain TVL history peak RSS (MB)": 500.0,
           "protocol TVL history peak RSS (MB)": 500.0}
# The largest real protocol (aave-v3) is about 28 MB; one of the selected protocols is served that size.
LARGE_PROTOCOL = dict(days=1200, chains=14, tokens=40)


def resources_for(url: str, schema_name: str, base: str) -> dict:
    warehouse = Warehouse(database_url=url, schema_name=schema_name)
    return {
        "warehouse": warehouse,
        "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
        "decoded_payloads": DecodedPayloads(),
        "defillama": DefiLlamaClient(
            pools_url=f"{base}/pools", protocols_url=f"{base}/protocols", chart_url=base + "/chart/{pool}",
            lend_borrow_url=f"{base}/lendBorrow", chains_url=f"{base}/v2/chains",
            chain_tvl_url=base + "/v2/historicalChainTvl/{chain}", protocol_url=base + "/protocol/{slug}",
            read_timeout=120),
    }


def child_history(args: argparse.Namespace) -> None:
    """In a fresh process: one history asset over yesterday..today on a prepared schema; print figures."""
    from llama_pipeline.definitions import defs

    # (a multi-asset, such as the analytics, has several keys: ``.key`` would raise)
    asset = next(a for a in defs().assets if isinstance(a, dg.AssetsDefinition)
                 and args.child_history in {k.to_user_string() for k in a.keys})
    today = utc_today()
    config = {"requests_per_second": 0, "concurrency": 4}
    if args.child_history == "protocol_tvl_daily":
        config["limit"] = args.protocol_count
    resources = resources_for(args.database_url, args.child_schema, args.base_url)
    seconds, result = timed(lambda: materialize([*pipeline_assets(with_datasets=True)], resources,
                                                day_range=(today - dt.timedelta(days=1), today),
                                                selection=(args.child_history,), run_config={
                                                    "ops": {args.child_history: {"config": config}}}))
    meta = result.asset_materializations_for_node(args.child_history)[0].metadata
    print(json.dumps({"seconds": seconds, "peak_rss_mb": high_water_mb(),
                      **{k: meta[k].value for k in ("series_fetched", "series_failed", "points_upserted",
                                                    "requests_per_second")}}))


def history_in_child(args, asset: str, schema_name: str, server: PayloadServer) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child-history", asset, "--child-schema", schema_name,
               "--base-url", server.url(""), "--database-url", args.database_url,
               "--protocol-count", str(args.protocol_count)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 rep (smoke run)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--reps", type=int, default=None, help="repetitions of the daily runs (default 3)")
    parser.add_argument("--schema-prefix", default=None)
    parser.add_argument("--child-history", help=argparse.SUPPRESS)
    parser.add_argument("--child-schema", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--protocol-count", type=int, default=None, help="protocols' history (default 200)")
    parser.add_argument("--history-only", action="store_true",
                        help="only the history scenarios (one daily run with every dataset prepares them)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.protocol_count = args.protocol_count or (5 if quick else 200)
    if args.child_history:
        child_history(args)
        return 0
    sizes = dict(pools=200 if quick else 17000, protocols=80 if quick else 7000, lending=60 if quick else 2400,
                 chains=20 if quick else 430, chain_days=60 if quick else 3000, protocol_days=60 if quick else 1000)
    reps = args.reps or (1 if quick else 3)
    prefix = args.schema_prefix or f"bench15_{os.getpid()}"
    ensure_database(args.database_url)
    started = time.perf_counter()
    log(f"generating payloads: {sizes}")
    payloads = Payloads(sizes["pools"], sizes["protocols"])
    large: dict[str, dict] = {}
    figures: dict = {}
    with PayloadServer() as server:
        server.set("/pools", payloads.day1_body)
        server.set("/protocols", payloads.protocols_body)
        synthetic_datasets.serve(server, payloads.day1, lending=sizes["lending"], chains=sizes["chains"],
                                 chain_days=sizes["chain_days"], protocol_days=sizes["protocol_days"], seed=SEED,
                                 large=large)
        base = server.url("")
        runs: dict[str, list[float]] = {"yields": [], "all": []}
        for rep in range(1 if args.history_only else reps + 1):  # the first of each is a warm-up
            for name, with_datasets in (("all", True),) if args.history_only else (("yields", False), ("all", True)):
                schema_name = fresh_schema(args.database_url, f"{prefix}_day")
                gc.collect()
                seconds, _ = timed(lambda: materialize(pipeline_assets(with_datasets),
                                                       resources_for(args.database_url, schema_name, base)))
                if rep:
                    runs[name].append(seconds)
                log(f"D1. {name}: {seconds:.2f} s")
        figures["daily"] = {name: median(values) for name, values in runs.items()}
        # the day just loaded (with every dataset) is what the history scenarios start from
        from llama_pipeline.fetch import history_selection
        from llama_pipeline.write.warehouse import Warehouse as W

        with W(database_url=args.database_url, schema_name=schema_name).connection() as conn:
            slugs, _ = history_selection.top_projects(conn, schema_name, [], args.protocol_count)
            chain_count = len(history_selection.known_chains(conn, schema_name, []))
        large[slugs[0]] = LARGE_PROTOCOL
        log(f"D2. {chain_count} chains' TVL history")
        figures["chains"] = {**history_in_child(args, "chain_tvl_daily", schema_name, server), "chains": chain_count}
        log(f"D3. {len(slugs)} protocols' TVL history ({slugs[0]} at ~28 MB)")
        figures["protocols"] = {**history_in_child(args, "protocol_tvl_daily", schema_name, server),
                                "protocols": len(slugs)}
    drop_schema(args.database_url, schema_name)

    daily = figures["daily"]
    print(f"# llama-pipeline datasets benchmark: {os.cpu_count()} cores, {sizes}, {reps} reps"
          f"{' (quick)' if quick else ''}")
    table("D1. Daily run with all datasets", ["graph", "median"],
          [["yields' whole graph", fmt(daily["yields"])], ["with lending and chain ids", fmt(daily["all"])]])
    rows = []
    for key, label, count in (("chains", "all chains' TVL history", "chains"),
                              ("protocols", "protocols' TVL history", "protocols")):
        f = figures[key]
        rows.append([label, str(f[count]), fmt(f["seconds"]), f"{f['requests_per_second']:.1f}",
                     f"{f['points_upserted']:,}", str(f["series_failed"]), f"{f['peak_rss_mb']:.0f} MB"])
    table("D2. History backfills", ["scenario", "series", "time", "req/s", "points", "failed", "peak RSS"], rows)
    measured = {"daily with datasets / yields' whole graph": daily["all"] / daily["yields"],
                "chain TVL history peak RSS (MB)": figures["chains"]["peak_rss_mb"],
                "protocol TVL history peak RSS (MB)": figures["protocols"]["peak_rss_mb"]}
    table("Targets (datasets)", ["figure", "measured", "target", "met"],
          [[name, f"{value:.2f}", f"<= {TARGETS[name]:g}", "yes" if value <= TARGETS[name] else "NO"]
           for name, value in measured.items()])
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
