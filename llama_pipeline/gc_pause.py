"""Pausing Python's cyclic garbage collector around bulk work.

Decoding a day's payloads and turning them into rows allocates millions of small objects (the JSON
trees, row tuples, the COPY text). Each allocation burst triggers the cyclic collector, and its
full collections walk every live object, payload included: measured on a full-size day, that added
0.3-0.6 s at random to the ~0.4 s of decoding and parsing. None of these objects form reference
cycles, so reference counting frees them all the same; the collector only has to wait until the
bulk work is done.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Disable the cyclic collector for the block (nested blocks are fine); restore it afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
