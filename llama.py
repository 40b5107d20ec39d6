#!/usr/bin/env python3
"""llama-pipeline's one entry point: environment, local database, pipeline, tests, UI.

    python3 llama.py run [--date D | --range D1...D2] [--verbose]
                                               load today's (UTC) DeFiLlama snapshot into PostgreSQL
    python3 llama.py test [pytest args]        run the test suite (default: llama_pipeline_tests)
    python3 llama.py ui [dagster dev args]     Dagster UI + daemon (schedules) on http://127.0.0.1:3000
    python3 llama.py db start|stop|wipe|url    the embedded PostgreSQL server in .llama/pgdata
    python3 llama.py dagster [args]            the dagster CLI on the same instance and warehouse
    python3 llama.py dg [args]                 dg (dg launch, dg dev, dg check defs) on the same ones

Every command first makes sure .venv exists and holds exactly requirements-dev.lock (the runtime
lock plus tests, the embedded server and the dg CLI; reinstalling only when a lock or pyproject.toml
changed) and loads .env if present (variables already set in the
environment win). When DATABASE_URL is not set, an embedded PostgreSQL server keeps its data in
.llama/pgdata (databases "llama" for the warehouse and "dagster" for Dagster's own storage).

Standard library only; needs Python 3.11 or newer.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-dev.lock"
RUNTIME_LOCK = ROOT / "requirements.lock"
STATE = ROOT / ".llama"
PGDATA = STATE / "pgdata"
PGPASS = STATE / "pgdata.pgpass"  # the embedded server's password (llama_bootstrap.pg_password)
DAGSTER_STORAGE = STATE / "dagster"
LOGS = STATE / "logs"  # Dagster's full output of each `run`
STAMP = VENV / ".llama-installed"
WAREHOUSE_DB = "llama"
DAGSTER_DB = "dagster"
DEFS_MODULE = "llama_pipeline.definitions"
UI_HOST, UI_PORT = "127.0.0.1", "3000"


class Fail(Exception):
    """A failure with a message for the user; exit code 1 unless given."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def say(msg: str) -> None:
    print(f"[llama] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# .env


def load_dotenv(path: Path) -> list[str]:
    """Set KEY=VALUE lines of ``path`` into os.environ unless already set; return keys set."""
    if not path.is_file():
        return []
    loaded = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        if key not in os.environ:
            os.environ[key] = value
            loaded.append(key)
    return loaded


# ---------------------------------------------------------------------------------------------
# virtual environment


def venv_bin(name: str) -> Path:
    return VENV / ("Scripts" if os.name == "nt" else "bin") / name


def venv_python() -> Path:
    return venv_bin("python.exe" if os.name == "nt" else "python")


def _python_version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def lock_digest(py: Path) -> str:
    h = hashlib.sha256()
    for f in (LOCK, RUNTIME_LOCK, ROOT / "pyproject.toml"):
        h.update(f.read_bytes())
    h.update(repr(_python_version(str(py))).encode())
    return h.hexdigest()


def run_checked(argv: list, what: str, **kwargs) -> None:
    rc = subprocess.run([str(a) for a in argv], **kwargs).returncode
    if rc != 0:
        raise Fail(f"{what} failed (exit code {rc}); see the messages above.", rc)


def ensure_venv() -> None:
    if not LOCK.is_file():
        raise Fail(f"{LOCK.name} is missing; restore it from git (git checkout -- {LOCK.name}).")
    py = venv_python()
    if not py.exists() or _python_version(str(py)) is None:
        if VENV.exists():
            say(f"{VENV} is broken; recreating it")
            shutil.rmtree(VENV)
        base = sys.executable
        say(f"creating {VENV.relative_to(ROOT)} with {base}")
        rc = subprocess.run([base, "-m", "venv", str(VENV)]).returncode
        if rc != 0:
            raise Fail(
                "Could not create the virtual environment. On Debian/Ubuntu install the venv module "
                "first: sudo apt-get install python3-venv"
            )
    digest = lock_digest(py)
    if STAMP.is_file() and STAMP.read_text().strip() == digest:
        return
    say(f"installing the locked dependencies from {LOCK.name} (a few minutes the first time)")
    STAMP.unlink(missing_ok=True)
    pip = [py, "-m", "pip", "--disable-pip-version-check", "install", "--progress-bar", "off"]
    # The lock is complete (every transitive dependency, pinned and hashed): no resolution, so --no-deps.
    run_checked([*pip, "-q", "--require-hashes", "--no-deps", "-r", LOCK],
                f"Installing the dependencies (pip install -r {LOCK.name})")
    run_checked([*pip, "-q", "--no-deps", "-e", ROOT], "Installing the project (pip install -e .)")
    STAMP.write_text(digest + "\n")
    say("environment ready")


def venv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = str(venv_python().parent) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def vpy(*args: str, capture: bool = True, check: bool = True) -> subprocess.CompletedProcess:
    """Run the venv's python with ``args``."""
    proc = subprocess.run(
        [str(venv_python()), *args], cwd=ROOT, env=venv_env(), text=True,
        stdout=subprocess.PIPE if capture else None,
    )
    if check and proc.returncode != 0:
        raise Fail(f"'python {' '.join(args[:3])} ...' failed (exit code {proc.returncode}).", proc.returncode)
    return proc


def local_pg(*args: str) -> str:
    return vpy("-m", "llama_bootstrap", *args).stdout.strip()


# ---------------------------------------------------------------------------------------------
# database and Dagster instance


def setup_env(start_embedded: bool = True) -> dict:
    """Load .env, point Dagster at the repo's dagster.yaml, start the embedded server if needed."""
    loaded = load_dotenv(ROOT / ".env")
    if loaded:
        say(f"loaded .env ({', '.join(loaded)})")
    os.environ.setdefault("DAGSTER_HOME", str(ROOT))
    os.environ.setdefault("DAGSTER_STORAGE_DIR", str(DAGSTER_STORAGE))
    Path(os.environ["DAGSTER_STORAGE_DIR"]).mkdir(parents=True, exist_ok=True)
    if not (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").is_file():
        say(f"warning: {os.environ['DAGSTER_HOME']}/dagster.yaml not found (DAGSTER_HOME)")
    info: dict = {"embedded": False, "psql": shutil.which("psql")}
    if not start_embedded:
        return info
    if not os.environ.get("DATABASE_URL"):
        server = json.loads(local_pg("ensure", str(PGDATA)))
        base = server["url"]
        # The URLs carry no password: libpq (psycopg2, so Dagster and alembic too) reads it from here.
        os.environ["PGPASSFILE"] = server["pgpass"]
        os.environ["DATABASE_URL"] = local_pg("create-db", base, WAREHOUSE_DB)
        if not os.environ.get("DAGSTER_PG_URL"):
            os.environ["DAGSTER_PG_URL"] = local_pg("create-db", base, DAGSTER_DB)
        info.update(embedded=True, psql=server.get("psql") or info["psql"])
        say(
            f"embedded PostgreSQL {server['version']} ({server['source']}) running, data in "
            f"{PGDATA.relative_to(ROOT)}: {os.environ['DATABASE_URL']}"
        )
    elif not os.environ.get("DAGSTER_PG_URL"):
        # Dagster's own tables go in their own database on the warehouse's server.
        snippet = (
            "import os,re,sys; from llama_bootstrap.local_postgres import create_database;"
            "u=re.sub(r'^postgres(ql)?(\\+\\w+)?://','postgresql://',os.environ['DATABASE_URL']);"
            f"print(create_database(u.split('?')[0], {DAGSTER_DB!r}))"
        )
        proc = vpy("-c", snippet, check=False)
        if proc.returncode != 0:
            raise Fail(
                "DATABASE_URL is set but DAGSTER_PG_URL is not, and the database "
                f"'{DAGSTER_DB}' could not be created on the warehouse's server (see above). Create it "
                "or set DAGSTER_PG_URL to a database Dagster may use for its runs, events and schedules."
            )
        os.environ["DAGSTER_PG_URL"] = proc.stdout.strip()
    # dagster-postgres hands the URL to SQLAlchemy, which (2.1+) reads a plain postgresql:// as
    # psycopg 3; the lock ships psycopg2.
    os.environ["DAGSTER_PG_URL"] = re.sub(
        r"^postgres(?:ql)?://", "postgresql+psycopg2://", os.environ["DAGSTER_PG_URL"]
    )
    return info


# ---------------------------------------------------------------------------------------------
# run


def _pipeline_today() -> str:
    """Today as the pipeline's clock says (llama_pipeline/clock.py: UTC, shifted by
    LLAMA_CLOCK_OFFSET_SECONDS), so `run` asks for the day the raw assets will fetch."""
    offset = float(os.environ.get("LLAMA_CLOCK_OFFSET_SECONDS", "").strip() or 0)
    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).date().isoformat()


def _run_args(args: list[str]) -> tuple[list[str], dict[str, str], str, bool]:
    """(dagster partition options, tags the run will carry, label, verbose) from run's arguments."""
    verbose = "--verbose" in args
    rest = [a for a in args if a != "--verbose"]
    usage = "usage: python3 llama.py run [--date YYYY-MM-DD | --range YYYY-MM-DD...YYYY-MM-DD] [--verbose]"
    if not rest:
        day = _pipeline_today()
        return ["--partition", day], {"dagster/partition": day}, day, verbose
    if len(rest) == 2 and rest[0] == "--date":
        return ["--partition", rest[1]], {"dagster/partition": rest[1]}, rest[1], verbose
    if len(rest) == 2 and rest[0] == "--range" and "..." in rest[1]:
        start, end = rest[1].split("...", 1)
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
        return ["--partition-range", rest[1]], tags, f"{start}...{end}", verbose
    raise Fail(usage, 2)


def cmd_run(args: list[str]) -> int:
    partition, tags, label, verbose = _run_args(args)
    ensure_venv()
    info = setup_env()
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"run-{label.replace('...', '_')}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.log"
    say("applying migrations (alembic upgrade head)")
    with open(log, "w", encoding="utf-8") as out:
        rc = subprocess.run([str(venv_bin("alembic")), "upgrade", "head"], cwd=ROOT, env=venv_env(),
                            stdout=out, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        print(log.read_text(errors="replace")[-4000:], file=sys.stderr)
        raise Fail(f"alembic upgrade head failed (exit code {rc}); its output is above and in {log}.", rc)
    say(f"materializing every asset for {label} (Dagster's full log: {log.relative_to(ROOT)})")
    dagster = [venv_bin("dagster"), "asset", "materialize", "-m", DEFS_MODULE, "--select", "*", *partition]
    report = ["-m", "llama_bootstrap.run_report", "--log", str(log), *(["--verbose"] if verbose else []),
              *(f"--tag={k}={v}" for k, v in tags.items()), "--", *map(str, dagster)]
    rc = vpy(*report, capture=False, check=False).returncode
    if rc != 0:
        print(
            "[llama] No network? The source URLs are SOURCE_URL="
            f"{os.environ.get('SOURCE_URL', 'https://yields.llama.fi/pools')} and PROTOCOLS_URL="
            f"{os.environ.get('PROTOCOLS_URL', 'https://api.llama.fi/protocols')}; "
            "point them at a mirror or at file:// copies in .env.",
            flush=True,
        )
        return rc
    psql = info.get("psql") or "psql"
    if info["embedded"]:
        # The password stays in the pgpass file: this line is safe to copy, share or log.
        look = f"PGPASSFILE={os.environ['PGPASSFILE']} {psql} '{os.environ['DATABASE_URL']}'"
    else:
        look = f'{psql} "$DATABASE_URL"'
    print(
        "\n[llama] Look at it:\n"
        f"  SQL:  {look}\n"
        "  UI:   python3 llama.py ui    (then open http://127.0.0.1:3000; the schedule runs daily)\n"
        + ("  Stop the local database: python3 llama.py db stop\n" if info["embedded"] else ""),
        flush=True,
    )
    return 0


# ---------------------------------------------------------------------------------------------
# test, ui, db


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    setup_env(start_embedded=False)
    pytest = [str(venv_python()), "-m", "pytest", *(args or ["llama_pipeline_tests"])]
    if os.environ.get("TEST_DATABASE_URL"):
        cmd = pytest
    else:
        say("TEST_DATABASE_URL not set: starting a throwaway PostgreSQL server for the tests")
        cmd = [str(venv_python()), "-m", "llama_bootstrap", "exec-temp",
               "--env", "TEST_DATABASE_URL", "--", *pytest]
    return _foreground(cmd)


def cmd_ui(args: list[str]) -> int:
    ensure_venv()
    setup_env()
    say(f"starting Dagster (webserver + daemon) on http://{UI_HOST}:{UI_PORT}; Ctrl-C stops it")
    cmd = [str(venv_bin("dagster")), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", UI_HOST, "-p", UI_PORT, *args]
    return _foreground(cmd)


def cmd_db(args: list[str]) -> int:
    action = args[0] if args else ""
    if action not in ("start", "stop", "wipe", "url"):
        raise Fail("usage: python3 llama.py db start|stop|wipe|url", 2)
    ensure_venv()
    if action == "start":
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("DAGSTER_PG_URL", None)
        setup_env()
        print(os.environ["DATABASE_URL"])
    elif action == "stop":
        say(f"embedded server ({PGDATA.relative_to(ROOT)}): {local_pg('stop', str(PGDATA))}")
    elif action == "wipe":
        say(f"embedded server data ({PGDATA.relative_to(ROOT)}): {local_pg('wipe', str(PGDATA))}")
        if DAGSTER_STORAGE.exists():
            shutil.rmtree(DAGSTER_STORAGE)
            say(f"deleted Dagster's local files ({DAGSTER_STORAGE.relative_to(ROOT)})")
    elif action == "url":
        proc = vpy("-m", "llama_bootstrap", "url", str(PGDATA), check=False)
        if proc.returncode != 0:
            say("the embedded server is not running (start it: python3 llama.py db start)")
            return 1
        base = proc.stdout.strip().rsplit("/", 1)[0]
        print(f"PGPASSFILE={PGPASS}")
        print(f"DATABASE_URL={base}/{WAREHOUSE_DB}")
        print(f"DAGSTER_PG_URL={base.replace('postgresql://', 'postgresql+psycopg2://', 1)}/{DAGSTER_DB}")
    return 0


def cmd_dagster(args: list[str]) -> int:
    """The dagster CLI against the same instance and warehouse as `run` and `ui` (runs show in the UI)."""
    ensure_venv()
    setup_env()
    return _foreground([str(venv_bin("dagster")), *args])


def _foreground(cmd: list[str]) -> int:
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=venv_env())
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue  # the child got the same Ctrl-C; wait for it to finish cleaning up


def cmd_dg(args: list[str]) -> int:
    """Dagster's current CLI (dg dev, dg launch, dg check defs) on the same instance and warehouse."""
    ensure_venv()
    setup_env()
    return _foreground([str(venv_bin("dg")), *args])


COMMANDS = {"run": cmd_run, "test": cmd_test, "ui": cmd_ui, "db": cmd_db, "dagster": cmd_dagster, "dg": cmd_dg}


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print("llama.py needs Python 3.11 or newer (python3 --version).", file=sys.stderr)
        return 1
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.split("\n\n")[1] if argv[:1] not in (["-h"], ["--help"]) else __doc__)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except Fail as exc:
        print(f"[llama] error: {exc}", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
