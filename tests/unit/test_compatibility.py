import pytest

from etlwizard.compatibility import check_compatibility, compare_types

META = [
    {"name": "_etl_source_id", "bigquery_type": "STRING", "mode": "NULLABLE"},
    {"name": "_etl_run_id", "bigquery_type": "STRING", "mode": "NULLABLE"},
    {"name": "_etl_loaded_at", "bigquery_type": "TIMESTAMP", "mode": "NULLABLE"},
]
TYPES = [
    "INT64",
    "NUMERIC",
    "BIGNUMERIC",
    "FLOAT64",
    "BOOL",
    "STRING",
    "BYTES",
    "DATE",
    "DATETIME",
    "TIME",
    "TIMESTAMP",
    "JSON",
    "GEOGRAPHY",
]


def col(name, bigquery_type, mode="NULLABLE"):
    return {"name": name, "bigquery_type": bigquery_type, "mode": mode}


def ok(*warnings, can_alter=()):
    return {"compatible": True, "warnings": list(warnings), "can_alter": list(can_alter), "errors": []}


def bad(*errors, warnings=(), can_alter=()):
    return {"compatible": False, "warnings": list(warnings), "can_alter": list(can_alter), "errors": list(errors)}


def check(source, destination, **options):
    return check_compatibility(source, destination, **options).to_dict()


def widening(name, pair, reason):
    return f"Column {name}: source {pair} is a widening conversion: {reason}."


def narrowing(name, pair):
    return f"Column {name}: source {pair} is a narrowing conversion: not every value fits."


@pytest.mark.parametrize("bigquery_type", TYPES)
def test_identical_types_are_compatible_without_warnings(bigquery_type):
    assert check([col("amount", bigquery_type)], [col("amount", bigquery_type)]) == ok()
    assert compare_types(bigquery_type, bigquery_type) == ("ok", None)


@pytest.mark.parametrize("source, destination", [("NUMERIC", "BIGNUMERIC"), ("JSON", "STRING")])
def test_lossless_different_types_are_compatible(source, destination):
    assert check([col("amount", source)], [col("amount", destination)]) == ok()
    assert compare_types(source, destination) == ("ok", None)


@pytest.mark.parametrize(
    "source, destination, reason",
    [
        ("INT64", "NUMERIC", "integers become decimals"),
        ("INT64", "BIGNUMERIC", "integers become decimals"),
        ("INT64", "FLOAT64", "integers past 2^53 lose precision as FLOAT64"),
        ("NUMERIC", "FLOAT64", "decimals lose precision as FLOAT64"),
        ("BIGNUMERIC", "FLOAT64", "decimals lose precision as FLOAT64"),
        ("BOOL", "INT64", "true/false become 1/0"),
        ("DATE", "DATETIME", "dates become midnight"),
        ("DATE", "TIMESTAMP", "dates become midnight UTC"),
        ("DATETIME", "TIMESTAMP", "times without a zone are read as UTC"),
        ("INT64", "STRING", "values are loaded as their text"),
        ("FLOAT64", "STRING", "values are loaded as their text"),
        ("NUMERIC", "STRING", "values are loaded as their text"),
        ("BOOL", "STRING", "values are loaded as their text"),
        ("DATE", "STRING", "values are loaded as their text"),
        ("TIMESTAMP", "STRING", "values are loaded as their text"),
    ],
)
def test_widening_is_a_warning_naming_column_and_both_types(source, destination, reason):
    assert check([col("amount", source)], [col("amount", destination)]) == ok(
        widening("amount", f"{source} into {destination}", reason)
    )
    assert compare_types(source, destination) == ("warning", reason)


@pytest.mark.parametrize(
    "source, destination",
    [
        ("STRING", "INT64"),
        ("NUMERIC", "INT64"),
        ("BIGNUMERIC", "NUMERIC"),
        ("TIMESTAMP", "DATE"),
        ("TIMESTAMP", "DATETIME"),
        ("FLOAT64", "NUMERIC"),
        ("FLOAT64", "INT64"),
        ("STRING", "JSON"),
        ("INT64", "BOOL"),
    ],
)
def test_narrowing_is_an_error_naming_column_and_both_types(source, destination):
    assert check([col("amount", source)], [col("amount", destination)]) == bad(
        narrowing("amount", f"{source} into {destination}")
    )
    assert compare_types(source, destination) == ("error", "not every value fits")


@pytest.mark.parametrize(
    "source, destination, expected",
    [
        (
            col("tags", "STRING", "REPEATED"),
            col("tags", "STRING"),
            bad("Column tags: the source holds an array (ARRAY<STRING>) but the table's column is STRING."),
        ),
        (
            col("tags", "STRING"),
            col("tags", "STRING", "REPEATED"),
            bad("Column tags: the source holds a single value (STRING) but the table's column is ARRAY<STRING>."),
        ),
        (
            col("tags", "INT64", "REQUIRED"),
            col("tags", "STRING", "REPEATED"),
            bad("Column tags: the source holds a single value (INT64) but the table's column is ARRAY<STRING>."),
        ),
        (col("tags", "INT64", "REPEATED"), col("tags", "INT64", "REPEATED"), ok()),
        (col("tags", "NUMERIC", "REPEATED"), col("tags", "BIGNUMERIC", "REPEATED"), ok()),
        (
            col("tags", "INT64", "REPEATED"),
            col("tags", "STRING", "REPEATED"),
            ok(widening("tags", "ARRAY<INT64> into ARRAY<STRING>", "values are loaded as their text")),
        ),
        (
            col("tags", "STRING", "REPEATED"),
            col("tags", "INT64", "REPEATED"),
            bad(narrowing("tags", "ARRAY<STRING> into ARRAY<INT64>")),
        ),
    ],
)
def test_repeated_columns(source, destination, expected):
    assert check([source], [destination]) == expected


@pytest.mark.parametrize(
    "extra, added",
    [
        (col("note", "STRING"), {"name": "note", "bigquery_type": "STRING", "mode": "NULLABLE"}),
        (col("note", "STRING", "REQUIRED"), {"name": "note", "bigquery_type": "STRING", "mode": "NULLABLE"}),
        (
            {"name": "qty", "bigquery_type": "INT64", "nullable": False},
            {"name": "qty", "bigquery_type": "INT64", "mode": "NULLABLE"},
        ),
        (col("tags", "STRING", "REPEATED"), {"name": "tags", "bigquery_type": "STRING", "mode": "REPEATED"}),
    ],
)
def test_source_column_missing_from_table_can_be_added(extra, added):
    assert check([col("id", "INT64"), extra], [col("id", "INT64")]) == ok(can_alter=[added])


@pytest.mark.parametrize(
    "missing, expected",
    [
        (
            col("created", "TIMESTAMP", "REQUIRED"),
            bad("Column created (TIMESTAMP, REQUIRED) is not in the source, and the table requires a value in it."),
        ),
        (col("note", "STRING"), ok("Column note (STRING) is not in the source: new rows leave it NULL.")),
        (
            {"name": "note", "bigquery_type": "STRING"},
            ok("Column note (STRING) is not in the source: new rows leave it NULL."),
        ),
        (col("tags", "STRING", "REPEATED"), ok("Column tags (STRING) is not in the source: new rows leave it NULL.")),
    ],
)
def test_table_column_missing_from_source(missing, expected):
    assert check([col("id", "INT64")], [col("id", "INT64"), missing]) == expected


REQUIRED_BUT_NULLABLE = (
    "Column id: the table requires a value but the source allows NULL; a row with NULL there will fail the load."
)


@pytest.mark.parametrize(
    "source, destination_mode, expected",
    [
        (col("id", "INT64", "REQUIRED"), "NULLABLE", ok()),
        ({"name": "id", "bigquery_type": "INT64", "nullable": False}, "NULLABLE", ok()),
        (col("id", "INT64", "REQUIRED"), "REQUIRED", ok()),
        ({"name": "id", "bigquery_type": "INT64", "nullable": False}, "REQUIRED", ok()),
        (col("id", "INT64", "NULLABLE"), "REQUIRED", ok(REQUIRED_BUT_NULLABLE)),
        ({"name": "id", "bigquery_type": "INT64", "nullable": True}, "REQUIRED", ok(REQUIRED_BUT_NULLABLE)),
        ({"name": "id", "bigquery_type": "INT64"}, "REQUIRED", ok(REQUIRED_BUT_NULLABLE)),
    ],
)
def test_nullability(source, destination_mode, expected):
    assert check([source], [col("id", "INT64", destination_mode)]) == expected


def test_nullable_source_into_required_narrowing_reports_both():
    assert check([col("id", "STRING")], [col("id", "INT64", "REQUIRED")]) == bad(
        narrowing("id", "STRING into INT64"), warnings=[REQUIRED_BUT_NULLABLE]
    )


def test_names_match_case_insensitively():
    source = [col("CustomerID", "INT64", "REQUIRED"), col("Updated_At", "TIMESTAMP", "REQUIRED"), col("Total", "INT64")]
    destination = [col("customerid", "INT64"), col("UPDATED_AT", "TIMESTAMP"), col("total", "NUMERIC")] + META
    assert check(
        source,
        destination,
        primary_key=["CustomerID"],
        cursor="Updated_At",
        partition_field="updated_at",
        cluster_fields=["CUSTOMERID"],
    ) == ok(widening("Total", "INT64 into NUMERIC", "integers become decimals"))


def test_metadata_columns_of_the_table_are_ignored():
    assert check([col("id", "INT64")], [col("id", "INT64")] + META) == ok()


def test_primary_key_missing_from_table_is_an_error():
    assert check([col("id", "INT64"), col("name", "STRING")], [col("name", "STRING")], primary_key=["id"]) == bad(
        "Primary key column id is not in the table, so rows cannot be matched to replace them.",
        can_alter=[{"name": "id", "bigquery_type": "INT64", "mode": "NULLABLE"}],
    )


SOURCE = [
    col("id", "INT64", "REQUIRED"),
    col("order_id", "INT64", "REQUIRED"),
    col("created_at", "TIMESTAMP"),
    col("updated_at", "TIMESTAMP"),
]
TABLE = [col("id", "INT64"), col("order_id", "INT64"), col("created_at", "TIMESTAMP"), col("updated_at", "TIMESTAMP")]
MANAGED = dict(primary_key=["id"], cursor="updated_at", partition_field="updated_at", cluster_fields=["id"])


@pytest.mark.parametrize("destination", [TABLE + META, TABLE])
def test_same_key_and_cursor_is_compatible(destination):
    assert check(SOURCE, destination, **MANAGED) == ok()


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"cluster_fields": ["order_id"]},
            bad("Primary key mismatch: the table is keyed (clustered) by order_id, the source's key is id."),
        ),
        (
            {"primary_key": ["id", "order_id"]},
            bad("Primary key mismatch: the table is keyed (clustered) by id, the source's key is id, order_id."),
        ),
        (
            {"partition_field": "created_at"},
            bad("Cursor mismatch: the table is partitioned on created_at, the job's timestamp column is updated_at."),
        ),
        (
            {"cluster_fields": ["order_id"], "partition_field": "created_at"},
            bad(
                "Primary key mismatch: the table is keyed (clustered) by order_id, the source's key is id.",
                "Cursor mismatch: the table is partitioned on created_at, the job's timestamp column is updated_at.",
            ),
        ),
    ],
)
def test_key_or_cursor_mismatch_on_a_table_etl_wizard_made_is_an_error(changes, expected):
    assert check(SOURCE, TABLE + META, **{**MANAGED, **changes}) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"cluster_fields": ["order_id"]},
        {"primary_key": ["id", "order_id"]},
        {"partition_field": "created_at"},
        {"cluster_fields": ["order_id"], "partition_field": "created_at"},
    ],
)
def test_other_clustering_or_partitioning_of_a_foreign_table_is_fine(changes):
    assert check(SOURCE, TABLE, **{**MANAGED, **changes}) == ok()


@pytest.mark.parametrize("destination", [TABLE + META, TABLE])
def test_cursor_missing_from_table_is_an_error(destination):
    without_cursor = [f for f in destination if f["name"] != "updated_at"]
    assert check(SOURCE, without_cursor, **{**MANAGED, "partition_field": None}) == bad(
        "Timestamp column updated_at is not in the table: incremental loads need it there.",
        can_alter=[{"name": "updated_at", "bigquery_type": "TIMESTAMP", "mode": "NULLABLE"}],
    )


def test_table_clusters_by_at_most_four_key_columns():
    names = ["a", "b", "c", "d", "e"]
    columns = [col(n, "INT64", "REQUIRED") for n in names]
    assert check(columns, columns + META, primary_key=names, cluster_fields=names[:4]) == ok()


@pytest.mark.parametrize("key_type", ["BYTES", "FLOAT64"])
def test_key_column_bigquery_cannot_cluster_by_is_no_mismatch(key_type):
    # Warehouse.create_table leaves BYTES/FLOAT64/JSON key columns out of the clustering.
    source = [col("id", "INT64", "REQUIRED"), col("part", key_type, "REQUIRED")]
    table = [col("id", "INT64"), col("part", key_type)] + META
    assert check(source, table, primary_key=["id", "part"], cluster_fields=["id"]) == ok()
