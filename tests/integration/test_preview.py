"""The contract route answers every test table's columns, sample rows and counts exactly."""

import pytest

COLUMN_FIELDS = ("name", "source_type", "bigquery_type", "mode", "is_primary_key", "is_timestamp_candidate")

PG_ALL_TYPES = [
    ("id", "bigint", "INT64", "REQUIRED", True, False),
    ("c_smallint", "smallint", "INT64", "NULLABLE", False, False),
    ("c_int", "integer", "INT64", "NULLABLE", False, False),
    ("c_bigint", "bigint", "INT64", "NULLABLE", False, False),
    ("c_numeric", "numeric(12,2)", "NUMERIC", "NULLABLE", False, False),
    ("c_numeric_38_10", "numeric(38,10)", "BIGNUMERIC", "NULLABLE", False, False),
    ("c_numeric_free", "numeric", "BIGNUMERIC", "NULLABLE", False, False),
    ("c_real", "real", "FLOAT64", "NULLABLE", False, False),
    ("c_double", "double precision", "FLOAT64", "NULLABLE", False, False),
    ("c_bool", "boolean", "BOOL", "NULLABLE", False, False),
    ("c_text", "text", "STRING", "NULLABLE", False, False),
    ("c_varchar", "character varying(20)", "STRING", "NULLABLE", False, False),
    ("c_char", "character(5)", "STRING", "NULLABLE", False, False),
    ("c_uuid", "uuid", "STRING", "NULLABLE", False, False),
    ("c_citext", "citext", "STRING", "NULLABLE", False, False),
    ("c_enum", "mood", "STRING", "NULLABLE", False, False),
    ("c_percent", "percent", "NUMERIC", "NULLABLE", False, False),
    ("c_date", "date", "DATE", "NULLABLE", False, True),
    ("c_time", "time without time zone", "TIME", "NULLABLE", False, False),
    ("c_ts", "timestamp without time zone", "DATETIME", "NULLABLE", False, True),
    ("c_tstz", "timestamp with time zone", "TIMESTAMP", "NULLABLE", False, True),
    ("c_interval", "interval", "STRING", "NULLABLE", False, False),
    ("c_json", "json", "JSON", "NULLABLE", False, False),
    ("c_jsonb", "jsonb", "JSON", "NULLABLE", False, False),
    ("c_bytea", "bytea", "BYTES", "NULLABLE", False, False),
    ("c_int_arr", "integer[]", "INT64", "REPEATED", False, False),
    ("c_text_arr", "text[]", "STRING", "REPEATED", False, False),
    ("c_inet", "inet", "STRING", "NULLABLE", False, False),
    ("c_cidr", "cidr", "STRING", "NULLABLE", False, False),
    ("c_tsvector", "tsvector", "STRING", "NULLABLE", False, False),
    ("created_at", "timestamp with time zone", "TIMESTAMP", "NULLABLE", False, True),
    ("updated_at", "timestamp with time zone", "TIMESTAMP", "REQUIRED", False, True),
]
PG_ALL_TYPES_ROW_1 = {
    "id": 1,
    "c_smallint": -32768,
    "c_int": 2147483647,
    "c_bigint": "9223372036854775807",  # past 2**53: a string, so JavaScript keeps every digit
    "c_numeric": "1234567890.12",
    "c_numeric_38_10": "1234567890123456789012345678.0123456789",
    "c_numeric_free": "123456789012345678901234567890.1234567890",
    "c_real": 1.5,
    "c_double": 3.141592653589793,
    "c_bool": True,
    "c_text": "héllo, wörld",
    "c_varchar": "varchar",
    "c_char": "ab",
    "c_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "c_citext": "CaseLess",
    "c_enum": "happy",
    "c_percent": "99.50",
    "c_date": "2024-02-29",
    "c_time": "23:59:59.999999",
    "c_ts": "2024-02-29T12:34:56.789012",
    "c_tstz": "2024-02-29T10:34:56.123456+00:00",
    "c_interval": "1 year 2 mons 3 days 04:05:06.5",
    "c_json": {"a": [1, 2.5, "x"]},
    "c_jsonb": {"a": 1, "b": {"c": None}},
    "c_bytea": "AP8Q",
    "c_int_arr": [1, 2, None, 4],
    "c_text_arr": ["a", "b c", None],
    "c_inet": "192.168.1.1/32",
    "c_cidr": "10.0.0.0/8",
    "c_tsvector": "'brown' 'fox' 'quick'",
    "created_at": "2024-01-01T00:00:00.000000+00:00",
    "updated_at": "2024-03-01T10:00:00.000001+00:00",
}

MY_ALL_TYPES = [
    ("id", "int(11)", "INT64", "REQUIRED", True, False),
    ("c_bool", "tinyint(1)", "BOOL", "NULLABLE", False, False),
    ("c_tinyint", "tinyint(4)", "INT64", "NULLABLE", False, False),
    ("c_smallint_u", "smallint(5) unsigned", "INT64", "NULLABLE", False, False),
    ("c_mediumint", "mediumint(9)", "INT64", "NULLABLE", False, False),
    ("c_int", "int(11)", "INT64", "NULLABLE", False, False),
    ("c_int_u", "int(10) unsigned", "INT64", "NULLABLE", False, False),
    ("c_bigint", "bigint(20)", "INT64", "NULLABLE", False, False),
    ("c_bigint_u", "bigint(20) unsigned", "NUMERIC", "NULLABLE", False, False),
    ("c_decimal", "decimal(12,2)", "NUMERIC", "NULLABLE", False, False),
    ("c_decimal_wide", "decimal(65,30)", "BIGNUMERIC", "NULLABLE", False, False),
    ("c_float", "float", "FLOAT64", "NULLABLE", False, False),
    ("c_double", "double", "FLOAT64", "NULLABLE", False, False),
    ("c_char", "char(5)", "STRING", "NULLABLE", False, False),
    ("c_varchar", "varchar(20)", "STRING", "NULLABLE", False, False),
    ("c_text", "text", "STRING", "NULLABLE", False, False),
    ("c_enum", "enum('small','large')", "STRING", "NULLABLE", False, False),
    ("c_set", "set('x','y','z')", "STRING", "NULLABLE", False, False),
    ("c_date", "date", "DATE", "NULLABLE", False, True),
    ("c_datetime", "datetime(6)", "DATETIME", "NULLABLE", False, True),
    ("c_timestamp", "timestamp(6)", "TIMESTAMP", "NULLABLE", False, True),
    ("c_time", "time(6)", "STRING", "NULLABLE", False, False),
    ("c_year", "year(4)", "INT64", "NULLABLE", False, False),
    ("c_json", "json", "JSON", "NULLABLE", False, False),
    ("c_blob", "blob", "BYTES", "NULLABLE", False, False),
    ("c_binary", "binary(4)", "BYTES", "NULLABLE", False, False),
    ("c_bit1", "bit(1)", "BOOL", "NULLABLE", False, False),
    ("c_bit8", "bit(8)", "INT64", "NULLABLE", False, False),
    ("updated_at", "datetime(6)", "DATETIME", "REQUIRED", False, True),
]
MY_ALL_TYPES_ROW_1 = {
    "id": 1,
    "c_bool": True,
    "c_tinyint": -128,
    "c_smallint_u": 65535,
    "c_mediumint": -8388608,
    "c_int": -2147483648,
    "c_int_u": 4294967295,
    "c_bigint": "-9223372036854775808",
    "c_bigint_u": "18446744073709551615",
    "c_decimal": "1234567890.12",
    "c_decimal_wide": "12345678901234567890123456789012345.123456789012345678901234567890",
    "c_float": 1.5,
    "c_double": 3.141592653589793,
    "c_char": "ab",
    "c_varchar": "varchar",
    "c_text": "héllo, wörld",
    "c_enum": "large",
    "c_set": "x,z",
    "c_date": "2024-02-29",
    "c_datetime": "2024-02-29T12:34:56.789012",
    "c_timestamp": "2024-02-29T10:34:56.123456+00:00",
    "c_time": "-838:59:59.000000",
    "c_year": 2024,
    "c_json": {"a": [1, 2.5, "x"]},
    "c_blob": "AP8Q",
    "c_binary": "AQIDBA==",
    "c_bit1": True,
    "c_bit8": 165,
    "updated_at": "2024-03-01T10:00:00.000001",
}


def columns_of(preview):
    return [tuple(c[f] for f in COLUMN_FIELDS) for c in preview["columns"]]


def nullable_matches_mode(preview):
    return all(c["nullable"] == (c["mode"] != "REQUIRED") for c in preview["columns"] if c["mode"] != "REPEATED")


def preview(client, connection_id, schema, table, status=200):
    response = client.post(
        f"/api/connections/{connection_id}/fetch-table-preview/", json={"schema_name": schema, "table_name": table}
    )
    assert response.status_code == status, response.get_json()
    return response.get_json()


def test_postgres_all_types(client, pg):
    p = preview(client, pg, "public", "all_types")
    assert columns_of(p) == PG_ALL_TYPES
    assert nullable_matches_mode(p)
    assert p["sample_rows"][0] == PG_ALL_TYPES_ROW_1
    assert p["sample_rows"][1] == {
        **{c[0]: None for c in PG_ALL_TYPES},
        "id": 2,
        "updated_at": "2024-03-02T00:00:00.000000+00:00",
    }
    assert (p["total_rows"], p["total_rows_exact"]) == (2, True)
    assert p["recommended_timestamp_column"] == "updated_at"  # NOT NULL and indexed beats created_at
    assert p["recommended_primary_key"] == ["id"]
    assert p["warnings"] == ["c_tsvector: type tsvector is not known: it is loaded as STRING"]


def test_mysql_all_types(client, maria, mysql_db):
    p = preview(client, maria, mysql_db["database"], "all_types")
    assert columns_of(p) == MY_ALL_TYPES
    assert nullable_matches_mode(p)
    assert p["sample_rows"][0] == MY_ALL_TYPES_ROW_1
    # Row 2 holds MySQL zero dates: no such day exists, so they read as NULL.
    assert p["sample_rows"][1] == {
        **{c[0]: None for c in MY_ALL_TYPES},
        "id": 2,
        "updated_at": "2024-03-02T00:00:00.000000",
    }
    assert (p["total_rows"], p["recommended_timestamp_column"], p["recommended_primary_key"]) == (
        2,
        "updated_at",
        ["id"],
    )
    assert p["warnings"] == []


@pytest.mark.parametrize("source", ["pg", "maria"])
def test_quoted_names_and_reserved_words(client, request, postgres_db, mysql_db, source):
    connection = request.getfixturevalue(source)
    schema = "Sales Data" if source == "pg" else mysql_db["database"]
    p = preview(client, connection, schema, "Order Items")
    odd = 'Quote"d' if source == "pg" else "Back`tick"
    assert [c["name"] for c in p["columns"]] == ["Item ID", "Order Date", "select", "from", odd]
    assert p["sample_rows"] == [
        {"Item ID": 1, "Order Date": "2024-05-01", "select": 7, "from": "web", odd: "it's"},
        {"Item ID": 2, "Order Date": "2024-05-02", "select": None, "from": None, odd: None},
    ]
    assert p["recommended_primary_key"] == ["Item ID"]
    assert p["recommended_timestamp_column"] == "Order Date"
    assert p["suggested_table"] == "order_items"  # what a job made from it is called by default


@pytest.mark.parametrize("source", ["pg", "maria"])
def test_keys_views_and_empty_tables(client, request, postgres_db, mysql_db, source):
    connection = request.getfixturevalue(source)
    schema = "public" if source == "pg" else mysql_db["database"]

    composite = preview(client, connection, schema, "composite_pk")
    assert composite["recommended_primary_key"] == ["region", "order_no"]
    assert [c["is_primary_key"] for c in composite["columns"]] == [True, True, False, False]
    assert [r["region"] for r in composite["sample_rows"]] == ["eu", "us"]  # first rows in key order
    assert composite["sample_rows"][0]["amount"] == "10.50"
    assert composite["recommended_timestamp_column"] == "modified_at"

    no_pk = preview(client, connection, schema, "no_pk")
    assert no_pk["primary_key"] == [] and no_pk["recommended_primary_key"] == []
    assert sorted(r["name"] for r in no_pk["sample_rows"]) == ["a", "b"]
    assert no_pk["recommended_timestamp_column"] == "happened_on"

    unique = preview(client, connection, schema, "unique_key_only")
    assert unique["primary_key"] == [] and unique["recommended_primary_key"] == ["code"]
    assert [r["code"] for r in unique["sample_rows"]] == ["A", "B"]

    view = preview(client, connection, schema, "v_all_types")
    assert view["kind"] == "view"
    assert [c["name"] for c in view["columns"]] == ["id", "c_numeric" if source == "pg" else "c_decimal", "updated_at"]
    assert view["total_rows"] == 2 and view["recommended_primary_key"] == []

    empty = preview(client, connection, schema, "empty_table")
    assert (empty["sample_rows"], empty["total_rows"], empty["total_rows_exact"]) == ([], 0, True)
    assert empty["recommended_timestamp_column"] is None


def test_tables_route_lists_tables_and_views(client, pg, maria, mysql_db):
    pg_tables = client.get(f"/api/connections/{pg}/tables/").get_json()["tables"]
    assert {"schema_name": "Sales Data", "table_name": "Order Items", "kind": "table"} in pg_tables
    assert {"schema_name": "public", "table_name": "v_all_types", "kind": "view"} in pg_tables
    assert len(pg_tables) == 7
    my_tables = client.get(f"/api/connections/{maria}/tables/").get_json()["tables"]
    mine = [t for t in my_tables if t["schema_name"] == mysql_db["database"]]
    assert sorted(t["table_name"] for t in mine) == [
        "Order Items",
        "all_types",
        "composite_pk",
        "empty_table",
        "no_pk",
        "unique_key_only",
        "v_all_types",
    ]


def test_large_table_reports_the_catalog_estimate(make_stack, postgres_db):
    import pg8000.native

    from web.app import create_app

    db = pg8000.native.Connection(**postgres_db)
    db.run("CREATE TABLE big AS SELECT g AS id FROM generate_series(1, 5000) g")
    db.run("ANALYZE big")
    try:
        client = create_app(stack=make_stack(exact_count_limit=1000)).test_client()
        pg = client.post("/api/connections/", json={"name": "pg", "type": "postgresql", **postgres_db}).get_json()
        p = preview(client, pg["connection"]["id"], "public", "big")
        assert (p["total_rows"], p["total_rows_exact"]) == (5000, False)
    finally:
        db.run("DROP TABLE big")
        db.close()
