"""What a run's raw steps decoded, handed to the same run's warehouse step so a body is decoded once.

``raw_pools`` and ``raw_protocols`` decode today's whole body with its model to judge it before it is
archived; the warehouse step would then load the stored body, decompress it and decode it again. This
run-scoped resource holds the raw step's decode until the warehouse step takes it, keyed by the
endpoint, the day and the SHA-256 of the body it came from: the warehouse step asks with the stored
body's SHA-256, so a capture replaced since (a later run, a racing one) is never served stale.

It is set up empty when a run starts and emptied when it ends; nothing outlives the run. Under the
in-process executor (``defs/execution.py``) a run's steps share one instance; under any other executor,
or in a run without the raw steps, nothing is held and the warehouse step decodes the stored body,
which gives the same rows. A decode is dropped as soon as it is taken (or found stale), so it never
adds to the warehouse step's peak memory beyond what decoding the stored body would.
"""

from __future__ import annotations

import datetime as dt
import threading

import dagster as dg
from pydantic import PrivateAttr

# Where a day's decode of one endpoint came from, as the warehouse tables' metadata says it.
FROM_RAW_STEP = "decoded by its raw step in this run"
FROM_STORED_BODY = "stored body decoded"
NO_PAYLOAD = "no payload stored"


class DecodedPayloads(dg.ConfigurableResource):
    """A run's decoded payload bodies, from the raw step that decoded one to the warehouse step."""

    # (endpoint, day) -> (sha256 of the body, its decode); one per endpoint and day: a step retried
    # replaces its earlier decode. None outside a run: then nothing is held.
    _held: dict[tuple[str, dt.date], tuple[str, object]] | None = PrivateAttr(default=None)
    _lock: threading.Lock | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._held, self._lock = {}, threading.Lock()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._held = None

    def hold(self, endpoint: str, day: dt.date, sha256: str, decoded: object) -> None:
        """Keep the decode of the body whose SHA-256 is ``sha256`` for this run's warehouse step."""
        if self._held is None:
            return
        with self._lock:
            self._held[(endpoint, day)] = (sha256, decoded)

    def take(self, endpoint: str, day: dt.date, sha256: str) -> object | None:
        """The held decode of exactly this body, or None; either way nothing is held for the day after."""
        if not self._held:
            return None
        with self._lock:
            held = self._held.pop((endpoint, day), None)
        if held is None or held[0] != sha256:
            return None
        return held[1]

    def drop(self, endpoint: str, day: dt.date) -> None:
        """Forget the day's decode of ``endpoint`` (the step does not need it)."""
        if self._held:
            with self._lock:
                self._held.pop((endpoint, day), None)

    def holds(self, endpoint: str, day: dt.date) -> bool:
        return bool(self._held) and (endpoint, day) in self._held

    def held_count(self) -> int:
        return len(self._held or ())
