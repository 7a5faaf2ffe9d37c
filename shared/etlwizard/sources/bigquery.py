"""BigQuery as a source, through google-cloud-bigquery (the emulator in the embedded stack)."""

from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from google.api_core import exceptions as google_errors
from google.api_core.retry import Retry
from google.cloud import bigquery

from ..bigquery_client import make_client
from ..config import Settings
from ..errors import NotFound, SourceAuthError, SourceConnectionError, SourceQueryError
from ..model import Column, Connection, TableMetadata
from ..reach.options import Credentials
from ..typemap import bigquery_type
from ..values import to_json
from .base import Bound, Row, Source, make_column

T = TypeVar("T")


class BigQuerySource(Source):
    """Schemas are datasets. A table's rows are counted with COUNT(*), which BigQuery answers
    from metadata without scanning."""

    type = "bigquery"

    def __init__(self, connection: Connection, credentials: Credentials, settings: Settings):
        super().__init__(connection, credentials, settings)
        self._client: bigquery.Client | None = None
        # Every call gives up within the query timeout, not the client's default ten minutes.
        self._limits: dict[str, Any] = {
            "retry": Retry(timeout=settings.query_timeout),
            "timeout": settings.query_timeout,
        }

    @property
    def client(self) -> bigquery.Client:
        if self._client is None:
            self._client = make_client(self.settings, self.connection.project, self.credentials.password)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        c = self.connection
        try:
            return fn(*args, **kwargs)
        except google_errors.NotFound as e:
            raise NotFound(f"{c.label}: {e.message}") from None
        except (google_errors.Unauthorized, google_errors.Forbidden) as e:
            raise SourceAuthError(f"{c.label}: BigQuery refused access: {e.message}") from None
        except google_errors.GoogleAPICallError as e:
            raise SourceQueryError(f"{c.label}: BigQuery error: {self.scrub(e.message)}") from None
        except (google_errors.RetryError, OSError) as e:
            raise SourceConnectionError(f"{c.label}: cannot reach BigQuery ({self.scrub(str(e))})") from None

    def test(self) -> str:
        self._call(
            lambda: list(
                self.client.list_datasets(
                    max_results=1,
                    retry=Retry(timeout=self.settings.connect_timeout),
                    timeout=self.settings.connect_timeout,
                )
            )
        )
        return f"BigQuery project {self.connection.project}"

    def list_tables(self) -> list[dict[str, str]]:
        out = []
        for dataset in self._call(lambda: list(self.client.list_datasets(**self._limits))):
            tables = self._call(lambda ref: list(self.client.list_tables(ref, **self._limits)), dataset.reference)
            out += [
                {
                    "schema_name": dataset.dataset_id,
                    "table_name": t.table_id,
                    "kind": "view" if t.table_type in ("VIEW", "MATERIALIZED_VIEW") else "table",
                }
                for t in tables
            ]
        return sorted(out, key=lambda t: (t["schema_name"], t["table_name"]))

    def _table(self, schema_name: str, table_name: str) -> bigquery.Table:
        try:
            return self.client.get_table(f"{self.connection.project}.{schema_name}.{table_name}", **self._limits)
        except (google_errors.NotFound, google_errors.BadRequest, ValueError):
            raise NotFound(f"table {schema_name}.{table_name} does not exist in {self.connection.label}") from None

    def fetch_table_metadata(self, schema_name: str, table_name: str) -> TableMetadata:
        table = self._table(schema_name, table_name)
        constraints = table.table_constraints
        primary_key = list(constraints.primary_key.columns) if constraints and constraints.primary_key else []
        clustered = set(table.clustering_fields or [])
        partition = table.time_partitioning.field if table.time_partitioning else None
        columns = [
            make_column(
                f.name,
                f.field_type if f.mode != "REPEATED" else f"ARRAY<{f.field_type}>",
                bigquery_type(f.field_type, f.mode),
                f.mode != "REQUIRED",
                is_primary_key=f.name in primary_key,
                indexed=f.name in clustered or f.name == partition,
            )
            for f in table.schema
        ]
        return TableMetadata(
            schema_name,
            table_name,
            columns,
            primary_key,
            kind="view" if table.table_type in ("VIEW", "MATERIALIZED_VIEW") else "table",
        )

    def _quoted_table(self, meta: TableMetadata) -> str:
        return "`" + f"{self.connection.project}.{meta.schema_name}.{meta.table_name}".replace("`", "") + "`"

    def total_rows(self, meta: TableMetadata) -> tuple[int, bool]:
        sql = f"SELECT COUNT(*) FROM {self._quoted_table(meta)}"
        count: int = self._call(
            lambda: next(
                iter(
                    self.client.query_and_wait(
                        sql,
                        retry=self._limits["retry"],
                        api_timeout=self.settings.query_timeout,
                        wait_timeout=self.settings.query_timeout,
                    )
                )
            )[0]
        )
        return count, True

    def sample_rows(self, meta: TableMetadata, limit: int) -> list[dict[str, Any]]:
        table = self._table(meta.schema_name, meta.table_name)
        rows = self._call(lambda: list(self.client.list_rows(table, max_results=limit, **self._limits)))
        return [{c.name: to_json(row.get(c.name)) for c in meta.columns} for row in rows]

    def cursor_now(self, cursor: Column) -> date | datetime:
        kind = {"TIMESTAMP": "CURRENT_TIMESTAMP()", "DATETIME": "CURRENT_DATETIME()", "DATE": "CURRENT_DATE()"}
        now: date | datetime = self._call(
            lambda: next(
                iter(self.client.query_and_wait(f"SELECT {kind[cursor.bigquery_type]}", retry=self._limits["retry"]))
            )[0]
        )
        return now

    def read_batches(
        self,
        meta: TableMetadata,
        columns: list[Column],
        cursor: Column | None,
        lower: Bound,
        upper: Bound,
        batch_size: int,
    ) -> Iterator[Sequence[Row]]:
        select = ", ".join("`" + c.name.replace("`", "") + "`" for c in columns)
        sql = f"SELECT {select} FROM {self._quoted_table(meta)}"
        conditions, params = [], []
        if cursor is not None:
            name = "`" + cursor.name.replace("`", "") + "`"
            conditions.append(f"{name} IS NOT NULL")
            for op, value, label in ((">=", lower, "lower"), ("<", upper, "upper")):
                if value is not None:
                    conditions.append(f"{name} {op} @{label}")
                    params.append(bigquery.ScalarQueryParameter(label, cursor.bigquery_type, value))
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        job = self._call(
            self.client.query,
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=params),
            retry=self._limits["retry"],
        )
        rows = self._call(job.result, page_size=batch_size)
        for page in rows.pages:
            yield [tuple(row.values()) for row in page]
