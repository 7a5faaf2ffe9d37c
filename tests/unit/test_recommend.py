import pytest

from etlwizard.model import Column, TableMetadata
from etlwizard.recommend import recommend_key, recommend_timestamp_column
from etlwizard.sources.base import make_column
from etlwizard.typemap import BigQueryType, postgres_type


def col(name, bq="TIMESTAMP", *, null=False, idx=False, candidate=None):
    if candidate is None:
        candidate = bq in ("TIMESTAMP", "DATETIME", "DATE")
    return Column(name, bq.lower(), bq, nullable=null, is_timestamp_candidate=candidate, indexed=idx)


def meta(*columns, pk=(), unique=()):
    return TableMetadata("public", "t", list(columns), list(pk), [list(k) for k in unique])


@pytest.mark.parametrize(
    "columns, expected",
    [
        ([], None),
        ([col("id", "INT64"), col("name", "STRING")], None),
        ([col("id", "INT64"), col("updated_at", candidate=False)], None),
        ([col("id", "INT64"), col("ts")], "ts"),
        ([col("ts", null=True)], "ts"),
        ([col("a", null=True), col("b")], "b"),
        ([col("a"), col("b", idx=True)], "b"),
        ([col("a", null=True, idx=True), col("b")], "b"),
        ([col("updated_at", null=True), col("event_ts")], "event_ts"),
        ([col("updated_at"), col("event_ts", idx=True)], "event_ts"),
        ([col("created_at"), col("updated_at")], "updated_at"),
        ([col("created_at"), col("modified_at")], "modified_at"),
        ([col("event_ts"), col("created_at")], "created_at"),
        ([col("created"), col("inserted_at")], "inserted_at"),
        ([col("last_modified"), col("last_update")], "last_update"),
        ([col("ts"), col("Updated_At")], "Updated_At"),
        ([col("a"), col("b")], "a"),
        ([col("a", "DATETIME"), col("b", "TIMESTAMP")], "a"),
        ([col("b", "TIMESTAMP"), col("a", "DATETIME")], "b"),
        ([col("updated_at", "DATE", idx=True), col("t", null=True)], "t"),
        ([col("updated_at", "DATE", idx=True), col("t", "DATETIME", null=True)], "t"),
        ([col("id", "INT64"), col("day", "DATE")], "day"),
        ([col("day", "DATE", null=True), col("updated_on", "DATE")], "updated_on"),
    ],
)
def test_recommend_timestamp_column(columns, expected):
    assert recommend_timestamp_column(meta(*columns)) == expected


@pytest.mark.parametrize(
    "pk, unique, expected",
    [
        (["id"], [], ["id"]),
        (["tenant", "id"], [["email"]], ["tenant", "id"]),
        ([], [["email"], ["a", "b"]], ["email"]),
        ([], [["a", "b"], ["email"]], ["a", "b"]),
        ([], [], []),
    ],
)
def test_recommend_key(pk, unique, expected):
    assert recommend_key(meta(col("id", "INT64"), pk=pk, unique=unique)) == expected


@pytest.mark.parametrize("pk, unique", [(["id"], []), ([], [["email"]])])
def test_recommend_key_returns_a_copy(pk, unique):
    table = meta(pk=pk, unique=unique)
    recommend_key(table).append("x")
    assert (table.primary_key, table.unique_keys) == (pk, unique)


@pytest.mark.parametrize(
    "source_type, nullable, mode, candidate, warning",
    [
        ("timestamp with time zone", True, "NULLABLE", True, None),
        ("timestamp without time zone", False, "REQUIRED", True, None),
        ("date", False, "REQUIRED", True, None),
        ("timestamp with time zone[]", True, "REPEATED", False, None),
        ("integer", False, "REQUIRED", False, None),
        ("tsvector", True, "NULLABLE", False, "type tsvector is not known: it is loaded as STRING"),
    ],
)
def test_make_column(source_type, nullable, mode, candidate, warning):
    column = make_column("c", source_type, postgres_type(source_type), nullable, is_primary_key=True, indexed=True)
    assert column == Column(
        "c", source_type, postgres_type(source_type).type, nullable, mode, True, candidate, warning, indexed=True
    )


def test_make_column_feeds_recommendation():
    columns = [
        make_column("id", "bigint", BigQueryType("INT64"), False, is_primary_key=True, indexed=True),
        make_column("tags_at", "timestamp[]", BigQueryType("TIMESTAMP", repeated=True), False, indexed=True),
        make_column("created_at", "timestamp", BigQueryType("DATETIME"), False),
        make_column("updated_at", "timestamp", BigQueryType("DATETIME"), True),
    ]
    assert recommend_timestamp_column(meta(*columns)) == "created_at"
