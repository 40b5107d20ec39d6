"""The one clock the pipeline asks for "now" and "today" (UTC).

``LLAMA_CLOCK_OFFSET_SECONDS`` (read on every call, so a daemon, a run and a test see the same shift
without restarting anything) moves the clock by that many seconds. Tests use it to stand just after
midnight or late in a day; libfaketime is not an option, since it breaks the daemon's timed waits.
"""

from __future__ import annotations

import datetime as dt
import os

OFFSET_ENV = "LLAMA_CLOCK_OFFSET_SECONDS"


def offset() -> dt.timedelta:
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return dt.timedelta(0)
    try:
        return dt.timedelta(seconds=float(raw))
    except ValueError:
        raise ValueError(f"{OFFSET_ENV}={raw!r} is not a number of seconds") from None


def now() -> dt.datetime:
    """The current time, timezone-aware UTC, shifted by the offset."""
    return dt.datetime.now(dt.timezone.utc) + offset()


def today() -> dt.date:
    """The current UTC day: the partition that may still be fetched."""
    return now().date()


def day_end(day: dt.date) -> dt.datetime:
    """The instant a UTC day ends (the next day's midnight)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.timezone.utc)
