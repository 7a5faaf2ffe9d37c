"""Checking a job against its source table and its destination table, before it is saved.

Each check raises InvalidInput naming the request field at fault; the destination check returns the
compatibility report (docs/architecture.md, "Compatibility").
"""

from typing import Any

from .compatibility import Compatibility, check_compatibility
from .errors import InvalidInput
from .job import LoadType
from .model import Column, TableMetadata
from .payload import optional_text, require_names, require_object, require_text
from .stack import Stack
from .warehouse import METADATA_PREFIX, check_dataset, check_table


def select_columns(meta: TableMetadata, names: list[str], field: str) -> list[Column]:
    columns = []
    for name in names:
        column = meta.column(name)
        if column is None:
            raise InvalidInput(field, f"column {name!r} is not in {meta.schema_name}.{meta.table_name}")
        if name.lower().startswith(METADATA_PREFIX):
            raise InvalidInput(
                field,
                f"column {name!r}: names starting with {METADATA_PREFIX} are kept for "
                "the load's own columns in BigQuery",
            )
        columns.append(column)
    return columns


def check_keys(
    meta: TableMetadata, selected: list[str], load_type: LoadType, cursor: str | None, primary_key: list[str]
) -> None:
    if load_type is LoadType.TRANSACTIONAL:
        if not cursor:
            raise InvalidInput("timestamp_column", "is required for a transactional load")
        column = meta.column(cursor)
        if column is None:
            raise InvalidInput("timestamp_column", f"column {cursor!r} is not in {meta.schema_name}.{meta.table_name}")
        if not column.is_timestamp_candidate:
            raise InvalidInput(
                "timestamp_column", f"column {cursor!r} is {column.source_type}, not a timestamp or date"
            )
        if cursor not in selected:
            raise InvalidInput("timestamp_column", f"column {cursor!r} must be one of the selected columns")
    for name in primary_key:
        if meta.column(name) is None:
            raise InvalidInput("primary_key", f"column {name!r} is not in {meta.schema_name}.{meta.table_name}")
        if name not in selected:
            raise InvalidInput("primary_key", f"column {name!r} must be one of the selected columns")


def check_destination(
    stack: Stack, dataset: str, table: str, columns: list[dict[str, Any]], primary_key: list[str], cursor: str | None
) -> Compatibility:
    described = stack.warehouse.describe_table(dataset, table)
    return check_compatibility(
        columns,
        described["columns"],
        primary_key=primary_key,
        cursor=cursor,
        partition_field=described["partition_field"],
        cluster_fields=described["cluster_fields"],
    )


def validate_schema(stack: Stack, body: object) -> dict[str, Any]:
    """POST /api/etl/validate-schema-compatibility/: {source_columns, destination_table: "dataset.table",
    primary_key?, timestamp_column?}."""
    body = require_object(body)
    columns = body.get("source_columns")
    if (
        not isinstance(columns, list)
        or not columns
        or not all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("bigquery_type"), str)
            for c in columns
        )
    ):
        raise InvalidInput("source_columns", "must be a list of {name, bigquery_type, mode} objects")
    dataset, _, table = require_text(body, "destination_table", max_length=2048).partition(".")
    result = check_destination(
        stack,
        check_dataset(dataset, "destination_table"),
        check_table(table, "destination_table"),
        columns,
        require_names(body, "primary_key", optional=True),
        optional_text(body, "timestamp_column"),
    )
    return result.to_dict()
