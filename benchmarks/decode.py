"""Decode + validate a day's payloads: json.loads + the old parser vs a pydantic v2 model vs a msgspec model.

    .venv/bin/python benchmarks/decode.py [--reps 7] [--pools 17000] [--protocols 7000]

Bodies: a full-size synthetic day (``llama_pipeline_tests.testing.synthetic``) and the real recorded
samples in ../shared/fixtures/defillama/ when present. For each contender it prints the median time and
spread (min-max) over ``--reps`` after a warm-up, and the peak memory of one decode, measured by
tracemalloc in a child process that reads the body from a file (so that neither making the synthetic
body nor another contender's garbage counts).

Contenders:
- ``json.loads+old``: ``json.loads`` then the old ``transform.pools.parse_pools`` (or ``transform.protocols``),
  when that module is still there (it was replaced by ``llama_pipeline.decode``);
- ``pydantic model``: the same ``Pool`` fields as a strict pydantic v2 model (same constraints),
  ``TypeAdapter.validate_json``: decode + validate into objects only;
- ``msgspec model``: ``msgspec.json.Decoder(PoolsDocument)``: decode + validate into objects only;
- ``decode.parse_pools``: the pipeline's parse, msgspec model to DataFrames (what replaced json.loads+old).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
import time
import typing
from pathlib import Path
from typing import Annotated, Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import pydantic  # noqa: E402
import pydantic_core  # noqa: E402

from llama_pipeline.decode import pools as decode_pools  # noqa: E402
from llama_pipeline.decode import protocols as decode_protocols  # noqa: E402
from llama_pipeline_tests.testing import synthetic  # noqa: E402

FIXTURES = ROOT.parent / "shared" / "fixtures" / "defillama"
DAY = dt.date(2026, 1, 1)
REAL_POOLS = ["pools_aujl-stablecoin_quant_fixture_5pools.json",
              "poolsOld-subset_PaulApivat-pipe_converted-from-parquet_2025-10-06.json",
              "pools_sample120_aave-strat_2026-05-28.json"]
REAL_PROTOCOLS = ["protocols_Jolina1205-defi_2024-03-11_full.json"]


# --- the pydantic twin of a msgspec model: same fields, same constraints, strict, no unknown fields ---

def _pydantic_type(hint: object) -> object:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        inner, *extras = typing.get_args(hint)
        constraints: dict[str, Any] = {}
        for meta in extras:
            if isinstance(meta, msgspec.Meta):
                for name in ("ge", "le", "pattern"):
                    if getattr(meta, name) is not None:
                        constraints[name] = getattr(meta, name)
        if "pattern" in constraints:  # pydantic-core's Rust regex spells Python's end-of-text \Z as \z
            constraints["pattern"] = constraints["pattern"].replace("\\Z", "\\z")
        base = _pydantic_type(inner)
        return Annotated[base, pydantic.Field(**constraints)] if constraints else base
    if origin in (typing.Union, __import__("types").UnionType):
        return typing.Union[tuple(_pydantic_type(arg) for arg in typing.get_args(hint))]
    if origin is list:
        return list[_pydantic_type(typing.get_args(hint)[0])]
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return pydantic_model(hint)
    return hint


_MODELS: dict[type, type] = {}


def pydantic_model(struct: type[msgspec.Struct]) -> type[pydantic.BaseModel]:
    if struct not in _MODELS:
        hints = typing.get_type_hints(struct, include_extras=True)
        defaults = dict(zip(struct.__struct_fields__[len(struct.__struct_fields__) - len(struct.__struct_defaults__):],
                            struct.__struct_defaults__))
        _MODELS[struct] = pydantic.create_model(
            f"Pydantic{struct.__name__}",
            __config__=pydantic.ConfigDict(
                strict=True, extra="ignore" if struct is decode_protocols.Protocol else "forbid", allow_inf_nan=False),
            **{name: (_pydantic_type(hints[name]), defaults.get(name, ...)) for name in struct.__struct_fields__})
    return _MODELS[struct]


# --- contenders ---------------------------------------------------------------------------------------

def _old(module: str, name: str) -> Callable | None:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def contenders(endpoint: str) -> dict[str, Callable[[bytes], object]]:
    found: dict[str, Callable[[bytes], object]] = {}
    if endpoint == "pools":
        old = _old("llama_pipeline.transform.pools", "parse_pools")
        if old:
            found["json.loads+old"] = lambda body: old(_records(json.loads(body)), DAY)
        found["json.loads only"] = json.loads
        adapter = pydantic.TypeAdapter(pydantic_model(decode_pools.PoolsDocument))
        found["pydantic model"] = adapter.validate_json
        found["msgspec model"] = msgspec.json.Decoder(decode_pools.PoolsDocument).decode
        found["decode.parse_pools"] = lambda body: decode_pools.parse_pools(body, DAY)
    else:
        old = _old("llama_pipeline.transform.protocols", "listed_protocols")
        if old:
            found["json.loads+old"] = lambda body: old(json.loads(body), DAY)
        found["json.loads only"] = json.loads
        # The key set drifts and one real record has a boolean methodology: the list is decoded as JSON
        # and each record validated on its own (what decode.protocols does), by each library.
        model = pydantic_model(decode_protocols.Protocol)
        found["pydantic model"] = lambda body: _each(pydantic_core.from_json(body), model.model_validate,
                                                     pydantic.ValidationError)
        decoder = msgspec.json.Decoder()
        found["msgspec model"] = lambda body: _each(decoder.decode(body),
                                                    lambda r: msgspec.convert(r, decode_protocols.Protocol),
                                                    msgspec.ValidationError)
        found["decode.listed_protocols"] = lambda body: decode_protocols.listed_protocols(body, DAY)
    return found


def _each(records: list, validate: Callable, error: type[Exception]) -> list:
    """Each record validated, or None where it does not fit (unknown fields ignored: kept apart by the pipeline)."""
    known = decode_protocols._KNOWN
    found = []
    for record in records:
        try:
            found.append(validate({k: v for k, v in record.items() if k in known}))
        except error:
            found.append(None)
    return found


def _records(document: object) -> list:
    return document["data"] if isinstance(document, dict) else document


def bodies(n_pools: int, n_protocols: int) -> list[tuple[str, str, bytes]]:
    protocols = synthetic.generate_protocols(n_protocols, seed=0)
    found = [("pools", f"synthetic {n_pools:,} pools", synthetic.dumps(synthetic.generate_pools(n_pools, seed=0,
                                                                                                 protocols=protocols))),
             ("protocols", f"synthetic {n_protocols:,} protocols", synthetic.dumps(protocols))]
    for endpoint, names in (("pools", REAL_POOLS), ("protocols", REAL_PROTOCOLS)):
        for name in names:
            if (FIXTURES / name).is_file():
                body = (FIXTURES / name).read_bytes()
                if endpoint == "pools" and isinstance(json.loads(body), list):  # a bare list: wrap as served
                    body = b'{"status":"success","data":' + body + b"}"
                found.append((endpoint, name[:48], body))
    return found


def timed(decode: Callable[[bytes], object], body: bytes, reps: int) -> tuple[float, float, float] | str:
    try:
        decode(body)  # warm-up (and: does it accept the body at all?)
    except Exception as error:  # noqa: BLE001 - reported in the table instead of a figure
        return f"fails: {type(error).__name__}: {str(error).splitlines()[0][:60]}"
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        decode(body)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def child_peak(endpoint: str, body: bytes, contender: str) -> str:
    """Peak RSS of one decode, in a fresh process that reads the body from a file (so that making the
    synthetic body does not set the peak)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(body)
        file.flush()
        result = subprocess.run([sys.executable, __file__, "--child", endpoint, file.name, contender],
                                capture_output=True, text=True, check=False)
    return result.stdout.strip() or f"? ({result.stderr.strip().splitlines()[-1][:50] if result.stderr else ''})"


def _child(endpoint: str, path: str, contender: str) -> None:
    body = Path(path).read_bytes()
    decode = contenders(endpoint)[contender]
    # Python's allocator (msgspec's and pydantic-core's objects included; not Rust-internal buffers).
    tracemalloc.start()
    kept = decode(body)  # noqa: F841 - the result is what the pipeline would hold
    print(f"{tracemalloc.get_traced_memory()[1] / 2**20:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--pools", type=int, default=17000)
    parser.add_argument("--protocols", type=int, default=7000)
    parser.add_argument("--child", nargs=3, metavar=("ENDPOINT", "BODY", "CONTENDER"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    print("Timings are indicative on a shared machine: compare ratios within one run.")
    print(f"{'body':50} {'contender':24} {'median s':>9} {'min-max s':>17} {'peak mem':>9}")
    for endpoint, label, body in bodies(args.pools, args.protocols):
        print(f"-- {endpoint}: {label} ({len(body):,} bytes)")
        synthetic_body = label.startswith("synthetic")
        for name, decode in contenders(endpoint).items():
            figure = timed(decode, body, args.reps if synthetic_body else max(args.reps, 20))
            peak = child_peak(endpoint, body, name) if synthetic_body else ""
            if isinstance(figure, str):
                print(f"{'':50} {name:24} {figure}")
            else:
                median, low, high = figure
                print(f"{'':50} {name:24} {median:9.4f} {low:8.4f}-{high:8.4f} {peak:>9}")


if __name__ == "__main__":
    main()
