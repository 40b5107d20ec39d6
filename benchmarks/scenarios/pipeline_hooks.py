"""Every place the benchmark reaches into the pipeline's internals, kept in this one module.

When the pipeline's internals change, this module is the one to adapt and the scenarios stay as they
are. What each function promises the scenarios:

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
from collections.abc import Callable

import dagster as dg

from llama_pipeline.decode import warehouse_days
from llama_pipeline.decode.pools import parse_pools
from llama_pipeline.decode.protocols import chain_rows, listed_protocols, with_placeholders
from llama_pipeline.partitions import utc_today
from llama_pipeline.write import io_manager as io_manager_module


# The datasets beside the yields have their own scenarios (benchmarks/datasets.py); these figures stay
# those of the yields' graph, comparable with the earlier sessions'.
DATASET_GROUPS = frozenset({"lend_borrow", "chain_tvl", "protocol_tvl"})
# project_renames is computed in the warehouse tables' step (it sits between projects and pools).
DATASET_ASSETS: frozenset[str] = frozenset()

# How the report describes what DayTimer measures (the floor's note, the backfill's title).
WRITE_SECONDS_NOTE = ("(write_seconds is the IO manager's figure: it writes rows the warehouse step computed; "
                      "'COPY/upsert' is its table write timed in this process)")
PER_DAY_TIMING = "per-day: decode + builds timed in-process, plus an equal share of the range's writes"


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
    """The four tables' rows (frames by table name) of one day's payloads, each body decoded once by the
    pipeline's own models (``warehouse_days.decode_day`` does the same from the stored bodies)."""
    pools = parse_pools(pools_body, day)
    listed = listed_protocols(protocols_body, day)
    return {
        "chains": chain_rows(day, pools.chain_spellings, listed.chain_spellings),
        "projects": with_placeholders(listed, set(pools.pools["project"]), day).projects,
        "pools": pools.pools,
        "pool_snapshots": pools.snapshots,
    }


def step_figures(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, float]]:
    """Per step: its duration; per asset: the IO manager's ``write_seconds`` or an analytics relation's
    ``refresh_seconds``."""
    figures: dict[str, dict[str, float]] = {}
    for event in result.all_events:
        if event.event_type_value == "STEP_SUCCESS":
            figures.setdefault(event.step_key, {})["step"] = event.event_specific_data.duration_ms / 1000
    for name in list(figures):
        try:
            materializations = result.asset_materializations_for_node(name)
        except Exception:  # noqa: BLE001 - a node without materializations
            materializations = []
        # A multi-asset step (warehouse_tables) writes several tables: each table's first event has its write.
        for materialization in materializations:
            value = materialization.metadata.get("write_seconds")
            if value is not None:
                figures.setdefault(materialization.asset_key.to_user_string(), {}).setdefault("write", float(value.value))
            # The analytics multi-asset refreshes its relations in one step (two at a time): each one's own time.
            value = materialization.metadata.get("refresh_seconds")
            if value is not None:
                figures.setdefault(materialization.asset_key.to_user_string(), {}).setdefault("refresh", float(value.value))
    return figures


class DayTimer:
    """Time each day's compute and each table's write (in this process only).

    The warehouse step decodes a day's payloads once (``warehouse_days.decode_day``) and builds each
    table's rows for it (``warehouse_days.chains`` ...); the IO manager then writes each table's range in
    one transaction (``WarehouseIOManager._write_table``). ``build`` is the time in the builders per table
    (decode counted under ``decode``), ``write`` the table's write; a day's figure is its decode and
    builds plus an equal share of the range's writes (one merge per dimension cannot be split by day).
    """

    _BUILDERS = ("chains", "projects", "pools", "pool_snapshots")

    def __init__(self) -> None:
        self.per_day: dict[dt.date, float] = {}
        self.per_asset: dict[str, dict[str, float]] = {}
        self._originals: dict[str, Callable] = {}
        self._writes: list[tuple[tuple[dt.date, ...], float]] = []

    def _time(self, name: str, original: Callable, day_of: Callable) -> Callable:
        timer = self

        def timed(*args, **kwargs):
            started = time.perf_counter()
            value = original(*args, **kwargs)
            seconds = time.perf_counter() - started
            timer.per_asset.setdefault(name, {"build": 0.0, "write": 0.0})["build"] += seconds
            day = day_of(args, kwargs)
            timer.per_day[day] = timer.per_day.get(day, 0.0) + seconds
            return value

        return timed

    def __enter__(self) -> DayTimer:
        timer = self
        self._originals = {name: getattr(warehouse_days, name) for name in ("decode_day", *self._BUILDERS)}
        warehouse_days.decode_day = self._time("decode", self._originals["decode_day"], lambda a, k: a[1])
        for name in self._BUILDERS:
            setattr(warehouse_days, name, self._time(name, self._originals[name], lambda a, k: a[1].day))
        self._write = original_write = io_manager_module.WarehouseIOManager._write_table

        def timed_write(manager, context, declared, rows):
            started = time.perf_counter()
            value = original_write(manager, context, declared, rows)
            seconds = time.perf_counter() - started
            name = context.asset_key.to_user_string()
            timer.per_asset.setdefault(name, {"build": 0.0, "write": 0.0})["write"] += seconds
            timer._writes.append((io_manager_module.partition_days(context), seconds))
            return value

        io_manager_module.WarehouseIOManager._write_table = timed_write
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(warehouse_days, name, original)
        io_manager_module.WarehouseIOManager._write_table = self._write
        for days, seconds in self._writes:
            for day in days:
                self.per_day[day] = self.per_day.get(day, 0.0) + seconds / len(days)
