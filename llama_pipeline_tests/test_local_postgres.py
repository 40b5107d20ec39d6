"""The embedded PostgreSQL server really starts, keeps data, moves off a taken port and cleans up.

Skipped only when this machine has no way at all to run a server (no initdb/pg_ctl and no pgserver).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from llama_pipeline import local_postgres as lp

BINARIES = lp.find_binaries()
pytestmark = pytest.mark.skipif(
    not BINARIES, reason="no PostgreSQL server binaries here (no initdb/pg_ctl, no pgserver wheel)"
)
REPO = Path(__file__).resolve().parents[1]


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
        assert url.startswith("postgresql://postgres@127.0.0.1:")
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


def test_data_survives_a_restart_and_wipe_removes_it(base_dir):
    data = base_dir / "pgdata"
    url = lp.ensure_server(data)
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
    assert not data.exists()
    assert lp.wipe(data) is False


def test_taken_port_moves_to_a_free_one_or_fails_clearly_when_explicit(base_dir):
    data = base_dir / "pgdata"
    first = lp.ensure_server(data)
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


@pytest.mark.skipif(lp._pgserver_bin_dir() is None, reason="pgserver wheel not installed")
def test_pgserver_wheel_binaries_work(monkeypatch):
    """The path a fresh machine without PostgreSQL takes: the server shipped in the pgserver wheel."""
    monkeypatch.setenv("LLAMA_PG_BIN", str(lp._pgserver_bin_dir()))
    chosen = lp.find_binaries()[0]
    assert chosen.source == "LLAMA_PG_BIN"
    with lp.temporary_server() as url:
        version = _query(url, "SHOW server_version")[0][0]
        assert version.split(".")[0] == str(chosen.major)


def test_command_line_exec_temp_passes_the_url_and_the_exit_code():
    code = (
        "import os, sys, psycopg2;"
        "psycopg2.connect(os.environ['TEST_DATABASE_URL']).close();"
        "sys.exit(3)"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "llama_pipeline.local_postgres", "exec-temp", "--", sys.executable, "-c", code],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "llama_pipeline.local_postgres", "binaries"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert listing.returncode == 0 and "PostgreSQL" in listing.stdout
