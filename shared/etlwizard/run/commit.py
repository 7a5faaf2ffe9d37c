"""The commit: one MERGE from staging into the destination table, atomic in BigQuery, and leaving
the same table whether it runs once or twice.

- Transactional with a key: upsert on the key (and this source), so rows read again at the window's
  boundary replace themselves.
- Transactional without a key: this source's rows inside the window are replaced.
- Catalog: the snapshot is inserted and this source's other rows deleted in the same statement, so
  a reader sees the old snapshot or the new one.
Other sources' rows in a shared table are never touched.
"""

from dataclasses import dataclass

from google.cloud import bigquery

from ..bigquery_sql import quote
from ..job import Job
from ..model import Column
from ..sources.base import Bound
from ..stack import Stack
from ..warehouse import DELETED_AT, LOADED_AT, RUN_ID, SOURCE_ID, STAGING_MARK


def staging_name(job: Job, run_id: str, chunk: int | None = None) -> str:
    suffix = "" if chunk is None else f"_{chunk}"
    return f"{job.destination.table}{STAGING_MARK}{run_id}{suffix}"


@dataclass(frozen=True)
class Merge:
    sql: str
    params: list[bigquery.ScalarQueryParameter]


def merge_statement(
    job: Job,
    columns: list[Column],
    lower: Bound,
    upper: Bound,
    target: str,
    staged: str,
    run_id: str,
    replace_window: bool = False,
    revive: bool = False,
) -> Merge:
    """The MERGE of `staged` (a table or a subquery, as SQL) into `target` for a window of the job's
    cursor (lower None: open; both ignored for catalog loads). replace_window: a keyed window's
    rows that staging lacks are deleted too (a repair: the window as the source has it now).
    revive: the table marks deleted rows (_etl_deleted_at): a row the source has again lives again."""
    names = [quote(c.name) for c in columns]
    insert = (
        f"INSERT ({', '.join(names)}, {SOURCE_ID}, {RUN_ID}, {LOADED_AT}) "
        f"VALUES ({', '.join('S.' + n for n in names)}, @source_id, @run_id, CURRENT_TIMESTAMP())"
    )
    params = [
        bigquery.ScalarQueryParameter("source_id", "STRING", job.source_id),
        bigquery.ScalarQueryParameter("run_id", "STRING", run_id),
    ]
    cursor, key = job.cursor, [quote(k) for k in job.primary_key]
    if cursor is not None and key:
        on = " AND ".join(f"T.{k} = S.{k}" for k in key) + f" AND T.{SOURCE_ID} = @source_id"
        update = [f"{n} = S.{n}" for n in names if n not in key]
        update += [f"{RUN_ID} = @run_id", f"{LOADED_AT} = CURRENT_TIMESTAMP()"]
        update += [f"{DELETED_AT} = NULL"] if revive else []
        extra = ""
        if replace_window:  # where deleted rows are marked, the rows the source lacks are marked too
            gone = f"UPDATE SET {DELETED_AT} = CURRENT_TIMESTAMP()" if revive else "DELETE"
            live = f" AND T.{DELETED_AT} IS NULL" if revive else ""
            extra = f" WHEN NOT MATCHED BY SOURCE AND {_window_scope(cursor, lower, upper, params)}{live} THEN {gone}"
        return Merge(
            f"MERGE {target} T USING {staged} S ON {on} "
            f"WHEN MATCHED THEN UPDATE SET {', '.join(update)} WHEN NOT MATCHED THEN {insert}{extra}",
            params,
        )
    scope = f"T.{SOURCE_ID} = @source_id"
    if cursor is not None:  # no key: replace this source's rows inside the window
        scope = _window_scope(cursor, lower, upper, params)
    # ON FALSE, as an equality that never holds (S._etl_no_match is NULL): engines hash-join an
    # equality, where DuckDB (the emulator) compares every pair under ON FALSE, which made
    # replacing 80,000 rows take 8 s and 2M rows hours
    return Merge(
        f"MERGE {target} T USING (SELECT *, CAST(NULL AS STRING) AS _etl_no_match FROM {staged}) S "
        f"ON T.{RUN_ID} = S._etl_no_match "
        f"WHEN NOT MATCHED THEN {insert} WHEN NOT MATCHED BY SOURCE AND {scope} THEN DELETE",
        params,
    )


def _window_scope(cursor: Column, lower: Bound, upper: Bound, params: list[bigquery.ScalarQueryParameter]) -> str:
    """This source's rows with lower <= cursor < upper (lower None: open), its bounds added to params."""
    scope = f"T.{SOURCE_ID} = @source_id"
    if lower is not None:
        scope += f" AND T.{quote(cursor.name)} >= @lower"
        params.append(bigquery.ScalarQueryParameter("lower", cursor.bigquery_type, lower))
    scope += f" AND T.{quote(cursor.name)} < @upper"
    params.append(bigquery.ScalarQueryParameter("upper", cursor.bigquery_type, upper))
    return scope


def commit(
    stack: Stack,
    job: Job,
    columns: list[Column],
    lower: Bound,
    upper: Bound,
    staging_tables: list[str],
    run_id: str,
) -> None:
    """Merge the staging tables (one, or one per chunk) into the job's table."""
    warehouse, dataset = stack.warehouse, job.destination.dataset
    staged = [warehouse.quoted(dataset, name) for name in staging_tables]
    source = staged[0] if len(staged) == 1 else "(" + " UNION ALL ".join(f"SELECT * FROM {s}" for s in staged) + ")"
    if job.marks_deleted:  # the MERGE revives rows the source has again: the column must be there
        warehouse.add_deleted_at(dataset, job.destination.table)
    target = warehouse.quoted(dataset, job.destination.table)
    merge = merge_statement(job, columns, lower, upper, target, source, run_id, revive=job.marks_deleted)
    warehouse.query(merge.sql, merge.params)
