"""A one-day run as the UI and the schedule launch it: from launch to success, and where the time goes.

    .venv/bin/python benchmarks/ui_run.py [--pools 17000] [--reps 3] [--database-url URL]

``dagster-webserver`` and ``dagster-daemon`` run against a throwaway instance (runs and events in
PostgreSQL, the repository's own run coordinator: queued runs that the daemon starts, each in a new run
worker process) and a throwaway warehouse fed by a local payload server with a full-size synthetic day.
Each repetition launches today's partition of every asset through the webserver's GraphQL API, with
the same mutation the UI's "Materialize all" sends, and reads the run's event log for the breakdown
(``llama_pipeline_tests/run_timing.py``). It also counts the connections each run opens to the instance's
and the warehouse's databases (``pg_stat_database.sessions``, PostgreSQL 14+): a figure that, unlike the
times, does not move with the machine's load. The first run (which creates the tables) is a warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from llama_bootstrap import local_postgres  # noqa: E402
from llama_pipeline.db_url import libpq_url  # noqa: E402
from llama_pipeline.partitions import utc_today  # noqa: E402
from llama_pipeline_tests.run_timing import RunTiming, run_timing  # noqa: E402
from llama_pipeline_tests.testing import synthetic, synthetic_datasets  # noqa: E402
from llama_pipeline_tests.testing.payload_server import PayloadServer  # noqa: E402
from llama_pipeline_tests.ui_server import dagster_database, dagster_webserver  # noqa: E402

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
ASSET_KEYS = "{ assetNodes { assetKey { path } isMaterializable } }"


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def launch_today(url: str, location: str = "llama_pipeline") -> str:
    """Today's partition of every asset, as "Materialize all" launches it (the implicit asset job)."""
    nodes = graphql(url, ASSET_KEYS)["assetNodes"]
    keys = [{"path": n["assetKey"]["path"]} for n in nodes if n["isMaterializable"]]
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": "__repository__",
                     "pipelineName": "__ASSET_JOB", "assetSelection": keys},
        "mode": "default", "runConfigData": "{}",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": utc_today().isoformat()}]},
    }
    result = graphql(url, LAUNCH, {"executionParams": params})["launchPipelineExecution"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def wait_for(instance, run_id: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        run = instance.get_run_by_id(run_id)
        if run is not None and run.is_finished:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish in {timeout:.0f} s")
        time.sleep(0.2)


@contextlib.contextmanager
def server(database_url: str | None):
    if database_url:
        yield database_url
        return
    with local_postgres.temporary_server() as url:
        yield url


def timeline(instance, run_id: str) -> str:
    """Every event of the run with its time since the launch (to see where a gap comes from)."""
    created = instance.get_run_record_by_id(run_id).create_timestamp.timestamp()
    lines = []
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        kind = event.event_type_value if event else "LOG"
        text = (entry.user_message or "").splitlines()[0][:90] if entry.user_message else ""
        lines.append(f"{entry.timestamp - created:7.3f} {kind:28} {(event.step_key if event else '') or '':32} {text}")
    return "\n".join(lines)


def sessions(admin, database: str) -> int | None:
    """Connections ever opened to ``database`` (PostgreSQL 14+), to count what a run opens."""
    if admin.server_version < 140000:
        return None
    with admin.cursor() as cur:
        cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))
        return cur.fetchone()[0]


def measure(server_url: str, pools: int, reps: int, show_timeline: bool = False) -> list[RunTiming]:
    import dagster as dg

    protocols = synthetic.generate_protocols(seed=5)
    payload = synthetic.generate_pools(pools, seed=5, protocols=protocols, day=utc_today())
    warehouse_db = f"llama_ui_bench_{int(time.time())}"
    warehouse_url = local_postgres.create_database(libpq_url(server_url), warehouse_db)
    admin = psycopg2.connect(libpq_url(server_url))
    admin.autocommit = True
    timings = []
    try:
        with (PayloadServer() as http, dagster_database(server_url) as dagster_pg_url,
              tempfile.TemporaryDirectory() as home):
            http.set("/pools", synthetic.dumps(payload))
            http.set("/protocols", synthetic.dumps(protocols))
            synthetic_datasets.serve(http, payload)  # /lendBorrow and /v2/chains at full size
            env = {"DATABASE_URL": warehouse_url, **synthetic_datasets.source_settings(http)}
            with dagster_webserver(Path(home), dagster_pg_url, env, daemon=True) as ui, \
                    dg.DagsterInstance.from_config(str(home)) as instance:
                databases = (dagster_pg_url.rsplit("/", 1)[1], warehouse_db)
                for rep in range(reps + 1):
                    before = [sessions(admin, name) for name in databases]
                    run_id = launch_today(ui.url)
                    wait_for(instance, run_id)
                    timing = run_timing(instance, run_id)
                    assert timing.status == "SUCCESS", f"{timing}\n{ui.log_tail()}"
                    time.sleep(1.5)  # the server's statistics are flushed about once a second
                    opened = [None if b is None else sessions(admin, name) - b for name, b in zip(databases, before)]
                    print(("warm-up " if rep == 0 else f"run {rep}: ") + timing.summary()
                          + f"; connections opened: instance {opened[0]}, warehouse {opened[1]}", flush=True)
                    if rep:
                        timings.append(timing)
                if show_timeline:
                    print(timeline(instance, run_id))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{warehouse_db}" WITH (FORCE)')
        admin.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", type=int, default=17000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--database-url", help="a server where the benchmark may create databases "
                        "(default: a throwaway embedded server)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--timeline", action="store_true", help="print the last run's events with their times")
    args = parser.parse_args(argv)
    with server(args.database_url) as url:
        timings = measure(url, args.pools, args.reps, args.timeline)
    fields = ("total", "queued", "worker_start", "setup", "steps", "between_steps", "teardown")
    medians = {name: round(statistics.median(getattr(t, name) for t in timings), 2) for name in fields}
    print(f"median of {len(timings)} runs ({args.pools:,} pools): "
          + ", ".join(f"{k} {v} s" for k, v in medians.items()))
    if args.json:
        args.json.write_text(json.dumps({"pools": args.pools, "median": medians,
                                         "runs": [t.as_dict() for t in timings]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
