"""The checks' light reading of a stored body gives what reading every value gives: the same fields,
the same key per record, and the same refusal of a body that is not a payload."""

from __future__ import annotations

import json
import uuid

import pytest

from llama_pipeline.fetch.payloads import PayloadError, decode_records
from llama_pipeline.quality import stored_records
from llama_pipeline_tests.testing import synthetic


def general_fields(endpoint: str, body: bytes) -> set[str]:
    found: set[str] = set()
    for record in decode_records(endpoint, body, endpoint):
        if isinstance(record, dict):
            found.update(record)
    return found


def general_key(record: object, field: str) -> str | None:
    """The key as the check read it from fully decoded records."""
    try:
        value = record[field].strip()  # type: ignore[index]
    except Exception:
        return None
    if field == "slug":
        return value or None
    try:
        return str(uuid.UUID(value))
    except Exception:
        return None


PROTOCOLS = synthetic.generate_protocols(40, seed=3)
POOLS = synthetic.generate_pools(120, seed=3, protocols=PROTOCOLS)
ID = POOLS["data"][0]["pool"]
ODD_POOLS = [  # records a payload can hold that are not clean pools
    {**POOLS["data"][1], "pool": ID.upper()}, {**POOLS["data"][2], "pool": "{" + ID + "}"},
    {**POOLS["data"][3], "pool": f"  {ID}\n"}, {**POOLS["data"][4], "pool": ID.replace("-", "")},
    {**POOLS["data"][5], "pool": "not-a-pool-id"}, {**POOLS["data"][6], "pool": None},
    {**POOLS["data"][7], "pool": 42}, {k: v for k, v in POOLS["data"][8].items() if k != "pool"},
    {**POOLS["data"][9], "brandNewField": {"nested": [1, 2]}}, ["not", "an", "object"], "text", 7, None,
]
BODIES = [
    ("pools", synthetic.dumps(POOLS)),
    ("pools", synthetic.dumps({**POOLS, "data": [*POOLS["data"], *ODD_POOLS]})),
    ("pools", synthetic.dumps({"data": POOLS["data"][:5]})),  # a recorded sample without status
    ("pools", json.dumps({"status": "success", "data": [{**POOLS["data"][0], "apy": float("nan")}]}).encode()),
    ("protocols", synthetic.dumps(PROTOCOLS)),
    ("protocols", synthetic.dumps([*PROTOCOLS, {**PROTOCOLS[0], "slug": "  "}, {**PROTOCOLS[1], "slug": None},
                                   {"name": "no slug"}, [1], "slug"])),
    ("lend_borrow", synthetic.dumps([{"pool": ID, "apyBaseBorrow": 1.5}, {"pool": "x"}])),
]


@pytest.mark.parametrize("endpoint, body", BODIES)
def test_fields_and_keys_are_those_of_the_fully_decoded_records(endpoint: str, body: bytes):
    assert stored_records.fields(endpoint, body) == general_fields(endpoint, body)
    records = decode_records(endpoint, body, endpoint)
    for field in ("pool", "slug"):
        assert stored_records.keys(endpoint, body, field) == [general_key(r, field) for r in records]


@pytest.mark.parametrize("body", [
    b'{"status": "error", "data": []}', b'{"status": "error", "data": [{"pool": "x"}]}', b'{"data": []}',
    b'{"status": "success"}', b'{"status": "success", "data": {"pool": "x"}}', b"[]", b"not json",
    b'{"status": "success", "data": [{"pool": "x"}', "caf\u00e9".encode("latin-1"),
])
def test_a_body_that_is_not_a_payload_is_refused_as_before(body: bytes):
    with pytest.raises(PayloadError) as expected:
        decode_records("pools", body, "pools")
    for read in (lambda: stored_records.fields("pools", body), lambda: stored_records.keys("pools", body, "pool")):
        with pytest.raises(PayloadError) as got:
            read()
        assert str(got.value) == str(expected.value)
