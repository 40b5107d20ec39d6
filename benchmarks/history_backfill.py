"""History backfill benchmark (issue 6): N pools' charts over D past days, served on 127.0.0.1.

    .venv/bin/python benchmarks/history_backfill.py [--pools 1000] [--days 365] [--concurrency 8]
        [--charts-only] [--database-url postgresql://postgres@127.0.0.1:5432/llama_bench]

Loads today's partition (so the warehouse knows the pools), then backfills the D days before today as one
range run of raw_pool_charts + the warehouse assets (``--charts-only``: raw_pool_charts alone), with the
polite rate limit lifted (the server is local). Prints the chart fetch rate, the rate per tenth of the
charts (a backfill that slows down as it stores points shows here), the process's peak RSS, the time
of each asset and the whole run, and a resumed run's time.

Charts are generated when requested (the same bytes every time for a pool), not held: 17,000 charts of
1,460 days are about 5 GB of JSON, which would swamp the figure of the pipeline's own memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402
import psycopg2  # noqa: E402

from llama_pipeline.db_url import libpq_url  # noqa: E402
from llama_pipeline.fetch.http_client import DefiLlamaClient  # noqa: E402
from llama_pipeline.partitions import utc_today  # noqa: E402
from llama_pipeline.decode.decoded_payloads import DecodedPayloads  # noqa: E402
from llama_pipeline.write.io_manager import WarehouseIOManager  # noqa: E402
from llama_pipeline_tests.testing import synthetic  # noqa: E402
from llama_pipeline_tests.testing.payload_server import PayloadServer, Response  # noqa: E402
from llama_pipeline.write.warehouse import Warehouse, migrate_to_head  # noqa: E402
from llama_pipeline_tests.conftest import all_assets  # noqa: E402


def step_seconds(result: dg.ExecuteInProcessResult) -> dict[str, float]:
    return {event.step_key: event.event_specific_data.duration_ms / 1000
            for event in result.all_events if event.event_type_value == "STEP_SUCCESS"}


def rates_per_tenth(times: list[float]) -> list[float]:
    """Requests per second within each tenth of the requests, in order (the rate at which the backfill
    fetched and stored them: at most a window of requests runs ahead of the writes)."""
    if len(times) < 20:
        return []
    times = sorted(times)
    bounds = [round(len(times) * k / 10) for k in range(11)]
    return [(bounds[k + 1] - bounds[k]) / max(times[bounds[k + 1] - 1] - times[max(bounds[k] - 1, 0)], 1e-9)
            for k in range(10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--charts-only", action="store_true", help="backfill raw_pool_charts alone")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/llama_bench")
    args = parser.parse_args()

    schema_name = f"bench_history_{uuid.uuid4().hex[:8]}"
    migrate_to_head(args.database_url, schema_name)
    warehouse = Warehouse(database_url=args.database_url, schema_name=schema_name, migrate_on_start=False)
    today = utc_today()
    first, last = today - dt.timedelta(days=args.days), today - dt.timedelta(days=1)
    protocols = synthetic.generate_protocols(max(50, args.pools // 3), seed=3)
    pools = synthetic.generate_pools(args.pools, seed=3, protocols=protocols)
    charts = {p["pool"] for p in pools["data"]}
    requested: list[float] = []  # when each chart request arrived (monotonic), for the rate per tenth
    lock = threading.Lock()

    # At each tenth of the charts: the database blocks pool_chart_points has read (beyond shared buffers)
    # and the process's CPU seconds so far. Per chart, these do not depend on what else loads the machine.
    samples: list[tuple[int, int, float]] = []

    def sample() -> None:
        with psycopg2.connect(libpq_url(args.database_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) FROM pg_statio_user_tables "
                        "WHERE schemaname = %s AND relname = 'pool_chart_points'", (schema_name,))
            blocks = cur.fetchone()[0]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        samples.append((len(requested), blocks, usage.ru_utime + usage.ru_stime))

    def chart(path: str) -> Response:
        with lock:
            requested.append(time.monotonic())
            if len(requested) % max(1, args.pools // 10) == 1 and len(samples) <= 10:
                sample()
        return Response(body=synthetic.dumps(synthetic.generate_chart(path.rsplit("/", 1)[-1], first, today)))
    try:
        with PayloadServer() as http:
            http.set("/pools", synthetic.dumps(pools))
            http.set("/protocols", synthetic.dumps(protocols))
            http.set_handler("/chart/", chart)
            resources = {
                "warehouse": warehouse,
                "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
                "decoded_payloads": DecodedPayloads(),
                "defillama": DefiLlamaClient(pools_url=http.url("/pools"), protocols_url=http.url("/protocols"),
                                             chart_url=http.url("/chart/{pool}")),
            }
            assert dg.materialize(all_assets(), resources=resources, partition_key=today.isoformat()).success

            def backfill() -> tuple[float, dg.ExecuteInProcessResult]:
                started = time.perf_counter()
                result = dg.materialize(
                    all_assets(), resources=resources,
                    tags={"dagster/asset_partition_range_start": first.isoformat(),
                          "dagster/asset_partition_range_end": last.isoformat()},
                    run_config={"ops": {"raw_pool_charts": {"config": {
                        "concurrency": args.concurrency, "requests_per_second": 0}}}},
                    selection=["raw_pool_charts"] if args.charts_only else None,
                )
                assert result.success
                return time.perf_counter() - started, result

            total, result = backfill()
            steps = step_seconds(result)
            requests = sum(http.count(f"/chart/{pool_id}") for pool_id in charts)
            tenths = rates_per_tenth(requested)
            sample()
            peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            resumed, _ = backfill()
            refetched = sum(http.count(f"/chart/{pool_id}") for pool_id in charts) - requests
        with psycopg2.connect(libpq_url(args.database_url)) as conn, conn.cursor() as cur:
            cur.execute(f'SELECT count(*) FROM "{schema_name}".pool_snapshots WHERE source = %s', ("chart",))
            rows = cur.fetchone()[0]
    finally:
        with psycopg2.connect(libpq_url(args.database_url)) as conn, conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema_name}" CASCADE')

    print(f"history backfill: {args.pools:,} pools x {args.days} days ({first} .. {last}), "
          f"concurrency {args.concurrency}, local server")
    print(f"{'what':<40}{'value':>14}")
    print(f"{'chart requests':<40}{requests:>14,}")
    print(f"{'raw_pool_charts (fetch + archive), s':<40}{steps['raw_pool_charts']:>14.1f}")
    print(f"{'chart requests per second':<40}{requests / steps['raw_pool_charts']:>14.1f}")
    print(f"{'chart requests per second, per tenth':<40}{' '.join(f'{r:.0f}' for r in tenths):>14}")
    if tenths:
        print(f"{'last tenth / first tenth':<40}{tenths[-1] / tenths[0]:>14.2f}")
    per_chart = [((b1 - b0) / (n1 - n0), (c1 - c0) * 1000 / (n1 - n0))
                 for (n0, b0, c0), (n1, b1, c1) in zip(samples, samples[1:]) if n1 > n0]
    print(f"{'blocks read per chart, per tenth':<40}{' '.join(f'{b:.0f}' for b, _ in per_chart):>14}")
    print(f"{'CPU ms per chart (process), per tenth':<40}{' '.join(f'{c:.0f}' for _, c in per_chart):>14}")
    print(f"{'peak RSS after the backfill, MB':<40}{peak_rss_mb:>14.0f}")
    for step in ("warehouse_tables",):  # chains, projects, project_renames, pools, pool_snapshots: one step
        if step in steps:
            print(f"{step + ', s':<40}{steps[step]:>14.1f}")
    print(f"{'whole range run, s':<40}{total:>14.1f}")
    print(f"{'snapshot rows from charts':<40}{rows:>14,}")
    print(f"{'seconds per day (whole run)':<40}{total / args.days:>14.3f}")
    print(f"{'resumed run (nothing missing), s':<40}{resumed:>14.1f}")
    print(f"{'charts fetched again on resume':<40}{refetched:>14,}")


if __name__ == "__main__":
    main()
