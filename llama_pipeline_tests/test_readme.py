"""README.md stays true: every table and column is documented, and the commands it gives exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from llama_pipeline import schema

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_table_and_column_is_documented():
    generated = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_tables.py")], capture_output=True,
                               text=True, check=True).stdout
    assert generated.strip() in README, "README's table reference is stale: rerun docs/gen_tables.py"
    for table in schema.metadata.sorted_tables:
        assert f"#### `{table.name}`" in README, table.name
        for column in table.columns:
            assert f"| `{column.name}` |" in README, f"{table.name}.{column.name}"


def test_quick_start_commands_are_the_ones_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "python3 llama.py run" in quick_start and "python3 llama.py test" in quick_start
    assert re.search(r"^python3 llama\.py test$", ci, re.M)


def test_every_documented_variable_is_used_somewhere():
    variables = set(re.findall(r"^\| `([A-Z_]+)`", README, re.M))
    sources = "".join(p.read_text() for p in [*ROOT.glob("llama_pipeline/**/*.py"), *ROOT.glob("llama_bootstrap/*.py"),
                                              ROOT / "llama.py",
                                              ROOT / "docker-compose.yml", ROOT / "dagster.yaml",
                                              ROOT / "migrations" / "env.py"])
    assert variables and all(name in sources for name in variables), variables - {
        n for n in variables if n in sources}


def test_every_column_the_ui_shows_is_described_from_the_schema(monkeypatch):
    """The UI's column descriptions and the README's "meaning" come from one place: schema.py's comments."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/nowhere")
    from llama_pipeline.definitions import defs

    for spec in defs().resolve_all_asset_specs():
        columns = spec.metadata["dagster/column_schema"].columns
        name = spec.key.to_user_string()
        assert all(column.description for column in columns), (name, [c.name for c in columns if not c.description])
        table = schema.metadata.tables.get(spec.metadata.get("table") or name)
        # The raw assets describe one API record (their table's columns are under archive_schema).
        if table is not None and name not in ("raw_pools", "raw_protocols", "raw_lend_borrow", "raw_chain_list"):
            assert {c.name: c.description for c in columns} == {c.name: c.comment for c in table.columns}, name
