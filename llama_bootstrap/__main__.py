"""The embedded PostgreSQL server's command line, what ``llama.py`` calls in its ``.venv``.

    python -m llama_bootstrap ensure DATA_DIR [--port N]   # JSON: url (no password), pgpass, bin_dir, ...
    python -m llama_bootstrap url DATA_DIR                # exit 1 when not running
    python -m llama_bootstrap stop DATA_DIR
    python -m llama_bootstrap wipe DATA_DIR
    python -m llama_bootstrap create-db URL NAME          # prints the new URL
    python -m llama_bootstrap binaries                    # which servers could be used, preferred first
    python -m llama_bootstrap exec-temp [--env NAME] -- CMD ...   # CMD with a throwaway server's URL in NAME
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from llama_bootstrap.local_postgres import (
    LocalPostgresError, choose_binaries, create_database, ensure_server, find_binaries, pgpass_file, running_url,
    stop_server, temporary_server, wipe,
)




def _describe(data_dir: Path, url: str) -> dict:
    b = choose_binaries(data_dir)
    return {
        "url": url,
        "data_dir": str(data_dir),
        "bin_dir": str(b.bin_dir),
        "version": b.version,
        "source": b.source,
        "psql": str(b.bin_dir / "psql") if (b.bin_dir / "psql").exists() else shutil.which("psql"),
        "pgpass": str(pgpass_file(data_dir)),
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
    parser = argparse.ArgumentParser(prog="python -m llama_bootstrap", description=__doc__.split("\n\n")[0])
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
