"""The README's table reference, from llama_pipeline.schema: tables, keys, and each column's comment,
which is also its description in the Dagster UI and its COMMENT in the database.

    .venv/bin/python docs/gen_tables.py          # print it
    .venv/bin/python docs/gen_tables.py --write  # rewrite it in README.md, between its markers
"""

import sys
from pathlib import Path

from sqlalchemy.dialects import postgresql

from llama_pipeline import schema

START, END = "<!-- tables:start", "<!-- tables:end -->"
ORDER = ["chains", "projects", "pools", "pool_snapshots", "raw_payloads", "raw_payload_quarantine", "raw_pool_charts",
         "pool_chart_points", "rejects", "pool_latest", "chain_daily_stats", "project_daily_stats", "pool_apy_stats",
         "lend_borrow_snapshots", "chain_tvl_daily", "protocol_tvl_daily", "project_renames", "raw_series"]


def render() -> str:
    lines: list[str] = []
    for name in ORDER:
        table = schema.metadata.tables[name]
        key = ", ".join(c.name for c in table.primary_key)
        fks = [f"`{fk.parent.name}` → `{fk.column.table.name}.{fk.column.name}`" for fk in table.foreign_keys]
        lines.append(f"#### `{name}`\n\n{table.comment} Key: `({key})`."
                     + (f" Foreign keys: {', '.join(sorted(fks))}." if fks else "") + "\n")
        lines.append("| column | type | meaning |\n|---|---|---|")
        for column in table.columns:
            kind = str(column.type.compile(dialect=postgresql.dialect())).lower()
            meaning = column.comment  # the schema's column comments are the one description (the UI shows them too)
            lines.append(f"| `{column.name}` | {kind} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    text = render()
    if "--write" not in sys.argv:
        print(text)
        return
    readme = Path(__file__).resolve().parents[1] / "README.md"
    content = readme.read_text()
    start = content.index("\n", content.index(START)) + 1
    end = content.index(END)
    readme.write_text(content[:start] + text.rstrip() + "\n" + content[end:])


if __name__ == "__main__":
    main()
