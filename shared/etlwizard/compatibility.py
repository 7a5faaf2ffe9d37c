"""Can a source's columns load into an existing BigQuery table? (docs/architecture.md, "Compatibility".)

A pure function: columns are matched by name (case-insensitively, as BigQuery does); each pair is
compatible, a widening (warning) or a narrowing (error). Source columns the table lacks can be
added (can_alter); table columns the source lacks stay NULL unless REQUIRED (error).
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .typemap import clusterable
from .warehouse import METADATA_NAMES

# (source type, destination type) -> None (compatible) or the warning's reason.
_WIDENING = {
    ("INT64", "NUMERIC"): "integers become decimals",
    ("INT64", "BIGNUMERIC"): "integers become decimals",
    ("INT64", "FLOAT64"): "integers past 2^53 lose precision as FLOAT64",
    ("NUMERIC", "FLOAT64"): "decimals lose precision as FLOAT64",
    ("BIGNUMERIC", "FLOAT64"): "decimals lose precision as FLOAT64",
    ("BOOL", "INT64"): "true/false become 1/0",
    ("DATE", "DATETIME"): "dates become midnight",
    ("DATE", "TIMESTAMP"): "dates become midnight UTC",
    ("DATETIME", "TIMESTAMP"): "times without a zone are read as UTC",
}
_SAME = {
    ("NUMERIC", "BIGNUMERIC"),
    ("JSON", "STRING"),
}


@dataclass
class Compatibility:
    compatible: bool = True
    warnings: list[str] = field(default_factory=list)
    can_alter: list[dict[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_types(source: str, destination: str) -> tuple[str, str | None]:
    """("ok" | "warning" | "error", reason) for one column's source and destination types."""
    if source == destination or (source, destination) in _SAME:
        return "ok", None
    if (source, destination) in _WIDENING:
        return "warning", _WIDENING[(source, destination)]
    if destination == "STRING":
        return "warning", "values are loaded as their text"
    return "error", "not every value fits"


def check_compatibility(
    source_columns: list[dict[str, Any]],
    destination_fields: list[dict[str, Any]],
    *,
    primary_key: Sequence[str] = (),
    cursor: str | None = None,
    partition_field: str | None = None,
    cluster_fields: Sequence[str] = (),
) -> Compatibility:
    """source_columns: [{name, bigquery_type, mode|nullable}] as the preview gives them;
    destination_fields: [{name, bigquery_type, mode}] as the warehouse describes a table."""
    result = Compatibility()
    destination = {f["name"].lower(): f for f in destination_fields if f["name"] not in METADATA_NAMES}
    sources = {c["name"].lower(): c for c in source_columns}

    for column in source_columns:
        name, source_type = column["name"], column["bigquery_type"]
        source_mode = column.get("mode") or ("NULLABLE" if column.get("nullable", True) else "REQUIRED")
        target = destination.get(name.lower())
        if target is None:
            result.can_alter.append(
                {
                    "name": name,
                    "bigquery_type": source_type,
                    "mode": "REPEATED" if source_mode == "REPEATED" else "NULLABLE",
                }
            )
            continue
        target_type, target_mode = target["bigquery_type"], target.get("mode") or "NULLABLE"
        if (source_mode == "REPEATED") != (target_mode == "REPEATED"):
            shape = "an array" if source_mode == "REPEATED" else "a single value"
            result.errors.append(
                f"Column {name}: the source holds {shape} ({_show(source_type, source_mode)}) "
                f"but the table's column is {_show(target_type, target_mode)}."
            )
            continue
        verdict, reason = compare_types(source_type, target_type)
        pair = f"source {_show(source_type, source_mode)} into {_show(target_type, target_mode)}"
        if verdict == "error":
            result.errors.append(f"Column {name}: {pair} is a narrowing conversion: {reason}.")
        elif verdict == "warning":
            result.warnings.append(f"Column {name}: {pair} is a widening conversion: {reason}.")
        if target_mode == "REQUIRED" and source_mode == "NULLABLE":
            result.warnings.append(
                f"Column {name}: the table requires a value but the source allows NULL; "
                "a row with NULL there will fail the load."
            )

    for key, target in destination.items():
        if key in sources:
            continue
        if target.get("mode") == "REQUIRED":
            result.errors.append(
                f"Column {target['name']} ({target['bigquery_type']}, REQUIRED) is not in the "
                "source, and the table requires a value in it."
            )
        else:
            result.warnings.append(
                f"Column {target['name']} ({target['bigquery_type']}) is not in the source: new rows leave it NULL."
            )

    for name in primary_key:
        if name.lower() not in destination:
            result.errors.append(
                f"Primary key column {name} is not in the table, so rows cannot be matched to replace them."
            )
    # A table ETL Wizard made is clustered by its key and partitioned on its cursor: those must agree.
    managed = any(f["name"] in METADATA_NAMES for f in destination_fields)
    clustered_by = [c.lower() for c in cluster_fields]
    clusterable_key = [
        k.lower()
        for k in primary_key
        if k.lower() in destination
        and clusterable(destination[k.lower()]["bigquery_type"], destination[k.lower()].get("mode") or "NULLABLE")
    ][:4]
    if managed and clustered_by and primary_key and clustered_by != clusterable_key:
        result.errors.append(
            f"Primary key mismatch: the table is keyed (clustered) by {', '.join(cluster_fields)}, "
            f"the source's key is {', '.join(primary_key)}."
        )
    if cursor:
        if cursor.lower() not in destination:
            result.errors.append(f"Timestamp column {cursor} is not in the table: incremental loads need it there.")
        elif managed and partition_field and partition_field.lower() != cursor.lower():
            result.errors.append(
                f"Cursor mismatch: the table is partitioned on {partition_field}, "
                f"the job's timestamp column is {cursor}."
            )

    result.compatible = not result.errors
    return result


def _show(bigquery_type: str, mode: str) -> str:
    return f"ARRAY<{bigquery_type}>" if mode == "REPEATED" else bigquery_type
