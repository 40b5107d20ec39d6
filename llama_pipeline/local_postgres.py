"""An embedded PostgreSQL server for machines that have none configured.

Used by ``llama.py`` (``run``, ``ui``, ``test``, ``db ...``) and by the test suite when
``DATABASE_URL`` / ``TEST_DATABASE_URL`` are not set. Plain module: no Dagster objects, only the
standard library (and psycopg2, imported lazily, for :func:`create_database`).

Binaries, first found wins:

1. ``LLAMA_PG_BIN`` (a directory holding ``initdb``, ``pg_ctl`` and ``postgres``);
2. the machine's PostgreSQL: ``pg_ctl`` on ``PATH``, then the usual install places
   (``/usr/lib/postgresql/*/bin``, ``/usr/pgsql-*/bin``, Homebrew, Postgres.app), newest first;
3. the binaries shipped in the ``pgserver`` wheel (installed by the project's lock file).

A data directory remembers the major version that initialized it; only binaries of that major
version are used to start it again.

Running as root: ``initdb`` and ``postgres`` refuse to run as root, so every server command runs as
an unprivileged account instead: ``LLAMA_PG_OS_USER`` if set, else ``postgres`` if the machine has
that account, else ``nobody``. The data directory is owned by that account.

The server listens on 127.0.0.1 only (trust authentication, superuser ``postgres``, no password)
and on a Unix socket inside the data directory when the path is short enough for one.

Command line (what ``llama.py`` calls)::

    python -m llama_pipeline.local_postgres ensure DATA_DIR [--port N]   # JSON: url, bin_dir, ...
    python -m llama_pipeline.local_postgres url DATA_DIR                # exit 1 when not running
    python -m llama_pipeline.local_postgres stop DATA_DIR
    python -m llama_pipeline.local_postgres wipe DATA_DIR
    python -m llama_pipeline.local_postgres create-db URL NAME          # prints the new URL
    python -m llama_pipeline.local_postgres binaries                    # which server would be used
    python -m llama_pipeline.local_postgres exec-temp [--env NAME] -- CMD ...
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import glob
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "DEFAULT_PORT",
    "LocalPostgresError",
    "PgBinaries",
    "create_database",
    "ensure_server",
    "find_binaries",
    "running_url",
    "stop_server",
    "temporary_server",
    "wipe",
    "with_database",
]

DEFAULT_PORT = 55432
SUPERUSER = "postgres"
HOST = "127.0.0.1"
PORT_FILE = "llama_port"
LOG_FILE = "server.log"
START_TIMEOUT_S = 60
# sun_path is 108 bytes on Linux, 104 on macOS; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_PATH = 100


class LocalPostgresError(RuntimeError):
    """Something about the embedded server went wrong; the message says what to do."""


# --------------------------------------------------------------------------------------------
# binaries


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path
    major: int
    version: str
    source: str  # "LLAMA_PG_BIN", "system" or "pgserver"

    def exe(self, name: str) -> str:
        return str(self.bin_dir / name)


def _probe(bin_dir: Path, source: str) -> PgBinaries | None:
    if not all(os.access(bin_dir / n, os.X_OK) for n in ("initdb", "pg_ctl", "postgres")):
        return None
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not m:
        return None
    return PgBinaries(bin_dir=bin_dir.resolve(), major=int(m.group(1)), version=m.group(0), source=source)


def _pgserver_bin_dir() -> Path | None:
    # Locate the wheel's binaries without importing pgserver (its import has side effects).
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "pginstall" / "bin"
        if candidate.is_dir():
            return candidate
    return None


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", path)) or (0,)


def find_binaries() -> list[PgBinaries]:
    """Every usable set of server binaries, in order of preference (see the module docstring)."""
    found: list[PgBinaries] = []
    seen: set[Path] = set()

    def add(dir_: Path | str | None, source: str) -> None:
        if not dir_:
            return
        d = Path(dir_)
        try:
            key = d.resolve()
        except OSError:
            return
        if key in seen or not d.is_dir():
            return
        seen.add(key)
        b = _probe(d, source)
        if b is not None:
            found.append(b)

    env_bin = os.environ.get("LLAMA_PG_BIN")
    if env_bin:
        add(env_bin, "LLAMA_PG_BIN")
    on_path = shutil.which("pg_ctl")
    if on_path:
        add(Path(on_path).resolve().parent, "system")
    patterns = [
        "/usr/lib/postgresql/*/bin",
        "/usr/pgsql-*/bin",
        "/usr/local/pgsql/bin",
        "/opt/homebrew/opt/postgresql@*/bin",
        "/opt/homebrew/opt/postgresql/bin",
        "/usr/local/opt/postgresql@*/bin",
        "/usr/local/opt/postgresql/bin",
        "/Applications/Postgres.app/Contents/Versions/*/bin",
    ]
    for pattern in patterns:
        for d in sorted(glob.glob(pattern), key=_version_key, reverse=True):
            add(d, "system")
    add(_pgserver_bin_dir(), "pgserver")
    return found


def _choose_binaries(data_dir: Path) -> PgBinaries:
    candidates = find_binaries()
    if not candidates:
        raise LocalPostgresError(
            "No PostgreSQL server binaries found: no initdb/pg_ctl on PATH or in the usual places, "
            "and the 'pgserver' package is not installed. Run 'python3 llama.py' (it installs "
            "pgserver from requirements.lock), install PostgreSQL, point LLAMA_PG_BIN at a directory "
            "with initdb, pg_ctl and postgres, or set DATABASE_URL to an existing server."
        )
    version_file = data_dir / "PG_VERSION"
    if version_file.exists():
        try:
            wanted = int(version_file.read_text().strip().split(".")[0])
        except (OSError, ValueError):
            wanted = None
        if wanted is not None:
            for b in candidates:
                if b.major == wanted:
                    return b
            have = ", ".join(f"{b.major} ({b.bin_dir})" for b in candidates)
            raise LocalPostgresError(
                f"The data directory {data_dir} was created by PostgreSQL {wanted}, but only these "
                f"server versions are available: {have}. Install PostgreSQL {wanted}, set LLAMA_PG_BIN, "
                f"or delete the local database with 'python3 llama.py db wipe' (its data is lost)."
            )
    return candidates[0]


# --------------------------------------------------------------------------------------------
# running as root


@dataclass(frozen=True)
class _Account:
    name: str
    uid: int
    gid: int


def _server_account() -> _Account | None:
    """The account the server runs as when we are root; None when we are not root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    wanted = os.environ.get("LLAMA_PG_OS_USER")
    names = [wanted] if wanted else ["postgres", "nobody"]
    for name in names:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid == 0:
            continue
        return _Account(name, pw.pw_uid, pw.pw_gid)
    raise LocalPostgresError(
        "Running as root, and PostgreSQL refuses to run as root, but no unprivileged account "
        f"({', '.join(n for n in names if n)}) exists to run it as. Create one (useradd --system "
        "postgres) or set LLAMA_PG_OS_USER to an existing unprivileged account."
    )


def _give_to(account: _Account | None, path: Path) -> None:
    """Make ``path`` owned by the account (recursively) and its ancestors traversable by it."""
    if account is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, account.uid, account.gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), account.uid, account.gid)
    os.chown(path, account.uid, account.gid)
    _ensure_traversable(account, path.parent)


def _ensure_traversable(account: _Account, directory: Path) -> None:
    changed = []
    for d in [directory, *directory.parents]:
        st = d.stat()
        if st.st_uid == account.uid and st.st_mode & stat.S_IXUSR:
            continue
        if st.st_gid == account.gid and st.st_mode & stat.S_IXGRP:
            continue
        if st.st_mode & stat.S_IXOTH:
            continue
        os.chmod(d, st.st_mode | stat.S_IXOTH)  # search only: no listing, no reading
        changed.append(str(d))
    if changed:
        print(
            f"local_postgres: allowed account {account.name!r} to traverse (o+x): {', '.join(changed)}",
            file=sys.stderr,
        )


def _run_pg(
    account: _Account | None, argv: list[str], *, timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL command, as the server account when we are root.

    Output goes to temporary files, not pipes: ``pg_ctl start`` leaves a server running that may
    hold inherited pipes open forever.
    """
    kwargs: dict = {}
    if account is not None:
        kwargs.update(user=account.uid, group=account.gid, extra_groups=[])
    env = dict(os.environ)
    env.pop("PGDATA", None)
    env["LC_ALL"] = env.get("LC_ALL") or "C"
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True,
                timeout=timeout, cwd="/", env=env, **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalPostgresError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        output = out.read()
    result = subprocess.CompletedProcess(argv, proc.returncode, output, "")
    if check and proc.returncode != 0:
        raise LocalPostgresError(
            f"{Path(argv[0]).name} failed (exit {proc.returncode}): {output.strip()[-2000:]}"
        )
    return result


# --------------------------------------------------------------------------------------------
# state of a data directory


def _postmaster(data_dir: Path) -> tuple[int, int | None] | None:
    """(pid, port) of the server running on ``data_dir``, or None when none is running."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    if port is not None and not _port_accepts(port):
        # A stale postmaster.pid whose pid was reused by another process.
        return None
    return pid, port


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect((HOST, port))
            return True
        except OSError:
            return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As PostgreSQL does: connections left in TIME_WAIT by a previous server don't count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _url(port: int, database: str = "postgres") -> str:
    return f"postgresql://{SUPERUSER}@{HOST}:{port}/{quote(database, safe='')}"


def running_url(data_dir: Path | str) -> str | None:
    """URL of the ``postgres`` database of the server running on ``data_dir``, or None."""
    info = _postmaster(Path(data_dir).resolve())
    if info is None or info[1] is None:
        return None
    return _url(info[1])


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """Serialize start/stop of one data directory across processes (e.g. pytest-xdist workers)."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir.parent / f".{data_dir.name}.lock"
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# public API


def ensure_server(data_dir: Path | str, port: int | None = None, *, fast: bool = False) -> str:
    """Initialize ``data_dir`` if needed, start a server on it if none runs, return its URL.

    The URL is a libpq URL to the ``postgres`` database
    (``postgresql://postgres@127.0.0.1:PORT/postgres``). Data is kept in ``data_dir`` between
    runs. ``port``: the port to use (an error if taken); by default the port used last time for
    this directory, else :data:`DEFAULT_PORT`, else any free port. ``fast`` turns off fsync (for
    throwaway servers only).
    """
    data_dir = Path(data_dir).expanduser().resolve()
    with _locked(data_dir):
        info = _postmaster(data_dir)
        if info is not None and info[1] is not None:
            if port is not None and info[1] != port:
                raise LocalPostgresError(
                    f"The local server on {data_dir} is already running on port {info[1]}, not {port}; "
                    "stop it first ('python3 llama.py db stop')."
                )
            return _url(info[1])
        account = _server_account()
        binaries = _choose_binaries(data_dir)
        _init_if_needed(data_dir, binaries, account)
        return _start(data_dir, binaries, account, port, fast=fast)


def _init_if_needed(data_dir: Path, binaries: PgBinaries, account: _Account | None) -> None:
    if (data_dir / "PG_VERSION").exists():
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise LocalPostgresError(
            f"{data_dir} exists, is not empty and is not a PostgreSQL data directory; "
            "move it away or choose another directory."
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    _give_to(account, data_dir)
    if account is not None:
        _ensure_traversable(account, binaries.bin_dir)
    _run_pg(
        account,
        [
            binaries.exe("initdb"), "-D", str(data_dir), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C",
        ],
        timeout=180,
    )


def _start(
    data_dir: Path, binaries: PgBinaries, account: _Account | None, port: int | None, *, fast: bool
) -> str:
    port_file = data_dir / PORT_FILE
    explicit = port is not None
    if port is None:
        try:
            port = int(port_file.read_text().strip())
        except (OSError, ValueError):
            port = DEFAULT_PORT
    if not _port_free(port):
        if explicit:
            raise LocalPostgresError(
                f"Port {port} on {HOST} is already in use; choose another port or stop what uses it."
            )
        port = _any_free_port()

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
    result = _run_pg(account, argv, timeout=START_TIMEOUT_S + 30, check=False)
    if result.returncode != 0 or _postmaster(data_dir) is None:
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
    with _locked(data_dir):
        info = _postmaster(data_dir)
        if info is None:
            return False
        account = _server_account()
        try:
            binaries = _choose_binaries(data_dir)
        except LocalPostgresError:
            binaries = None
        if binaries is not None:
            result = _run_pg(
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
    with contextlib.suppress(OSError):
        (data_dir.parent / f".{data_dir.name}.lock").unlink()
    return True


@contextlib.contextmanager
def temporary_server() -> Iterator[str]:
    """A throwaway server in a temporary directory; yields its URL, deletes everything after."""
    base = Path(tempfile.mkdtemp(prefix="llama-pg-"))
    data_dir = base / "pgdata"
    try:
        os.chmod(base, 0o711)
        url = ensure_server(data_dir, port=_any_free_port(), fast=True)
        yield url
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


# --------------------------------------------------------------------------------------------
# command line


def _describe(data_dir: Path, url: str) -> dict:
    b = _choose_binaries(data_dir)
    return {
        "url": url,
        "data_dir": str(data_dir),
        "bin_dir": str(b.bin_dir),
        "version": b.version,
        "source": b.source,
        "psql": str(b.bin_dir / "psql") if (b.bin_dir / "psql").exists() else shutil.which("psql"),
    }


def _exec_temp(env_name: str, cmd: list[str]) -> int:
    with temporary_server() as url:
        env = dict(os.environ)
        env[env_name] = url
        proc = subprocess.Popen(cmd, env=env)
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                # The child got the same SIGINT (same process group); let it finish, then clean up.
                continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llama_pipeline.local_postgres", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ensure", help="initialize and start the server if needed; print JSON with its URL")
    p.add_argument("data_dir", type=Path)
    p.add_argument("--port", type=int)
    p = sub.add_parser("url", help="print the URL of the running server (exit 1 if not running)")
    p.add_argument("data_dir", type=Path)
    p = sub.add_parser("stop", help="stop the server")
    p.add_argument("data_dir", type=Path)
    p = sub.add_parser("wipe", help="stop the server and delete its data directory")
    p.add_argument("data_dir", type=Path)
    p = sub.add_parser("create-db", help="create a database if missing; print its URL")
    p.add_argument("url")
    p.add_argument("name")
    sub.add_parser("binaries", help="list the server binaries found, preferred first")
    p = sub.add_parser("exec-temp", help="run a command with a throwaway server's URL in an env var")
    p.add_argument("--env", default="TEST_DATABASE_URL")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    try:
        if args.cmd == "ensure":
            data_dir = args.data_dir.expanduser().resolve()
            url = ensure_server(data_dir, args.port)
            print(json.dumps(_describe(data_dir, url)))
        elif args.cmd == "url":
            url = running_url(args.data_dir)
            if url is None:
                print(f"No local server is running on {args.data_dir}.", file=sys.stderr)
                return 1
            print(url)
        elif args.cmd == "stop":
            print("stopped" if stop_server(args.data_dir) else "not running")
        elif args.cmd == "wipe":
            print("deleted" if wipe(args.data_dir) else "nothing to delete")
        elif args.cmd == "create-db":
            print(create_database(args.url, args.name))
        elif args.cmd == "binaries":
            found = find_binaries()
            for b in found:
                print(f"{b.source:13} PostgreSQL {b.version:6} {b.bin_dir}")
            if not found:
                print("none found", file=sys.stderr)
                return 1
        elif args.cmd == "exec-temp":
            cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
            if not cmd:
                parser.error("exec-temp needs a command after --")
            return _exec_temp(args.env, cmd)
    except LocalPostgresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            print(f"error: permission denied: {exc}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
