"""Checking a job against its source table and its destination table, before it is saved.

Each check raises InvalidInput naming the request field at fault; the destination check returns the
compatibility report (docs/architecture.md, "Compatibility").
"""

from typing import Any

from .compatibility import Compatibility, check_compatibility
from .errors import InvalidInput
from .job import LoadType
from .model import Column, TableMetadata, column_name_problem
from .payload import MAX_NAMES, check_text, optional_text, require_names, require_object, require_text
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
        problem = column_name_problem(name)
        if problem:  # refused here, before anything is created in BigQuery
            raise InvalidInput(field, f"column {name!r} cannot be loaded under that name: {problem}")
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


_MODES = ("NULLABLE", "REQUIRED", "REPEATED")


def source_columns(value: object, field: str = "source_columns") -> list[dict[str, Any]]:
    """[{name, bigquery_type, mode?, nullable?}] as the preview gives them, each field its type."""
    shape = "must be a list of {name, bigquery_type, mode} objects"
    if not isinstance(value, list) or not value or len(value) > MAX_NAMES:
        raise InvalidInput(field, shape)
    columns = []
    for item in value:
        if not isinstance(item, dict) or not item.get("name") or not item.get("bigquery_type"):
            raise InvalidInput(field, shape)
        name = check_text(item["name"], f"{field}.name", 300)
        problem = column_name_problem(name)
        if problem:
            raise InvalidInput(f"{field}.name", f"column {name!r} cannot be loaded under that name: {problem}")
        column: dict[str, Any] = {
            "name": name,
            "bigquery_type": check_text(item["bigquery_type"], f"{field}.bigquery_type", 100),
        }
        mode, nullable = item.get("mode"), item.get("nullable")
        if mode is not None:
            if mode not in _MODES:
                raise InvalidInput(f"{field}.mode", f"must be {', '.join(_MODES)}")
            column["mode"] = mode
        if nullable is not None:
            if not isinstance(nullable, bool):
                raise InvalidInput(f"{field}.nullable", "must be true or false")
            column["nullable"] = nullable
        columns.append(column)
    return columns


def validate_schema(stack: Stack, body: object) -> dict[str, Any]:
    """POST /api/etl/validate-schema-compatibility/: {source_columns, destination_table: "dataset.table",
    primary_key?, timestamp_column?}."""
    body = require_object(body)
    columns = source_columns(body.get("source_columns"))
    dataset, _, table = require_text(body, "destination_table", max_length=2048).partition(".")
    primary_key = require_names(body, "primary_key", optional=True)
    cursor = optional_text(body, "timestamp_column")
    names = {c["name"] for c in columns}
    for field, name in [("primary_key", k) for k in primary_key] + [("timestamp_column", cursor)]:
        if name is not None and name not in names:
            raise InvalidInput(field, f"column {name!r} is not one of source_columns")
    result = check_destination(
        stack,
        check_dataset(dataset, "destination_table"),
        check_table(table, "destination_table"),
        columns,
        primary_key,
        cursor,
    )
    return result.to_dict()
