"""What `llama.py run` prints, from a real `dagster asset materialize` on a real instance and warehouse:
one line per asset with its rows, progress and a summary naming the full log; on failure, the failed
step's error with no DEBUG noise; and the run's full event log in the named file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from llama_pipeline.partitions import utc_today
from llama_pipeline_tests.testing import synthetic

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).parent / "dagster"


def _report(tmp_path: Path, database_url: str, schema: str, http) -> subprocess.CompletedProcess:
    day = utc_today().isoformat()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "LLAMA_"))}
    env.update(DATABASE_URL=database_url, WAREHOUSE_SCHEMA=schema, DAGSTER_HOME=str(tmp_path),
               SOURCE_URL=http.url("/pools"), PROTOCOLS_URL=http.url("/protocols"),
               CHART_URL=http.url("/chart/{pool}"))
    cmd = [sys.executable, "-m", "llama_bootstrap.run_report", "--log", str(tmp_path / "logs" / "run.log"),
           f"--tag=dagster/partition={day}", "--",
           str(DAGSTER), "asset", "materialize", "-m", "llama_pipeline.definitions", "--select", "*",
           "--partition", day]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_a_run_prints_a_line_per_asset_and_a_summary(tmp_path, http, warehouse, database_url, schema_name,
                                                      small_day):
    pools, protocols = small_day
    http.set("/pools", synthetic.dumps(pools))
    http.set("/protocols", synthetic.dumps(protocols))
    proc = _report(tmp_path, database_url, schema_name, http)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    snapshots = [line for line in lines if line.startswith("  pool_snapshots ")]
    assert len(snapshots) == 1
    assert re.search(rf" {len(pools['data']):,} rows +[\d.]+ s +\[\d+/\d+ steps, ", snapshots[0]), snapshots
    for asset in ("raw_pools", "raw_protocols", "chains", "projects", "pools", "pool_latest", "chain_daily_stats"):
        assert sum(line.startswith(f"  {asset} ") for line in lines) == 1, (asset, proc.stdout)
    assert re.search(r"\[(\d+)/\1 steps, [\d.]+ steps/s\]$", proc.stdout, re.M), "the last step says all are done"
    summary = lines[-1]
    assert re.match(r"\[llama\] 12 assets materialized in [\d.]+ s, [\d,]+ rows; checks: \d+ passed, \d+ failed\. "
                    r"Dagster's full log: .*run\.log$", summary), summary
    log = (tmp_path / "logs" / "run.log").read_text()
    assert "STEP_SUCCESS" in log and " - DEBUG - " in log
    assert " - DEBUG - " not in proc.stdout + proc.stderr


def test_a_failed_run_says_which_step_and_why(tmp_path, http, warehouse, database_url, schema_name, small_day):
    http.set("/pools", b'{"status": "success", "data": [')  # truncated: a payload error, not retried
    http.set("/protocols", synthetic.dumps(small_day[1]))
    proc = _report(tmp_path, database_url, schema_name, http)
    assert proc.returncode != 0
    out = proc.stdout
    assert "[llama] the run FAILED (failed" in out, out
    failure = re.search(r"^  raw_pools: (.+)$", out, re.M)
    assert failure and "Nothing was written" in failure.group(1), out
    assert re.search(r"run id: [0-9a-f-]{36}; checks: .*Dagster's full log: .*run\.log$", out, re.M), out
    assert " - DEBUG - " not in out and "Traceback" not in out
    assert "STEP_FAILURE" in (tmp_path / "logs" / "run.log").read_text()
