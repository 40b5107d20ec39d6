"""Identifiers and advisory-lock keys shared by the migrations and the IO manager."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

# A fixed key: every process migrating this project's schema queues on the same lock.
MIGRATION_LOCK_KEY = 0x6C6C616D61  # "llama"


def quote_ident(name: str) -> str:
    """Quote an identifier that comes from code or configuration (never from a payload).

    Only plain identifiers are accepted, so a mistyped schema name fails loudly instead of being
    smuggled into SQL.
    """
    if not _IDENT.match(name):
        raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f'"{name}"'


def partition_lock_key(schema: str, table: str) -> int:
    """A 63-bit advisory-lock key for writes to one table, so concurrent runs queue instead of deadlocking."""
    digest = hashlib.blake2b(f"{schema}.{table}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def archive_lock_key(schema: str, endpoint: str, day: dt.date) -> int:
    """The advisory-lock key for storing one endpoint's payload of one day: writers of the same row queue,
    and nothing else does (not a range run holding the warehouse tables)."""
    return partition_lock_key(schema, f"raw_payloads/{endpoint}/{day.isoformat()}")
