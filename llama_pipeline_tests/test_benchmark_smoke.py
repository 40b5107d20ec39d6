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


def quick_run(script: str, database_url: str, prefix: str, *extra: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick",
         "--database-url", database_url, "--schema-prefix", prefix, *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


def test_benchmark_quick_run(database_url: str) -> None:
    stdout = quick_run("run.py", database_url, "smoke")
    for heading in HEADINGS:
        assert heading in stdout, f"{heading!r} missing from:\n{stdout}"


def test_one_scenario_runs_alone_with_what_it_needs(database_url: str) -> None:
    """``--scenario peers`` runs the one day and the floor its ratios are of, and nothing else."""
    stdout = quick_run("run.py", database_url, "smoke_peers", "--scenario", "peers", "--skip-dlt")
    printed = [heading for heading in HEADINGS if heading in stdout]
    assert printed == ["== 1. One day", "== 2. The floor", "== 3. Peers", "== Targets"], stdout
    assert "row-by-row / pipeline (six assets)" in stdout


def test_footprint_runs_alone_and_says_what_it_did_not_measure(database_url: str) -> None:
    """``--scenario footprint`` needs no backfill: both RSS figures, and the disk figures named as not taken."""
    stdout = quick_run("run.py", database_url, "smoke_rss", "--scenario", "footprint")
    printed = [heading for heading in HEADINGS if heading in stdout]
    assert printed == ["== 7. Memory and disk", "== Targets"], stdout
    assert "dg.materialize" in stdout and "as a run worker executes it" in stdout
    assert "not measured: no backfilled schema" in stdout and "raw payloads per day" not in stdout


def test_an_unknown_scenario_is_refused_by_name() -> None:
    completed = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--scenario", "one_day,nope"],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode != 0 and "unknown scenario(s) nope" in completed.stderr, completed.stderr


DATASET_HEADINGS = ("== D1. Daily run with all datasets", "== D2. History backfills", "== Targets (datasets)")


def test_datasets_benchmark_quick_run(database_url: str) -> None:
    stdout = quick_run("datasets.py", database_url, "smoke15")
    for heading in DATASET_HEADINGS:
        assert heading in stdout, f"{heading!r} missing from:\n{stdout}"
    assert "all chains' TVL history" in stdout and "protocols' TVL history" in stdout
