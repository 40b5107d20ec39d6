"""The embedded PostgreSQL server for machines that have none configured.

Used by ``llama.py`` (``run``, ``ui``, ``test``, ``db ...``, through ``python -m llama_bootstrap``) and by
the test suite when ``DATABASE_URL`` / ``TEST_DATABASE_URL`` are not set. Standard library only (and
psycopg2, imported lazily, for :func:`create_database`).

Which binaries: :mod:`llama_bootstrap.pg_binaries`; as root, which account: :mod:`llama_bootstrap.pg_account`.
The server listens on 127.0.0.1 only, and on a Unix socket inside the data directory when the path is short
enough for one; every login needs the password (SCRAM-SHA-256) that :mod:`llama_bootstrap.pg_password`
keeps in ``<data dir>.pgpass``. The URLs returned here carry no password: clients find it through
``PGPASSFILE`` (:func:`pgpass_file`), except those of :func:`temporary_server`, a throwaway server whose URL
carries it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from llama_bootstrap.pg_account import Account, give_to, require_reachable, run_pg, server_account
from llama_bootstrap.pg_binaries import LocalPostgresError, PgBinaries, choose_binaries, find_binaries
from llama_bootstrap.pg_state import HOST, any_free_port, locked, port_free, postmaster
from llama_bootstrap.pg_password import (
    PG_HBA, SUPERUSER, new_password, pgpass_path, read_password, scram_verifier, with_password, write_password,
)

__all__ = [
    "DEFAULT_PORT",
    "LocalPostgresError",
    "any_free_port",
    "PgBinaries",
    "choose_binaries",
    "create_database",
    "ensure_server",
    "find_binaries",
    "pgpass_file",
    "running_url",
    "stop_server",
    "temporary_server",
    "url_with_password",
    "wipe",
    "with_database",
]

DEFAULT_PORT = 55432
PORT_FILE = "llama_port"
LOG_FILE = "server.log"
START_TIMEOUT_S = 60
# sun_path is 108 bytes on Linux, 104 on macOS; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_PATH = 100


def _url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@{HOST}:{port}/{quote(database, safe='')}"


def running_url(data_dir: Path | str) -> str | None:
    """URL of the ``postgres`` database of the server running on ``data_dir``, or None."""
    info = postmaster(Path(data_dir).resolve())
    if info is None or info[1] is None:
        return None
    return _url(info[1])


# --------------------------------------------------------------------------------------------
# public API


def ensure_server(data_dir: Path | str, port: int | None = None, *, fast: bool = False) -> str:
    """Initialize ``data_dir`` if needed, start a server on it if none runs, return its URL.

    The URL is a libpq URL to the ``postgres`` database, without the password
    (``postgresql://postgres@127.0.0.1:PORT/postgres``; the password is in :func:`pgpass_file`). Data is
    kept in ``data_dir`` between runs. ``port``: the port to use (an error if taken); by default the port
    used last time for this directory, else :data:`DEFAULT_PORT`, else any free port. ``fast`` turns off
    fsync (for throwaway servers only).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    with locked(data_dir):
        info = postmaster(data_dir)
        if info is not None and info[1] is not None:
            if port is not None and info[1] != port:
                raise LocalPostgresError(
                    f"The local server on {data_dir} is already running on port {info[1]}, not {port}; "
                    "stop it first ('python3 llama.py db stop')."
                )
            return _url(info[1])
        account = server_account(data_dir)
        binaries = choose_binaries(data_dir)
        require_reachable(account, "the data directory's folder", data_dir.parent)
        require_reachable(account, "the server's binaries in", binaries.bin_dir)
        _init_if_needed(data_dir, binaries, account)
        _require_password(data_dir, binaries, account)
        return _start(data_dir, binaries, account, port, fast=fast)


def pgpass_file(data_dir: Path | str) -> Path:
    """The pgpass file holding the password of the server on ``data_dir`` (for ``PGPASSFILE``)."""
    return pgpass_path(Path(data_dir).expanduser().resolve())


def url_with_password(data_dir: Path | str, url: str) -> str:
    """``url`` of the server on ``data_dir`` with its password, for clients without PGPASSFILE (tests)."""
    return with_password(url, read_password(Path(data_dir).expanduser().resolve()) or "")


def _init_if_needed(data_dir: Path, binaries: PgBinaries, account: Account | None) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise LocalPostgresError(
            f"{data_dir} exists, is not empty and is not a PostgreSQL data directory; "
            "move it away or choose another directory."
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    give_to(account, data_dir)
    # No server runs before _require_password has replaced pg_hba.conf: initdb's "trust" never listens.
    run_pg(
        account,
        [binaries.exe("initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
         "--locale=C"],
        timeout=180,
    )


def _require_password(data_dir: Path, binaries: PgBinaries, account: Account | None) -> None:
    """Give the stopped server on ``data_dir`` a password and password-only logins, unless it has them.

    Also what secures a data directory an older llama.py created with ``trust`` authentication.
    """
    hba = data_dir / "pg_hba.conf"
    password = read_password(data_dir)
    with contextlib.suppress(OSError):
        if password and hba.read_text() == PG_HBA:
            return
    password = password or new_password()
    write_password(data_dir, password)  # first, so a failure below retries with the same password
    # Single-user mode: no listener, no login; the statement holds the SCRAM verifier, not the password.
    statement = f"ALTER ROLE {SUPERUSER} PASSWORD '{scram_verifier(password)}';\n"
    run_pg(
        account, [binaries.exe("postgres"), "--single", "-D", str(data_dir), "postgres"],
        timeout=120, stdin_text=statement,
    )
    hba.write_text(PG_HBA)
    os.chmod(hba, 0o600)
    if account is not None:
        os.chown(hba, account.uid, account.gid)


def _start(
    data_dir: Path, binaries: PgBinaries, account: Account | None, port: int | None, *, fast: bool
) -> str:
    port_file = data_dir / PORT_FILE
    explicit = port is not None
    if port is None:
        try:
            port = int(port_file.read_text().strip())
        except (OSError, ValueError):
            port = DEFAULT_PORT
    if not port_free(port):
        if explicit:
            raise LocalPostgresError(
                f"Port {port} on {HOST} is already in use; choose another port or stop what uses it."
            )
        port = any_free_port()

    log = data_dir / LOG_FILE
    socket_dir = str(data_dir)
    socket_ok = len(os.path.join(socket_dir, f".s.PGSQL.{port}").encode()) <= _MAX_SOCKET_PATH
    if "'" in socket_dir or " " in socket_dir:
        socket_ok = False
    options = [f"-p {port}", f"-c listen_addresses={HOST}"]
    options.append(f"-k '{socket_dir}'" if socket_ok else "-c unix_socket_directories=''")
    if fast:
        options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
    argv = [
        binaries.exe("pg_ctl"), "-D", str(data_dir), "-l", str(log), "-w",
        "-t", str(START_TIMEOUT_S), "-o", " ".join(options), "start",
    ]
    if account is not None and log.exists():
        os.chown(log, account.uid, account.gid)
    result = run_pg(account, argv, timeout=START_TIMEOUT_S + 30, check=False)
    if result.returncode != 0 or postmaster(data_dir) is None:
        tail = ""
        with contextlib.suppress(OSError):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LocalPostgresError(
            f"Could not start PostgreSQL {binaries.version} ({binaries.bin_dir}) on {data_dir}, "
            f"port {port}: {result.stdout.strip()[-1000:]}\n--- last lines of {log} ---\n{tail}"
        )
    port_file.write_text(f"{port}\n")
    if account is not None:
        os.chown(port_file, account.uid, account.gid)
    return _url(port)


def stop_server(data_dir: Path | str) -> bool:
    """Stop the server running on ``data_dir``; False when none was running."""
    data_dir = Path(data_dir).expanduser().resolve()
    with locked(data_dir):
        info = postmaster(data_dir)
        if info is None:
            return False
        account = server_account(data_dir)
        try:
            binaries = choose_binaries(data_dir)
        except LocalPostgresError:
            binaries = None
        if binaries is not None:
            result = run_pg(
                account, [binaries.exe("pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "-t", "60", "stop"],
                timeout=90, check=False,
            )
            if result.returncode == 0:
                return True
        # No usable pg_ctl: ask the postmaster for a fast shutdown directly.
        pid = info[0]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        raise LocalPostgresError(f"The server on {data_dir} (pid {pid}) did not stop within 60s.")


def wipe(data_dir: Path | str) -> bool:
    """Stop the server on ``data_dir`` and delete the directory; False when there was nothing."""
    data_dir = Path(data_dir).expanduser().resolve()
    if not data_dir.exists():
        return False
    if any(data_dir.iterdir()) and not (data_dir / "PG_VERSION").exists():
        raise LocalPostgresError(f"Refusing to delete {data_dir}: it is not a PostgreSQL data directory.")
    stop_server(data_dir)
    shutil.rmtree(data_dir)
    for leftover in (data_dir.parent / f".{data_dir.name}.lock", pgpass_path(data_dir)):
        with contextlib.suppress(OSError):
            leftover.unlink()
    return True


@contextlib.contextmanager
def temporary_server() -> Iterator[str]:
    """A throwaway server in a temporary directory; yields its URL (with the password: its clients run
    with no PGPASSFILE), deletes everything after."""
    base = Path(tempfile.mkdtemp(prefix="llama-pg-"))
    data_dir = base / "pgdata"
    try:
        # Our own new folder: as root, the server's account must pass through it to its data directory.
        os.chmod(base, 0o711)
        url = ensure_server(data_dir, port=any_free_port(), fast=True)
        yield url_with_password(data_dir, url)
    finally:
        try:
            stop_server(data_dir)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url`` unless it exists; return its URL."""
    import psycopg2
    from psycopg2 import errors, sql

    conn = psycopg2.connect(url, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                except errors.DuplicateDatabase:
                    pass  # created concurrently
                except errors.UniqueViolation:
                    pass  # same race, reported through pg_database's unique index
    finally:
        conn.close()
    return with_database(url, name)


