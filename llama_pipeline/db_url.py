"""Database URLs: one spelling in, the forms each client needs out, and never the password in text."""

from __future__ import annotations

import re

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
    return text.replace(password, "***") if password else text
