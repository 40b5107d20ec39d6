"""A password in DATABASE_URL never reaches the run's event log, stdout/stderr or asset metadata, not
even when the connection fails; SQL takes values only as parameters."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._serdes import serialize_value

from llama_pipeline.db_url import libpq_url
from llama_pipeline.decode.decoded_payloads import DecodedPayloads
from llama_pipeline.fetch.http_client import DefiLlamaClient
from llama_pipeline.partitions import utc_today
from llama_pipeline.write.io_manager import WarehouseIOManager
from llama_pipeline.write.warehouse import Warehouse
from llama_pipeline_tests.conftest import all_assets, asset_keys
from llama_pipeline_tests.defs.test_checks import all_checks
from llama_pipeline_tests.defs.test_pipeline import serve

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def secret_role(warehouse: Warehouse, database_url: str):
    """A login role with a password, owning the test schema; yields (url with password, password)."""
    role = f"llama_secret_{uuid.uuid4().hex[:8]}"
    password = f"Pw{uuid.uuid4().hex}Zq"
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN PASSWORD %s', (password,))
        cur.execute(f'GRANT CREATE, CONNECT ON DATABASE "{database_url.rsplit("/", 1)[1]}" TO "{role}"')
        cur.execute(f'GRANT ALL ON SCHEMA "{warehouse.schema_name}" TO "{role}"')
        cur.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA "{warehouse.schema_name}" TO "{role}"')
        cur.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA "{warehouse.schema_name}" TO "{role}"')
    base = libpq_url(database_url)
    scheme, rest = base.split("://", 1)
    host_and_db = rest.split("@", 1)[-1]
    yield f"{scheme}://{role}:{password}@{host_and_db}", password
    with admin.cursor() as cur:
        cur.execute(f'DROP OWNED BY "{role}"')
        cur.execute(f'DROP ROLE "{role}"')
    admin.close()


def _resources(url: str, schema: str, http) -> dict:
    warehouse = Warehouse(database_url=url, schema_name=schema)
    return {"warehouse": warehouse, "warehouse_io_manager": WarehouseIOManager(warehouse=warehouse),
            "decoded_payloads": DecodedPayloads(),
            "defillama": DefiLlamaClient(pools_url=http.url("/pools"), protocols_url=http.url("/protocols"),
                                         backoff_factor=0.01, max_wait=0.1, read_timeout=5)}


def _everything_recorded(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> str:
    """Every event of the run as stored (messages, metadata, errors, run config) as one text."""
    entries = instance.all_logs(result.run_id)
    assert entries
    run = instance.get_run_by_id(result.run_id)
    return "\n".join([serialize_value(e) for e in entries] + [serialize_value(run)] +
                     [str(e) for e in result.all_events])


def test_password_never_appears_in_events_output_or_metadata(secret_role, warehouse, http, small_day, capfd):
    url, password = secret_role
    serve(http, *small_day)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*all_assets(), *all_checks()], resources=_resources(url, warehouse.schema_name, http),
                            selection=asset_keys(all_assets()), instance=instance,
                            partition_key=utc_today().isoformat(), raise_on_error=False)
    assert result.success
    with psycopg2.connect(url) as conn, conn.cursor() as cur:  # the role really did the writing
        cur.execute(f'SELECT count(*) FROM "{warehouse.schema_name}".pool_snapshots')
        assert cur.fetchone()[0] == len(small_day[0]["data"])
    recorded = _everything_recorded(instance, result)
    assert "dagster/row_count" in recorded and "pool_snapshots" in recorded
    assert password not in recorded
    for event in result.get_asset_materialization_events():
        assert password not in repr(event.materialization.metadata)
    captured = capfd.readouterr()
    assert password not in captured.out and password not in captured.err


def test_a_failing_connection_does_not_reveal_the_password(warehouse, http, small_day, capfd):
    password = f"Pw{uuid.uuid4().hex}Zq"
    serve(http, *small_day)
    # Nobody listens on port 1; a wrong password on a real server fails the same way, through libpq.
    url = f"postgresql://someone:{password}@127.0.0.1:1/nowhere"
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(all_assets(), resources=_resources(url, warehouse.schema_name, http),
                            selection=asset_keys(all_assets()[:2]), instance=instance,
                            partition_key="2026-11-01", raise_on_error=False)
    assert not result.success
    recorded = _everything_recorded(instance, result)
    assert "could not migrate" in recorded or "cannot connect" in recorded
    assert "***" in recorded or "someone@127.0.0.1" in recorded
    assert password not in recorded
    captured = capfd.readouterr()
    assert password not in captured.out and password not in captured.err


def test_sql_takes_values_as_parameters_only():
    """SQL built with f-strings interpolates only identifiers (quoted by quote_ident, or taken from the
    schema module) and fixed fragments of code, never a value: values go through %s parameters."""
    identifiers = {"self._qualified('rejects')", "self._qualified(table.name)", "quote_ident(partition_expr)",
                   "column_list", "upsert_sql", "table", "quote_ident(warehouse.schema_name)",
                   "quote_ident(meta['partition_expr'])", "target", "', '.join(quote_ident(k) for k in key)",
                   "', '.join(c.name for c in _REJECT_COLUMNS)",
                   # raw_archive: the quarantine table (quote_ident), and the body's source, one of two fixed
                   # fragments ("%s", or a sub-select of the quarantine row by a %s id)
                   "quarantined", "body_sql"}
    found = set()
    for path in ("llama_pipeline/write/io_manager.py", "llama_pipeline/fetch/raw_archive.py"):
        source = (ROOT / path).read_text()
        for match in re.finditer(r'f"{1,3}\s*(?:SELECT|INSERT|DELETE|UPDATE|COPY|CREATE)[^"]*"', source):
            found.update(re.findall(r"\{([^{}]*)\}", match.group(0)))
    assert found and found <= identifiers, found - identifiers


def _error_texts(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    """Every error the run recorded, formatted as the UI shows it: message, stack and causes."""
    texts = []
    for entry in instance.all_logs(result.run_id):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        if error is not None:
            texts.append(error.to_string())
    return texts


def test_a_broken_migration_keeps_its_traceback_without_the_password(secret_role, warehouse, http, small_day):
    url, password = secret_role
    schema = f"broken_{uuid.uuid4().hex[:8]}"
    with psycopg2.connect(url) as conn, conn.cursor() as cur:  # the first revision will find its table taken
        cur.execute(f'CREATE SCHEMA "{schema}"')
        cur.execute(f'CREATE TABLE "{schema}".raw_payloads (stray integer)')
    serve(http, *small_day)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(all_assets(), resources=_resources(url, schema, http), selection=asset_keys(all_assets()[:1]),
                            instance=instance, partition_key=utc_today().isoformat(), raise_on_error=False)
    assert not result.success
    errors = "\n".join(_error_texts(instance, result))
    assert "could not migrate" in errors
    # The cause is kept: the driver's error and the revision's own frame reach the user.
    assert "DuplicateTable" in errors and 'relation "raw_payloads" already exists' in errors
    assert "0001_initial.py" in errors and "upgrade" in errors
    assert password not in errors and password not in _everything_recorded(instance, result)


def test_every_message_of_a_chain_is_scrubbed_and_every_frame_kept():
    from llama_pipeline.db_url import scrubbed
    from llama_pipeline.write.warehouse import WarehouseError

    password = f"Pw{uuid.uuid4().hex}Zq"
    url = f"postgresql://someone:{password}@127.0.0.1/db"

    def driver():
        try:
            raise KeyError(f"inner {password}")
        except KeyError as inner:
            raise RuntimeError(f"outer with {password} in it") from inner

    try:
        driver()
    except RuntimeError as error:
        failure = WarehouseError("failed")
        failure.__cause__ = scrubbed(error, url)
    import traceback
    text = "".join(traceback.format_exception(failure))
    assert password not in text and text.count("***") == 2
    assert "builtins.RuntimeError: outer with *** in it" in text and "builtins.KeyError" in text
    assert text.count("in driver") == 2  # both frames of the original tracebacks are kept
