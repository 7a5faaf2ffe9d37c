"""What the wizard suggests for a table: the key a merge uses, the cursor an incremental load reads by.

Product heuristics over a table's metadata, the same whichever database it came from.
"""

from .model import Column, TableMetadata


def recommend_key(meta: TableMetadata) -> list[str]:
    """The declared primary key, else the first unique index whose columns are all NOT NULL."""
    if meta.primary_key:
        return list(meta.primary_key)
    return list(meta.unique_keys[0]) if meta.unique_keys else []


_CURSOR_NAMES = (
    "updated_at",
    "modified_at",
    "last_update",
    "last_modified",
    "updated",
    "modified",
    "changed_at",
    "created_at",
    "inserted_at",
    "created",
)


def recommend_timestamp_column(meta: TableMetadata) -> str | None:
    """The best cursor for incremental loads: a timestamp/datetime column, preferring NOT NULL,
    indexed, and names like updated_at / modified_at / created_at; a DATE only as a last resort."""

    def score(column: Column) -> tuple[bool, bool, bool, int, int]:
        name = column.name.lower()
        rank = _CURSOR_NAMES.index(name) if name in _CURSOR_NAMES else len(_CURSOR_NAMES)
        return (
            column.bigquery_type == "DATE",  # a date cursor reloads a whole day each run
            column.nullable,
            not column.indexed,
            rank,
            meta.columns.index(column),
        )

    candidates = [c for c in meta.columns if c.is_timestamp_candidate]
    return min(candidates, key=score).name if candidates else None
