"""Every place the benchmark reaches into the pipeline's internals, kept in this one module.

Issue 13 removes what these lean on (``parsed_payloads``, ``gc_pause``, ``transform/batches.py``'s
``DailyBatches`` and the ``transform`` parsers): when that lands, this module is the one to adapt and
the scenarios stay as they are. What each function promises the scenarios:

- ``materialize``: one ``dg.materialize`` of a day or a range that starts with nothing cached from an
  earlier repetition;
- ``parse_day``: the two payload bodies decoded into the four tables' rows, with the decoder the pipeline
  uses, at its fastest (the floor and the peers all use it);
- ``DayTimer``: per day and per asset, the seconds spent building rows vs writing them, timed in this
  process only (nothing in the pipeline changes), and the words the report uses for them;
- ``pipeline_assets`` and ``step_figures``: the yields' assets, and each step's time and ``write_seconds``
  (which follow how the assets are cut into steps).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import dagster as dg

from llama_pipeline import parsed_payloads
from llama_pipeline.gc_pause import paused_gc
from llama_pipeline.partitions import utc_today
from llama_pipeline.payloads import decode_records
from llama_pipeline.transform import batches as batches_module
from llama_pipeline.transform.pools import chains_and_projects, parse_pools
from llama_pipeline.transform.protocols import chain_rows, parse_protocols, protocol_chain_spellings


# The datasets beside the yields have their own scenarios (benchmarks/datasets.py); these figures stay
# those of the yields' graph, comparable with the earlier sessions'.
DATASET_GROUPS = frozenset({"lend_borrow", "chain_tvl", "protocol_tvl"})
DATASET_ASSETS = frozenset({"project_renames"})

# How the report describes what DayTimer measures (the floor's note, the backfill's title).
WRITE_SECONDS_NOTE = ("(write_seconds is the IO manager's figure; it includes building the lazy DailyBatches, i.e. "
                      "loading and parsing the payload; 'COPY/upsert' is write_seconds without that build, timed in "
                      "this process)")
PER_DAY_TIMING = "per-day: DailyBatches iteration timed in-process"


def pipeline_assets(with_datasets: bool = False) -> list[dg.AssetsDefinition]:
    """Every asset of the code location, as ``dagster dev`` loads them (without the datasets beside the
    yields unless ``with_datasets``)."""
    from llama_pipeline.definitions import defs

    definitions = defs()
    assets = [a for a in (definitions.assets or []) if isinstance(a, dg.AssetsDefinition)]
    if with_datasets:
        return assets
    return [a for a in assets if not (set(a.group_names_by_key.values()) & DATASET_GROUPS)
            and not {k.to_user_string() for k in a.keys} & DATASET_ASSETS]


def materialize(assets: list, resources: dict, day: dt.date | None = None,
                day_range: tuple[dt.date, dt.date] | None = None,
                selection: tuple[str, ...] | None = None, run_config: dict | None = None) -> dg.ExecuteInProcessResult:
    # Every run starts with nothing parsed, as a run in its own process does: parses are shared by the
    # steps of one run, never carried over from an earlier repetition.
    parsed_payloads.clear()
    tags = {}
    partition = None
    if day_range:
        tags = {"dagster/asset_partition_range_start": day_range[0].isoformat(),
                "dagster/asset_partition_range_end": day_range[1].isoformat()}
    else:
        partition = (day or utc_today()).isoformat()
    return dg.materialize(assets, resources=resources, partition_key=partition, tags=tags, raise_on_error=True,
                          selection=list(selection) if selection else None, run_config=run_config)


def parse_day(pools_body: bytes, protocols_body: bytes, day: dt.date) -> dict:
    """The four tables' rows (frames by table name) of one day's payloads, parsed once."""
    with paused_gc():  # as the pipeline does (gc_pause): the contenders get the same parse at its fastest
        pool_records = decode_records("pools", pools_body, "pools")
        protocol_records = decode_records("protocols", protocols_body, "protocols")
        pools = parse_pools(pool_records, day)
        pool_spellings, pool_projects = chains_and_projects(pool_records)
        protocols = parse_protocols(protocol_records, day, pool_projects)
        return {
            "chains": chain_rows(day, pool_spellings, protocol_chain_spellings(protocol_records)),
            "projects": protocols.projects,
            "pools": pools.pools,
            "pool_snapshots": pools.snapshots,
        }


def step_figures(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, float]]:
    """Per asset: the step's duration and the IO manager's ``write_seconds``."""
    figures: dict[str, dict[str, float]] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            figures.setdefault(event.step_key, {})["step"] = event.event_specific_data.duration_ms / 1000
    for name in figures:
        try:
            materializations = result.asset_materializations_for_node(name)
        except Exception:  # noqa: BLE001 - a node without materializations
            materializations = []
        for materialization in materializations[:1]:
            value = materialization.metadata.get("write_seconds")
            if value is not None:
                figures[name]["write"] = float(value.value)
    return figures


class DayTimer:
    """Wrap ``DailyBatches.__iter__`` (in this process only) to time each day's build and write.

    Assets return ``DailyBatches`` whose batches are built lazily *inside* the IO manager's
    ``handle_output``, so its ``write_seconds`` includes parsing. Here the time spent producing a batch
    (``build``: loading the payload, decoding, parsing) is told apart from the time until the IO manager
    asks for the next one (``write``: COPY text, COPY, upsert, rejects). The asset is named by the build
    closure (``chains.<locals>.build``). The asset's setup before the first batch (lock, DELETE, temp table)
    and its final count and commit fall outside both.
    """

    def __init__(self) -> None:
        self.per_day: dict[dt.date, float] = {}
        self.per_asset: dict[str, dict[str, float]] = {}
        self._original = batches_module.DailyBatches.__iter__

    def __enter__(self) -> DayTimer:
        timer = self
        original = self._original

        def timed_iter(batches_self) -> Iterator:
            asset = getattr(batches_self.build, "__qualname__", "?").split(".")[0]
            figures = timer.per_asset.setdefault(asset, {"build": 0.0, "write": 0.0})
            iterator = original(batches_self)
            while True:
                started = time.perf_counter()
                try:
                    batch = next(iterator)
                except StopIteration:
                    return
                built = time.perf_counter()
                yield batch
                # control comes back here when the IO manager asks for the next batch
                done = time.perf_counter()
                figures["build"] += built - started
                figures["write"] += done - built
                timer.per_day[batch.day] = timer.per_day.get(batch.day, 0.0) + done - started

        batches_module.DailyBatches.__iter__ = timed_iter
        return self

    def __exit__(self, *exc: object) -> None:
        batches_module.DailyBatches.__iter__ = self._original
