"""Database URLs: one spelling in, the forms each client needs out, and never the password in text."""

from __future__ import annotations

import re
import urllib.parse

import sqlalchemy as sa

_DRIVER_SUFFIX = re.compile(r"^postgres(?:ql)?(\+[a-z0-9_]+)?://", re.IGNORECASE)


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg2.connect) takes it: ``postgresql://...`` with no SQLAlchemy driver."""
    if not _DRIVER_SUFFIX.match(url):
        raise ValueError("DATABASE_URL must start with postgresql:// (or postgres://, postgresql+psycopg2://)")
    return _DRIVER_SUFFIX.sub("postgresql://", url, count=1)


def sqlalchemy_url(url: str) -> sa.URL:
    """The URL as SQLAlchemy takes it, pinned to the psycopg2 driver this project ships."""
    return sa.make_url(libpq_url(url)).set(drivername="postgresql+psycopg2")


def redacted(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for logs, errors and metadata."""
    try:
        return sa.make_url(libpq_url(url)).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL could hold a secret anywhere in it
        return "<unparseable database URL>"


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's password removed wherever a driver message may have echoed it."""
    try:
        password = sa.make_url(libpq_url(url)).password
    except Exception:
        return text
    if not password:
        return text
    for spelling in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)}:
        text = text.replace(spelling, "***")
    return text


class ScrubbedError(Exception):
    """A copy of an exception whose text may hold the password: its type's name and its message, with
    the password removed, and its traceback, so that where and why it failed stay known."""


def scrubbed(error: BaseException, url: str) -> ScrubbedError:
    """A scrubbed copy of ``error`` and of every exception that caused it, chained the same way (each
    copy keeps its original's traceback frames; frames print code and line numbers, never values)."""
    copies: list[ScrubbedError] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        copies.append(ScrubbedError(f"{kind.__module__}.{kind.__qualname__}: {scrub(str(current), url)}")
                      .with_traceback(current.__traceback__))
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for copy, cause in zip(copies, copies[1:]):
        copy.__cause__ = cause
    return copies[0]
