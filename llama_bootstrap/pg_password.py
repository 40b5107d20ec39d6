"""The embedded server's password: generated once per data directory, kept in a pgpass file beside it.

The server accepts only SCRAM-SHA-256 logins (TCP and socket, no ``trust`` anywhere). The password lives
in ``<data dir>.pgpass`` (mode 0600, libpq's pgpass format), so clients reach it through
``PGPASSFILE`` and the URLs that ``llama.py`` prints carry none. The server itself only ever gets the SCRAM
verifier, computed here: the password is in no SQL statement, server log or process argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SUPERUSER = "postgres"
_ITERATIONS = 4096  # PostgreSQL's default scram_iterations

PG_HBA = """\
# Written by llama.py: password (SCRAM-SHA-256) logins only, on 127.0.0.1/::1 and the socket in the
# data directory. The password is in the pgpass file beside the data directory.
local all all               scram-sha-256
host  all all 127.0.0.1/32  scram-sha-256
host  all all ::1/128       scram-sha-256
"""


def pgpass_path(data_dir: Path) -> Path:
    return data_dir.parent / f"{data_dir.name}.pgpass"


def read_password(data_dir: Path) -> str | None:
    try:
        for line in pgpass_path(data_dir).read_text().splitlines():
            parts = line.split(":")
            if len(parts) == 5 and parts[3] == SUPERUSER and parts[4]:
                return parts[4]
    except OSError:
        return None
    return None


def write_password(data_dir: Path, password: str) -> Path:
    """Write the pgpass file, readable by its owner only (libpq ignores a pgpass others may read)."""
    path = pgpass_path(data_dir)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for host in ("127.0.0.1", "localhost", "::1"):
            host_field = host.replace(":", "\\:")
            fh.write(f"{host_field}:*:*:{SUPERUSER}:{password}\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def new_password() -> str:
    return secrets.token_urlsafe(24)  # letters, digits, '-' and '_': nothing a URL or pgpass must escape


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """What PostgreSQL stores for ``password`` (RFC 5802/7677), so the server never sees the password."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def with_password(url: str, password: str) -> str:
    """``postgresql://postgres@host...`` with the password in it (for a throwaway server's clients only)."""
    scheme, rest = url.split("://", 1)
    user, at, host = rest.partition("@")
    return f"{scheme}://{user}:{password}@{host}" if at else url
