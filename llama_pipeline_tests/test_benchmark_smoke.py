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


def test_benchmark_quick_run(database_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
         "--database-url", database_url, "--schema-prefix", "smoke"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    for heading in HEADINGS:
        assert heading in completed.stdout, f"{heading!r} missing from:\n{completed.stdout}"


DATASET_HEADINGS = ("== D1. Daily run with all datasets", "== D2. History backfills", "== Targets (datasets)")


def test_datasets_benchmark_quick_run(database_url: str) -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "datasets.py"), "--quick",
         "--database-url", database_url, "--schema-prefix", "smoke15"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    for heading in DATASET_HEADINGS:
        assert heading in completed.stdout, f"{heading!r} missing from:\n{completed.stdout}"
    assert "all chains' TVL history" in completed.stdout and "protocols' TVL history" in completed.stdout
