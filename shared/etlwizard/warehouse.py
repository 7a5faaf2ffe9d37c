"""The BigQuery destination: datasets, tables, schemas, row counts; creating and widening tables.

Every destination table carries load metadata columns beside the source's: which source a row came
from (so several jobs can share a table), which run wrote it, and when. The compatibility check
knows to ignore them.

Every BigQuery job started here (queries, loads, copies) is reported, with the statistics the API
gives for it, to the list a `recording_jobs()` block yields: a run records what it cost that way
(run/costs.py). Table reads and writes through the tables API (create, get, delete, update) are not
jobs and bill nothing.
"""

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import IO, Any, ParamSpec, TypeVar

import pyarrow as pa
from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry
from google.cloud import bigquery

from . import fingerprint
from .bigquery_client import make_client
from .bigquery_sql import quote, table_path
from .columnar import arrow_schema, loaded_type
from .config import Settings
from .errors import Conflict, DestinationError, Interrupted, InvalidInput, NotFound
from .model import Column
from .typemap import clusterable
from .values import to_json

P = ParamSpec("P")
T = TypeVar("T")
Row = Any  # a google.cloud.bigquery Row: values by position or name

# A run stages its rows in <table>__etl_staging_<run id>[_<chunk>] beside the destination table.
STAGING_MARK = "__etl_staging_"
METADATA_PREFIX = "_etl_"  # no selected column may start with it
SOURCE_ID = f"{METADATA_PREFIX}source_id"
RUN_ID = f"{METADATA_PREFIX}run_id"
LOADED_AT = f"{METADATA_PREFIX}loaded_at"
# When a row deleted at the source was found gone (a job's deleted rows: mark); NULL while it lives.
DELETED_AT = f"{METADATA_PREFIX}deleted_at"
METADATA_FIELDS = [
    bigquery.SchemaField(SOURCE_ID, "STRING", description="The source this row was loaded from"),
    bigquery.SchemaField(RUN_ID, "STRING", description="The ETL Wizard run that wrote this row"),
    bigquery.SchemaField(LOADED_AT, "TIMESTAMP", description="When that run committed"),
]
METADATA_NAMES = {f.name for f in METADATA_FIELDS} | {DELETED_AT}

_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_TABLE = re.compile(r"[A-Za-z0-9_\-]{1,1024}")
MAX_ROWS = 1000


def check_dataset(name: object, field: str = "dataset") -> str:
    if not isinstance(name, str) or not _DATASET.fullmatch(name):
        raise InvalidInput(field, "must be a BigQuery dataset name: letters, digits and underscores")
    return name


def check_table(name: object, field: str = "table") -> str:
    if not isinstance(name, str) or not _TABLE.fullmatch(name):
        raise InvalidInput(field, "must be a BigQuery table name: letters, digits, underscores and dashes")
    return name


def schema_field(column: Column, emulated: bool = False, mode: str | None = None) -> bigquery.SchemaField:
    return bigquery.SchemaField(column.name, loaded_type(column, emulated), mode=mode or column.mode)


def field_to_dict(field: bigquery.SchemaField) -> dict[str, str]:
    return {"name": field.name, "bigquery_type": _standard(field.field_type), "mode": field.mode or "NULLABLE"}


def _standard(field_type: str) -> str:
    return {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}.get(field_type, field_type)


@dataclass(frozen=True)
class JobStats:
    """One finished BigQuery job as the API describes it (None: the API did not report that value;
    the emulator reports few). A query bills bytes_billed (on demand) or slot_ms (capacity); loads
    and copies bill neither."""

    kind: str  # query | load | copy
    job_id: str
    statement_type: str | None = None  # a query's: SELECT, MERGE, INSERT, ALTER_TABLE, ...
    bytes_processed: int | None = None
    bytes_billed: int | None = None
    slot_ms: int | None = None
    output_rows: int | None = None  # a load's
    output_bytes: int | None = None

    @classmethod
    def of(cls, job: bigquery.QueryJob | bigquery.LoadJob | bigquery.CopyJob) -> "JobStats":
        if isinstance(job, bigquery.QueryJob):
            return cls(
                "query",
                job.job_id,
                job.statement_type,
                job.total_bytes_processed,
                job.total_bytes_billed,
                job.slot_millis,
            )
        if isinstance(job, bigquery.LoadJob):
            return cls("load", job.job_id, output_rows=job.output_rows, output_bytes=job.output_bytes)
        return cls("copy", job.job_id)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> "JobStats":
        return cls(
            doc["kind"],
            doc["job_id"],
            doc.get("statement_type"),
            doc.get("bytes_processed"),
            doc.get("bytes_billed"),
            doc.get("slot_ms"),
            doc.get("output_rows"),
            doc.get("output_bytes"),
        )

    def to_doc(self) -> dict[str, Any]:
        return asdict(self)


# The jobs started in this context: set by recording_jobs. A thread does not inherit it: a thread
# working for a run is started with a copy of the run's context (run/stage.py's loads).
_recording: ContextVar[list[JobStats] | None] = ContextVar("etl_bigquery_jobs", default=None)


@contextmanager
def recording_jobs() -> Iterator[list[JobStats]]:
    """Every BigQuery job started inside (in this context) is appended to the list yielded, once it
    is done. Blocks nest: the inner one records its own jobs only."""
    jobs: list[JobStats] = []
    token = _recording.set(jobs)
    try:
        yield jobs
    finally:
        _recording.reset(token)


def _record(stats: Callable[[], JobStats]) -> None:
    jobs = _recording.get()
    if jobs is not None:
        jobs.append(stats())  # list.append is atomic: the loads of one run finish on several threads


class Warehouse:
    def __init__(
        self, settings: Settings, client: bigquery.Client | None = None, stopping: threading.Event | None = None
    ):
        """stopping: once set, a load job still running is cancelled (the process is shutting down)."""
        self.settings = settings
        self.stopping = stopping or threading.Event()
        self.client = client or make_client(settings)
        self.project = self.client.project
        # every call gives up within the query timeout, not the client's default ten minutes
        self._retry, self._timeout = Retry(timeout=settings.query_timeout), settings.query_timeout
        self.emulated = settings.bigquery_endpoint is not None

    def arrow_schema(self, columns: list[Column]) -> pa.Schema:
        """The Arrow schema of the Parquet files a load of these columns takes."""
        return arrow_schema(columns, self.emulated)

    def table_id(self, dataset: str, table: str) -> str:
        return f"{self.project}.{check_dataset(dataset)}.{check_table(table)}"

    def quoted(self, dataset: str, table: str) -> str:
        return table_path(self.project, check_dataset(dataset), check_table(table))

    def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """fn(...), with BigQuery's errors as this code's."""
        try:
            return fn(*args, **kwargs)
        except google_errors.NotFound as e:
            raise NotFound(e.message) from None
        except google_errors.Conflict as e:
            raise Conflict(e.message) from None
        except (google_errors.GoogleAPICallError, google_errors.RetryError) as e:
            raise DestinationError(f"BigQuery error: {getattr(e, 'message', e)}") from None

    def query(self, sql: str, params: Sequence[bigquery.ScalarQueryParameter] = ()) -> list[Row]:
        config = bigquery.QueryJobConfig(query_parameters=list(params))

        def run() -> list[Row]:
            rows = self.client.query_and_wait(
                sql, job_config=config, retry=self._retry, api_timeout=self._timeout, wait_timeout=None
            )
            found = list(rows)
            _record(lambda: self._query_stats(rows))
            return found

        return self._call(run)

    def _query_stats(self, rows: bigquery.table.RowIterator) -> JobStats:
        """A finished query's statistics as the job's own resource has them (jobs.get: the answer of
        jobs.query lacks bytes billed); only what the answer said when the job cannot be read."""
        if rows.job_id is not None:
            try:
                job = self.client.get_job(
                    rows.job_id, project=rows.project, location=rows.location, retry=self._retry, timeout=self._timeout
                )
                if isinstance(job, bigquery.QueryJob):
                    return JobStats.of(job)
            except (google_errors.GoogleAPICallError, google_errors.RetryError):
                pass  # what it cost is worth less than the run: record what the answer said
        return JobStats(
            "query",
            rows.job_id or rows.query_id or "",
            bytes_processed=rows.total_bytes_processed,
            slot_ms=rows.slot_millis,
        )

    def ensure_dataset(self, dataset: str) -> None:
        self._call(
            self.client.create_dataset,
            f"{self.project}.{check_dataset(dataset)}",
            exists_ok=True,
            retry=self._retry,
            timeout=self._timeout,
        )

    def get_table(self, dataset: str, table: str) -> bigquery.Table:
        try:
            return self.client.get_table(self.table_id(dataset, table), retry=self._retry, timeout=self._timeout)
        except google_errors.NotFound:
            raise NotFound(f"table {dataset}.{table} does not exist in BigQuery") from None

    def exists(self, dataset: str, table: str) -> bool:
        try:
            self.get_table(dataset, table)
            return True
        except NotFound:
            return False

    def count_rows(self, dataset: str, table: str, source_id: str | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM {self.quoted(dataset, table)}"
        params = []
        if source_id is not None:
            sql += f" WHERE {SOURCE_ID} = @source_id"
            params = [bigquery.ScalarQueryParameter("source_id", "STRING", source_id)]
        return int(self.query(sql, params)[0][0])

    def fingerprints(
        self,
        dataset: str,
        table: str,
        spec: fingerprint.Spec,
        source_id: str,
        window: fingerprint.Window | None = None,
        live_only: bool = False,
    ) -> dict[str, fingerprint.Bucket]:
        """One source's rows in the table (within a window of its cursor; live_only: not marked
        deleted) as fingerprinted buckets, computed by BigQuery: it reads the key and cursor columns
        only."""
        where = f" WHERE {_live(live_only)}{SOURCE_ID} = @source_id"
        params = [bigquery.ScalarQueryParameter("source_id", "STRING", source_id)]
        if window is not None:
            column = quote(window.column.name)
            where += f" AND {column} IS NOT NULL"
            for name, op, value in (("lower", ">=", window.lower), ("upper", "<", window.upper)):
                if value is not None:
                    where += f" AND {column} {op} @{name}"
                    params.append(bigquery.ScalarQueryParameter(name, window.column.bigquery_type, value))
        sql = fingerprint.query("bigquery", spec, quote, self.quoted(dataset, table), where)
        return fingerprint.buckets(self.query(sql, params))

    def bucket_keys(
        self, dataset: str, table: str, spec: fingerprint.Spec, source_id: str, buckets: Sequence[str], live_only: bool
    ) -> set[str]:
        """The canonical text of one source's keys in some buckets (live_only: not marked deleted)."""
        condition = fingerprint.bucket_condition("bigquery", spec, quote, buckets)
        sql = (
            f"SELECT {fingerprint.key_text('bigquery', spec, quote)} FROM {self.quoted(dataset, table)} "
            f"WHERE {SOURCE_ID} = @source_id AND {_live(live_only)}{condition}"
        )
        params = [bigquery.ScalarQueryParameter("source_id", "STRING", source_id)]
        return {row[0] for row in self.query(sql, params)}

    def delete_keys(
        self, dataset: str, table: str, spec: fingerprint.Spec, source_id: str, keys: set[str], mark: bool
    ) -> None:
        """One MERGE: this source's rows with these keys (canonical text) marked deleted
        (_etl_deleted_at, added to the table if missing) or removed."""
        action = f"UPDATE SET {DELETED_AT} = CURRENT_TIMESTAMP()" if mark else "DELETE"
        live = f" AND T.{DELETED_AT} IS NULL" if mark else ""
        text = fingerprint.key_text("bigquery", spec, lambda name: "T." + quote(name))
        sql = (
            f"MERGE {self.quoted(dataset, table)} T USING (SELECT k FROM UNNEST(@keys) AS k) S "
            f"ON T.{SOURCE_ID} = @source_id AND {text} = S.k WHEN MATCHED{live} THEN {action}"
        )
        params: list[Any] = [
            bigquery.ScalarQueryParameter("source_id", "STRING", source_id),
            bigquery.ArrayQueryParameter("keys", "STRING", sorted(keys)),
        ]
        self.query(sql, params)

    def add_deleted_at(self, dataset: str, table: str) -> None:
        """The column marking rows deleted at the source (DDL: the emulator keeps its storage in step
        with DDL, not with schema updates through the API)."""
        self.query(f"ALTER TABLE {self.quoted(dataset, table)} ADD COLUMN IF NOT EXISTS {DELETED_AT} TIMESTAMP")

    def list_tables(self, dataset: str) -> list[dict[str, Any]]:
        check_dataset(dataset)
        try:
            self.client.get_dataset(f"{self.project}.{dataset}", retry=self._retry, timeout=self._timeout)
            items = list(self.client.list_tables(f"{self.project}.{dataset}", retry=self._retry, timeout=self._timeout))
        except google_errors.NotFound:
            raise NotFound(f"dataset {dataset} does not exist in BigQuery") from None
        out = []
        for item in sorted(items, key=lambda t: t.table_id):
            if STAGING_MARK in item.table_id:
                continue  # a run's own working table, not the user's
            table = self.get_table(dataset, item.table_id)
            out.append(self._describe(table) | {"row_count": self.count_rows(dataset, item.table_id)})
        return out

    def staging_tables(self, dataset: str) -> list[str]:
        """The runs' staging tables in a dataset (none when the dataset does not exist)."""
        try:
            items = self.client.list_tables(
                f"{self.project}.{check_dataset(dataset)}", retry=self._retry, timeout=self._timeout
            )
            return [t.table_id for t in items if STAGING_MARK in t.table_id]
        except google_errors.NotFound:
            return []

    def _describe(self, table: bigquery.Table) -> dict[str, Any]:
        return {
            "dataset": table.dataset_id,
            "table_name": table.table_id,
            "columns": [field_to_dict(f) for f in table.schema],
            "partition_field": table.time_partitioning.field if table.time_partitioning else None,
            "cluster_fields": list(table.clustering_fields or []),
        }

    def describe_table(self, dataset: str, table: str, rows: int | str = 0) -> dict[str, Any]:
        """Schema, exact row count and the first `rows` rows in key (clustering) order."""
        if isinstance(rows, str) and re.fullmatch(r"[0-9]{1,4}", rows):
            rows = int(rows)
        if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows <= MAX_ROWS:
            raise InvalidInput("rows", f"must be a whole number from 0 to {MAX_ROWS}")
        found = self.get_table(dataset, table)
        out = self._describe(found) | {"row_count": self.count_rows(dataset, table)}
        if rows:
            order = ", ".join(quote(c) for c in out["cluster_fields"]) or "1"
            sql = f"SELECT * FROM {self.quoted(dataset, table)} ORDER BY {order} LIMIT {rows}"
            names = [f.name for f in found.schema]
            out["rows"] = [{n: to_json(row[n]) for n in names} for row in self.query(sql)]
        return out

    def create_table(
        self,
        dataset: str,
        table: str,
        columns: list[Column],
        *,
        partition_field: str | None = None,
        cluster_fields: Sequence[str] = (),
    ) -> dict[str, Any]:
        """A new table for the selected columns, partitioned on the cursor, clustered by the key.
        An existing table of that name is a Conflict, never overwritten."""
        self.ensure_dataset(dataset)
        target = bigquery.Table(
            self.table_id(dataset, table), schema=[schema_field(c, self.emulated) for c in columns] + METADATA_FIELDS
        )
        if partition_field:
            target.time_partitioning = bigquery.TimePartitioning(
                type_=bigquery.TimePartitioningType.DAY, field=partition_field
            )
        clusterable = [c for c in cluster_fields if _clusterable(columns, c)][:4]
        if clusterable:
            target.clustering_fields = clusterable
        try:
            created = self.client.create_table(target, retry=self._retry, timeout=self._timeout)
        except google_errors.Conflict:
            raise Conflict(
                f"table {dataset}.{table} already exists in BigQuery: choose another name, "
                "or load into it as an existing table"
            ) from None
        except google_errors.GoogleAPICallError as e:
            raise DestinationError(f"BigQuery refused to create {dataset}.{table}: {e.message}") from None
        return self._describe(created)

    def add_columns(self, dataset: str, table: str, columns: list[Column]) -> list[str]:
        """Add columns as NULLABLE (REPEATED stays REPEATED) through the table-update API."""
        found = self.get_table(dataset, table)
        have = {f.name.lower() for f in found.schema}
        new = [c for c in columns if c.name.lower() not in have]
        if not new:
            return []
        found.schema = list(found.schema) + [
            schema_field(c, self.emulated, "REPEATED" if c.mode == "REPEATED" else "NULLABLE") for c in new
        ]
        self._call(self.client.update_table, found, ["schema"], retry=self._retry, timeout=self._timeout)
        return [c.name for c in new]

    def create_staging(self, dataset: str, table: str, columns: list[Column]) -> None:
        """A table shaped like the selected columns, every one NULLABLE (REPEATED stays), no metadata."""
        fields = [schema_field(c, self.emulated, "REPEATED" if c.mode == "REPEATED" else "NULLABLE") for c in columns]
        self.drop_table(dataset, table)
        self._call(
            self.client.create_table,
            bigquery.Table(self.table_id(dataset, table), schema=fields),
            retry=self._retry,
            timeout=self._timeout,
        )

    def load_parquet(self, dataset: str, table: str, file: IO[bytes]) -> None:
        """Append a Parquet file (rewound here) to a table with a BigQuery load job."""
        file.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        )
        options = bigquery.ParquetOptions()
        options.enable_list_inference = True  # list<x> -> REPEATED x
        config.parquet_options = options
        job = self._call(self.client.load_table_from_file, file, self.table_id(dataset, table), job_config=config)
        while True:
            try:
                self._call(job.result, timeout=1)
                _record(lambda: JobStats.of(job))
                return
            except TimeoutError:  # still loading: go on waiting, unless the process is stopping
                if self.stopping.is_set():
                    job.cancel()
                    raise Interrupted("The run was interrupted: its process is shutting down.") from None

    def create_like(self, dataset: str, table: str, like: bigquery.Table) -> None:
        """An empty table with `like`'s schema (modes and descriptions too), partitioning and
        clustering: what a copy job into `like` needs (the partitioning of both must match, and a
        copy that replaces a table gives it the copied table's schema)."""
        target = bigquery.Table(self.table_id(dataset, table), schema=like.schema)
        target.time_partitioning = like.time_partitioning
        target.range_partitioning = like.range_partitioning
        target.clustering_fields = like.clustering_fields
        self.drop_table(dataset, table)
        self._call(self.client.create_table, target, retry=self._retry, timeout=self._timeout)

    def replace_with(self, dataset: str, table: str, source: str) -> None:
        """Replace `table`'s rows with `source`'s by one copy job (WRITE_TRUNCATE): atomic, readers
        see the old rows or the new ones, and BigQuery bills no bytes for it. The two tables must
        have the same schema and partitioning (create_like)."""
        config = bigquery.CopyJobConfig(
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        )
        job = self._call(
            self.client.copy_table,
            self.table_id(dataset, source),
            self.table_id(dataset, table),
            job_config=config,
            retry=self._retry,
            timeout=self._timeout,
        )
        self._call(job.result)  # not cancelled when the process stops: the commit is under way
        _record(lambda: JobStats.of(job))

    def others_rows(self, dataset: str, table: str, source_id: str) -> int:
        """How many rows of the table some other source (or none: rows ETL Wizard did not load)
        wrote. BigQuery bills a scan of the _etl_source_id column only."""
        sql = (
            f"SELECT COUNT(*) FROM {self.quoted(dataset, table)} WHERE {SOURCE_ID} IS NULL OR {SOURCE_ID} != @source_id"
        )
        return int(self.query(sql, [bigquery.ScalarQueryParameter("source_id", "STRING", source_id)])[0][0])

    def drop_table(self, dataset: str, table: str) -> None:
        self._call(
            self.client.delete_table,
            self.table_id(dataset, table),
            not_found_ok=True,
            retry=self._retry,
            timeout=self._timeout,
        )


def _clusterable(columns: list[Column], name: str) -> bool:
    column = next((c for c in columns if c.name == name), None)
    return column is not None and clusterable(column.bigquery_type, column.mode)


def _live(live_only: bool) -> str:
    """A condition (with its AND) leaving out rows marked deleted."""
    return f"{DELETED_AT} IS NULL AND " if live_only else ""
