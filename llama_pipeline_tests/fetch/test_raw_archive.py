"""The archive stores a held capture from its quarantine row (the body is not sent twice), and the bytes
themselves when that row does not hold the same capture."""

from __future__ import annotations

import datetime as dt

from llama_pipeline import clock
from llama_pipeline.fetch import quarantine, raw_archive
from llama_pipeline.fetch.payloads import RawPayload, compress
from llama_pipeline_tests.testing import synthetic


def _payload(body: bytes, fetched_at: dt.datetime) -> RawPayload:
    return RawPayload("pools", clock.today(), "http://127.0.0.1/pools", fetched_at, 200, "application/json", body,
                      3, compressed_body=compress(body))


def _store(warehouse, payload: RawPayload, held: tuple[int, ...]) -> int:
    with warehouse.connection() as conn:
        written = raw_archive.store(conn, warehouse.schema_name, [payload], held)
        quarantine.release(conn, warehouse.schema_name, held)
    return written


def test_a_held_capture_is_stored_from_its_quarantine_row(warehouse, query, small_day):
    body = synthetic.dumps(small_day[0])
    payload = _payload(body, clock.now())
    held = quarantine.hold(warehouse, payload, None)
    assert _store(warehouse, payload, (held,)) == 1
    stored = raw_archive.load(warehouse, "pools", clock.today())
    assert stored.body == body and raw_archive.stored_sha256(warehouse, "pools", clock.today()) == payload.sha256
    assert query("SELECT count(*) FROM raw_payload_quarantine") == [(0,)]  # released in the same transaction


def test_a_quarantine_row_of_another_capture_is_not_used(warehouse, query, small_day):
    first = _payload(synthetic.dumps(small_day[0]), clock.now() - dt.timedelta(minutes=5))
    held = quarantine.hold(warehouse, first, None)
    later_body = synthetic.dumps(synthetic.generate_pools(20, seed=3))
    later = _payload(later_body, clock.now())
    # The id names a row holding another body: the later capture's own bytes are stored.
    assert _store(warehouse, later, (held,)) == 1
    assert raw_archive.load(warehouse, "pools", clock.today()).body == later_body
    # And a held id whose row is gone: the bytes too.
    again = _payload(synthetic.dumps(small_day[0]), clock.now() + dt.timedelta(seconds=1))
    assert _store(warehouse, again, (held + 1000,)) == 1
    assert raw_archive.load(warehouse, "pools", clock.today()).body == synthetic.dumps(small_day[0])
