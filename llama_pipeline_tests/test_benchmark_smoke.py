"""The benchmark (benchmarks/run.py) still runs end to end on a tiny payload. No timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADINGS = (
    "== 1. One day",
    "== 2. The floor",
    "== 3. Peers",
    "== 4. Day 2",
    "== 5. Backfill",
    "== 6a. Analytics upkeep",
    "== 6. Queries",
    "== 7. Memory and disk",
    "== Targets",
)


def quick_run(script: str, database_url: str, prefix: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick",
         "--database-url", database_url, "--schema-prefix", prefix],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


def test_benchmark_quick_run(database_url: str) -> None:
    stdout = quick_run("run.py", database_url, "smoke")
    for heading in HEADINGS:
        assert heading in stdout, f"{heading!r} missing from:\n{stdout}"


DATASET_HEADINGS = ("== D1. Daily run with all datasets", "== D2. History backfills", "== Targets (datasets)")


def test_datasets_benchmark_quick_run(database_url: str) -> None:
    stdout = quick_run("datasets.py", database_url, "smoke15")
    for heading in DATASET_HEADINGS:
        assert heading in stdout, f"{heading!r} missing from:\n{stdout}"
    assert "all chains' TVL history" in stdout and "protocols' TVL history" in stdout
