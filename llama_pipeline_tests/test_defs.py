"""The code location loads, with no side effects, and shows what a user expects in the UI."""

from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

CORE = {"raw_pools", "raw_protocols", "raw_pool_charts", "chains", "projects", "pools", "pool_snapshots"}
ANALYTICS = {"pool_latest", "pool_apy_rolling", "pool_apy_stats", "chain_daily_stats", "project_daily_stats"}
DATASETS = {"raw_lend_borrow", "lend_borrow_snapshots", "raw_chain_list", "chain_metadata", "chain_tvl_daily",
            "protocol_tvl_daily", "project_renames", "lend_borrow_history"}
ASSETS = CORE | ANALYTICS | DATASETS


@pytest.fixture
def defs(monkeypatch) -> dg.Definitions:
    # An unreachable database: loading definitions must not connect, fetch or migrate anything.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody:s3cret@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs as load

    return load()


def test_definitions_load_with_all_assets(defs):
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == ASSETS
    graph = defs.resolve_asset_graph()
    parents = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert parents["pools"] == {"raw_pools", "chains", "projects", "raw_pool_charts", "project_renames"}
    assert parents["pool_snapshots"] == {"raw_pools", "pools", "raw_pool_charts"}
    assert parents["chains"] == {"raw_pools", "raw_protocols", "raw_pool_charts"}
    assert parents["raw_pool_charts"] == set()  # it runs first: the raw assets judge a day by its charts
    assert parents["raw_pools"] == parents["raw_protocols"] == {"raw_pool_charts"}
    # the datasets sit beside the yields, on the shared dimensions
    # the pools' tokens are read from pools (written first), not by decoding /pools again
    assert parents["lend_borrow_snapshots"] == {"raw_lend_borrow", "pools"}
    assert parents["chain_metadata"] == {"raw_chain_list", "chains"}
    assert parents["chain_tvl_daily"] == {"chain_metadata"}
    assert parents["protocol_tvl_daily"] == {"projects", "pool_snapshots"}
    assert parents["project_renames"] == {"raw_pools", "projects"}
    assert parents["lend_borrow_history"] == {"lend_borrow_snapshots"}


def test_every_asset_is_documented_daily_partitioned_and_typed(defs):
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.description and len(spec.description) > 40, name
        assert spec.group_name in ("ingestion", "warehouse", "analytics", "lend_borrow", "chain_tvl",
                                   "protocol_tvl"), name
        assert spec.kinds and "postgres" in spec.kinds, name
        assert isinstance(spec.partitions_def, dg.DailyPartitionsDefinition), name
        assert spec.metadata.get("table"), name
        assert isinstance(spec.metadata.get("dagster/column_schema"), dg.TableSchema), name
        assert spec.owners, name


def test_schedule_runs_the_whole_graph_daily_by_default(defs):
    schedule = defs.resolve_schedule_def("daily_refresh_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "0 23 * * *"
    job = defs.resolve_job_def("daily_refresh")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= CORE | DATASETS


def test_database_url_is_an_env_var_not_a_value(defs):
    run_wide = defs.resources["warehouse"]  # partial (defs/resources.py): its settings are in .data
    for url in (run_wide.data["database_url"], defs.resources["warehouse_reader"].database_url):
        assert "s3cret" not in repr(url)
        assert isinstance(url, dg.EnvVar)
    assert defs.resources["warehouse_io_manager"].warehouse is run_wide


def test_dagster_cli_finds_the_definitions(tmp_path):
    # Outside the repository, so that the CLI's throwaway instance does not pick up ./dagster.yaml.
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nowhere"}
    env.pop("DAGSTER_HOME", None)
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "llama_pipeline.definitions"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_execute_their_steps_in_one_process(defs):
    # A process per step cost ~2-3 s of imports each; in one process the assets also share parsed days.
    job = defs.resolve_job_def("daily_refresh")
    assert job.executor_def.name == "in_process"
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"
