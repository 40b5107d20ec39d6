"""The account the embedded server runs as, and running PostgreSQL's programs as that account.

``initdb`` and ``postgres`` refuse to run as root. Started as root, every server command runs as an
unprivileged account instead: ``LLAMA_PG_OS_USER`` if set; else the owner of the project's folder when
that is not root (``sudo python3 llama.py run`` in a user's clone runs the server as that user); else
``postgres`` when the machine has that account; else ``nobody``. The data directory (inside the project's
``.llama``) is handed to that account; nothing outside it changes: when a folder above the data directory
or the server's binaries is closed to that account, the start fails saying which folder and what to do,
instead of opening the folder up.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from llama_bootstrap.pg_binaries import LocalPostgresError


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def server_account(project_dir: Path) -> Account | None:
    """The account the server runs as when we are root; None when we are not root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    wanted = os.environ.get("LLAMA_PG_OS_USER")
    if wanted:
        names = [wanted]
    else:
        names = ["postgres", "nobody"]
        owner = _owner_of_nearest(project_dir)
        if owner:
            names.insert(0, owner)
    for name in names:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        if pw.pw_uid != 0:
            return Account(name, pw.pw_uid, pw.pw_gid)
    raise LocalPostgresError(
        "Running as root, and PostgreSQL refuses to run as root, but no unprivileged account "
        f"({', '.join(names)}) exists to run it as. Create one (useradd --system postgres) or set "
        "LLAMA_PG_OS_USER to an existing unprivileged account."
    )


def _owner_of_nearest(path: Path) -> str | None:
    import pwd

    # The nearest owner that is not root: .llama itself may have been made by an earlier root run.
    for d in [path, *path.parents]:
        try:
            uid = d.stat().st_uid
        except OSError:
            continue
        if uid != 0:
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return None
    return None


def closed_folder(account: Account, directory: Path) -> Path | None:
    """The first folder from ``directory`` up that ``account`` may not pass through, or None."""
    for d in [directory, *directory.parents]:
        st = d.stat()
        if st.st_uid == account.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == account.gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return d
    return None


def require_reachable(account: Account | None, what: str, directory: Path) -> None:
    if account is None:
        return
    closed = closed_folder(account, directory)
    if closed is not None:
        raise LocalPostgresError(
            f"Running as root, the embedded server runs as the account {account.name!r}, which cannot reach "
            f"{what} {directory}: the folder {closed} is closed to it (llama.py changes no permissions "
            "outside the project). Run llama.py as a normal user, keep the project in a folder that account "
            "can pass through, set LLAMA_PG_OS_USER to an account that can, or set DATABASE_URL to your own "
            "server."
        )


def give_to(account: Account | None, path: Path) -> None:
    """Make ``path`` (recursively) owned by the account; a no-op when not root."""
    if account is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, account.uid, account.gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), account.uid, account.gid)


def run_pg(
    account: Account | None, argv: list[str], *, timeout: float, check: bool = True, stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL command, as the server account when we are root.

    Output goes to temporary files, not pipes: ``pg_ctl start`` leaves a server running that may hold
    inherited pipes open forever.
    """
    kwargs: dict = {}
    if account is not None:
        kwargs.update(user=account.uid, group=account.gid, extra_groups=[])
    env = dict(os.environ)
    env.pop("PGDATA", None)
    env["LC_ALL"] = env.get("LC_ALL") or "C"
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as inp:
        if stdin_text is not None:
            inp.write(stdin_text)
            inp.seek(0)
        try:
            proc = subprocess.run(
                argv, stdin=inp if stdin_text is not None else subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, text=True, timeout=timeout, cwd="/", env=env, **kwargs,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalPostgresError(f"{Path(argv[0]).name} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        output = out.read()
    result = subprocess.CompletedProcess(argv, proc.returncode, output, "")
    if check and proc.returncode != 0:
        raise LocalPostgresError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): {output.strip()[-2000:]}")
    return result
