"""What `llama.py run` prints, from a real `dagster asset materialize` on a real instance and warehouse:
one line per asset with its rows, progress and a summary naming the full log; on failure, the failed
step's error with no DEBUG noise; and the run's full event log in the named file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic, synthetic_datasets
from llama_pipeline_tests.testing.payload_server import Response

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).parent / "dagster"


def _report(tmp_path: Path, database_url: str, schema: str, http, *extra: str,
            tags: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    day = utc_today().isoformat()
    partition = list(extra) or ["--partition", day]
    tags = tags or {"dagster/partition": day}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "LLAMA_"))}
    env.update(DATABASE_URL=database_url, WAREHOUSE_SCHEMA=schema, DAGSTER_HOME=str(tmp_path),
               **synthetic_datasets.source_settings(http))
    cmd = [sys.executable, "-m", "llama_bootstrap.run_report", "--log", str(tmp_path / "logs" / "run.log"),
           *(f"--tag={k}={v}" for k, v in tags.items()), "--",
           str(DAGSTER), "asset", "materialize", "-m", "llama_pipeline.definitions", "--select", "*", *partition]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_run_prints_a_line_per_asset_and_a_summary(tmp_path, http, warehouse, database_url, schema_name,
                                                      small_day):
    pools, protocols = small_day
    http.set("/pools", synthetic.dumps(pools))
    http.set("/protocols", synthetic.dumps(protocols))
    synthetic_datasets.serve(http, pools, lending=20, chains=20, chain_days=30, protocol_days=30)
    proc = _report(tmp_path, database_url, schema_name, http)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    snapshots = [line for line in lines if line.startswith("  pool_snapshots ")]
    assert len(snapshots) == 1
    assert re.search(rf" {len(pools['data']):,} rows +[\d.]+ s +\[\d+/\d+ steps, ", snapshots[0]), snapshots
    for asset in ("raw_pools", "raw_protocols", "chains", "projects", "pools", "pool_latest", "chain_daily_stats"):
        assert sum(line.startswith(f"  {asset} ") for line in lines) == 1, (asset, proc.stdout)
    progress = [(int(done), int(total)) for done, total in re.findall(r"\[(\d+)/(\d+) steps, ", proc.stdout)]
    assert len({total for _, total in progress}) == 1, progress  # one plan for the whole run
    # steps only go up; the tables of the warehouse multi-asset share its one step, so a count may repeat
    assert [done for done, _ in progress] == sorted(done for done, _ in progress), progress
    assert len({done for done, _ in progress}) < len(progress), progress
    summary = lines[-1]
    assert re.match(r"\[llama\] \d+ assets materialized in [\d.]+ s, [\d,]+ rows; checks: \d+ passed, \d+ failed\. "
                    r"Dagster's full log: .*run\.log$", summary), summary
    log = (tmp_path / "logs" / "run.log").read_text()
    assert "STEP_SUCCESS" in log and " - DEBUG - " in log
    assert " - DEBUG - " not in proc.stdout + proc.stderr


def test_a_failed_run_says_which_step_and_why(tmp_path, http, warehouse, database_url, schema_name, small_day):
    http.set("/pools", b'{"status": "success", "data": [')  # truncated: a payload error, not retried
    http.set("/protocols", synthetic.dumps(small_day[1]))
    synthetic_datasets.serve(http, small_day[0], lending=20, chains=20, chain_days=30, protocol_days=30)
    proc = _report(tmp_path, database_url, schema_name, http)
    assert proc.returncode != 0
    out = proc.stdout
    assert "[llama] the run FAILED (failed" in out, out
    failure = re.search(r"^  raw_pools: (.+)$", out, re.M)
    assert failure and "refused the /pools capture" in failure.group(1) and "kept aside" in failure.group(1), out
    assert re.search(r"run id: [0-9a-f-]{36}; checks: .*Dagster's full log: .*run\.log$", out, re.M), out
    assert " - DEBUG - " not in out and "Traceback" not in out
    assert "STEP_FAILURE" in (tmp_path / "logs" / "run.log").read_text()


def test_a_history_range_shows_the_chart_fetch_progress(tmp_path, http, warehouse, database_url, schema_name,
                                                         small_day):
    pools, protocols = small_day
    http.set("/pools", synthetic.dumps(pools))
    http.set("/protocols", synthetic.dumps(protocols))
    synthetic_datasets.serve(http, pools, lending=20, chains=20, chain_days=30, protocol_days=30)
    assert _report(tmp_path, database_url, schema_name, http).returncode == 0  # today first: the pools to fetch
    first, last = utc_today() - dt.timedelta(days=4), utc_today() - dt.timedelta(days=2)
    http.set_handler("/chart/", lambda path: Response(body=synthetic.dumps(
        synthetic.generate_chart(path.rsplit("/", 1)[-1], first - dt.timedelta(days=30), utc_today()))))
    config = {"ops": {"raw_pool_charts": {"config": {"limit": 40, "requests_per_second": 1000, "concurrency": 8}}}}
    proc = _report(tmp_path, database_url, schema_name, http,
                   "--partition-range", f"{first}...{last}", "--config-json", json.dumps(config),
                   tags={"dagster/asset_partition_range_start": first.isoformat(),
                         "dagster/asset_partition_range_end": last.isoformat()})
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert re.search(r"^    charts 40/40 \(0 failed\), [\d.]+ req/s, done$", proc.stdout, re.M), proc.stdout
    line = re.search(r"^  pool_snapshots +([\d,]+) rows .*\[\d+/\d+ steps", proc.stdout, re.M)
    assert line and int(line.group(1).replace(",", "")) > 0, proc.stdout  # the three days' rows, summed
