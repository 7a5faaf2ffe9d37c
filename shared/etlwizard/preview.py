"""Table preview: what the wizard shows before a user picks columns."""

from typing import Any

from .connections import open_connection
from .model import Column, TableRef, column_name_problem, default_table_name
from .recommend import recommend_key, recommend_timestamp_column
from .stack import Stack


def preview_table(stack: Stack, connection_id: str, body: object) -> dict[str, Any]:
    ref = TableRef.from_payload(body)
    with open_connection(stack, connection_id) as source:
        meta = source.fetch_table_metadata(ref.schema_name, ref.table_name)
        sample = source.sample_rows(meta, stack.settings.sample_size)
        total, exact = source.total_rows(meta)
    for column in meta.columns:
        _warn_of_name(column)
    return {
        "schema_name": meta.schema_name,
        "table_name": meta.table_name,
        "kind": meta.kind,
        "columns": [c.to_dict() for c in meta.columns],
        "sample_rows": sample,
        "total_rows": total,
        "total_rows_exact": exact,
        "primary_key": meta.primary_key,
        "recommended_timestamp_column": recommend_timestamp_column(meta),
        "recommended_primary_key": recommend_key(meta),
        "suggested_table": default_table_name(meta.table_name),
        "warnings": [f"{c.name}: {c.warning}" for c in meta.columns if c.warning],
    }


def _warn_of_name(column: Column) -> None:
    """A column BigQuery would refuse by name is still shown (a job may leave it out), with why."""
    problem = column_name_problem(column.name)
    if problem:
        said = f"cannot be loaded under this name: {problem}"
        column.warning = f"{column.warning}; {said}" if column.warning else said
