"""How an asset declares the table it is written to: the table, the write mode and, for facts, the
partition column. The declaration travels in the asset's definition metadata (where the UI shows it)
and is read back, validated, by the IO manager."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

import dagster as dg
import sqlalchemy as sa

from llama_pipeline import schema


class WriteMode(str, enum.Enum):
    """How a table is written."""

    ARCHIVE = "archive"  # raw payloads, upserted into raw_payloads by (endpoint, day)
    REPLACE_PARTITION = "replace_partition"  # facts: the run's days are deleted and rewritten
    UPSERT = "upsert"  # dimensions: rows merge by primary key (dimension_merge)


ARCHIVE, REPLACE_PARTITION, UPSERT = WriteMode.ARCHIVE, WriteMode.REPLACE_PARTITION, WriteMode.UPSERT


def column_schema(table: sa.Table) -> dg.TableSchema:
    """The table's columns as Dagster shows them."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile(dialect=sa.dialects.postgresql.dialect())).lower(),
                description=column.comment,
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable), unique=bool(column.primary_key and len(table.primary_key) == 1)
                ),
            )
            for column in table.columns
        ]
    )


@dataclasses.dataclass(frozen=True)
class TableWrite:
    """Where and how an asset's output is written."""

    table: sa.Table
    mode: WriteMode
    partition_expr: str | None = None

    def __post_init__(self) -> None:
        if (self.mode is WriteMode.REPLACE_PARTITION) != (self.partition_expr is not None):
            raise ValueError(f"{self.table.name}: a partition column is declared for, and only for, "
                             f"{WriteMode.REPLACE_PARTITION.value}")
        if self.partition_expr is not None and self.partition_expr not in self.table.c:
            raise ValueError(f"{self.table.name} has no column {self.partition_expr}")

    def metadata(self) -> dict:
        """The definition metadata that declares this write."""
        metadata = {
            "table": self.table.name,
            "write_mode": self.mode.value,
            "primary_key": [c.name for c in self.table.primary_key],
            "dagster/column_schema": column_schema(self.table),
        }
        if self.partition_expr:
            metadata["partition_expr"] = self.partition_expr
        return metadata

    @classmethod
    def declared(cls, metadata: Mapping[str, object], what: str) -> TableWrite:
        """The write an asset's definition metadata declares; a clear error when it declares none."""
        try:
            table = schema.metadata.tables[str(metadata["table"])]
            mode = WriteMode(metadata["write_mode"])
        except (KeyError, ValueError) as error:
            raise ValueError(f"{what} declares no warehouse table and write mode (table_metadata): "
                             f"{error!r}") from error
        return cls(table, mode, metadata.get("partition_expr"))  # type: ignore[arg-type]


def table_metadata(table: sa.Table, write: WriteMode, partition_expr: str | None = None) -> dict:
    """Definition metadata telling the IO manager where and how an asset is written."""
    return TableWrite(table, WriteMode(write), partition_expr).metadata()
