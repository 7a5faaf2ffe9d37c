import pytest

from etlwizard.typemap import (
    CURSOR_TYPES,
    BigQueryType,
    bigquery_type,
    mysql_type,
    numeric_type,
    postgres_type,
)


def unknown(name):
    return f"type {name} is not known: it is loaded as STRING"


def too_wide(name):
    return f"{name} has more digits than BIGNUMERIC holds: it is loaded as STRING"


def test_cursor_types():
    assert CURSOR_TYPES == {"TIMESTAMP", "DATETIME", "DATE"}


@pytest.mark.parametrize(
    "precision, scale, expected",
    [
        (None, None, "BIGNUMERIC"),
        (None, 5, "BIGNUMERIC"),
        (1, 0, "NUMERIC"),
        (10, None, "NUMERIC"),
        (12, 2, "NUMERIC"),
        (29, 0, "NUMERIC"),
        (9, 9, "NUMERIC"),
        (38, 9, "NUMERIC"),
        (30, 0, "BIGNUMERIC"),
        (10, 10, "BIGNUMERIC"),
        (38, 10, "BIGNUMERIC"),
        (39, 9, "BIGNUMERIC"),
        (38, 0, "BIGNUMERIC"),
        (38, 38, "BIGNUMERIC"),
        (76, 38, "BIGNUMERIC"),
        (65, 30, "BIGNUMERIC"),
    ],
)
def test_numeric_type_fits(precision, scale, expected):
    assert numeric_type(precision, scale, "numeric(x)") == BigQueryType(expected)


@pytest.mark.parametrize(
    "precision, scale",
    [(39, 0), (77, 38), (39, 39), (40, 39), (65, 0), (1000, 500)],
)
def test_numeric_type_too_wide(precision, scale):
    assert numeric_type(precision, scale, "DECIMAL(p,s)") == BigQueryType("STRING", warning=too_wide("DECIMAL(p,s)"))


PG = [
    ("smallint", "INT64"),
    ("integer", "INT64"),
    ("bigint", "INT64"),
    ("real", "FLOAT64"),
    ("double precision", "FLOAT64"),
    ("boolean", "BOOL"),
    ("text", "STRING"),
    ("character varying", "STRING"),
    ("character varying(20)", "STRING"),
    ("character(20)", "STRING"),
    ("character(1)", "STRING"),
    ("name", "STRING"),
    ("uuid", "STRING"),
    ("citext", "STRING"),
    ("enum", "STRING"),
    ("inet", "STRING"),
    ("cidr", "STRING"),
    ("macaddr", "STRING"),
    ("interval", "STRING"),
    ("interval(3)", "STRING"),
    ("xml", "STRING"),
    ("date", "DATE"),
    ("time without time zone", "TIME"),
    ("time(3) without time zone", "TIME"),
    ("time with time zone", "STRING"),
    ("time(6) with time zone", "STRING"),
    ("timestamp without time zone", "DATETIME"),
    ("timestamp(3) without time zone", "DATETIME"),
    ("timestamp with time zone", "TIMESTAMP"),
    ("timestamp(6) with time zone", "TIMESTAMP"),
    ("timestamp(0) with time zone", "TIMESTAMP"),
    ("json", "JSON"),
    ("jsonb", "JSON"),
    ("bytea", "BYTES"),
    ("money", "NUMERIC"),
    ("numeric", "BIGNUMERIC"),
    ("numeric(5)", "NUMERIC"),
    ("numeric(5,0)", "NUMERIC"),
    ("numeric(12,2)", "NUMERIC"),
    ("numeric(29,0)", "NUMERIC"),
    ("numeric(38,9)", "NUMERIC"),
    ("numeric(30,0)", "BIGNUMERIC"),
    ("numeric(38,10)", "BIGNUMERIC"),
    ("numeric(20,12)", "BIGNUMERIC"),
    ("numeric(76,38)", "BIGNUMERIC"),
    ("numeric(3,5)", "NUMERIC"),
    ("decimal(10,2)", "NUMERIC"),
    ("INTEGER", "INT64"),
    ("  Timestamp(6)  With  Time Zone ", "TIMESTAMP"),
]


@pytest.mark.parametrize("text, expected", PG)
def test_postgres_scalar(text, expected):
    assert postgres_type(text) == BigQueryType(expected)


@pytest.mark.parametrize("text, expected", PG)
def test_postgres_array_is_repeated_element(text, expected):
    assert postgres_type(text + "[]") == BigQueryType(expected, repeated=True)


@pytest.mark.parametrize("text", ["numeric(39,0)", "numeric(77,38)", "numeric(40,39)", "NUMERIC(1000,2)"])
def test_postgres_numeric_too_wide(text):
    assert postgres_type(text) == BigQueryType("STRING", warning=too_wide(text))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("numeric(5,-2)", BigQueryType("NUMERIC")),
        ("numeric(30,-5)", BigQueryType("BIGNUMERIC")),
        ("numeric(38,-10)", BigQueryType("STRING", warning=too_wide("numeric(38,-10)"))),
    ],
)
def test_postgres_numeric_negative_scale(text, expected):
    assert postgres_type(text) == expected


@pytest.mark.parametrize("text", ["tsvector", "point", "int4range", "bit(1)", "bit varying(8)", "hstore", ""])
def test_postgres_unknown(text):
    assert postgres_type(text) == BigQueryType("STRING", warning=unknown(text))


def test_postgres_unknown_array_keeps_warning():
    assert postgres_type("tsvector[]") == BigQueryType("STRING", repeated=True, warning=unknown("tsvector"))


MYSQL = [
    ("tinyint(1)", "BOOL"),
    ("tinyint(4)", "INT64"),
    ("tinyint(3) unsigned", "INT64"),
    ("tinyint", "INT64"),
    ("smallint(6)", "INT64"),
    ("smallint(5) unsigned", "INT64"),
    ("mediumint(9)", "INT64"),
    ("mediumint(8) unsigned", "INT64"),
    ("int(11)", "INT64"),
    ("int(10) unsigned", "INT64"),
    ("int unsigned", "INT64"),
    ("integer", "INT64"),
    ("bigint(20)", "INT64"),
    ("bigint", "INT64"),
    ("bigint(20) unsigned", "NUMERIC"),
    ("bigint unsigned", "NUMERIC"),
    ("bigint(20) unsigned zerofill", "NUMERIC"),
    ("decimal", "NUMERIC"),
    ("decimal(10,0)", "NUMERIC"),
    ("decimal(10,2)", "NUMERIC"),
    ("decimal(10,2) unsigned", "NUMERIC"),
    ("decimal(29,0)", "NUMERIC"),
    ("decimal(38,9)", "NUMERIC"),
    ("decimal(30,0)", "BIGNUMERIC"),
    ("decimal(38,10)", "BIGNUMERIC"),
    ("decimal(65,30)", "BIGNUMERIC"),
    ("decimal(65,27)", "BIGNUMERIC"),
    ("numeric(12,2)", "NUMERIC"),
    ("float", "FLOAT64"),
    ("float unsigned", "FLOAT64"),
    ("double", "FLOAT64"),
    ("double(10,2)", "FLOAT64"),
    ("char(36)", "STRING"),
    ("varchar(255)", "STRING"),
    ("tinytext", "STRING"),
    ("text", "STRING"),
    ("mediumtext", "STRING"),
    ("longtext", "STRING"),
    ("enum('a','b')", "STRING"),
    ("enum('x)','y')", "STRING"),
    ("set('x','y')", "STRING"),
    ("date", "DATE"),
    ("datetime", "DATETIME"),
    ("datetime(6)", "DATETIME"),
    ("timestamp", "TIMESTAMP"),
    ("timestamp(6)", "TIMESTAMP"),
    ("time", "STRING"),
    ("time(3)", "STRING"),
    ("year(4)", "INT64"),
    ("year", "INT64"),
    ("json", "JSON"),
    ("binary(16)", "BYTES"),
    ("varbinary(255)", "BYTES"),
    ("tinyblob", "BYTES"),
    ("blob", "BYTES"),
    ("mediumblob", "BYTES"),
    ("longblob", "BYTES"),
    ("bit(1)", "BOOL"),
    ("bit(2)", "INT64"),
    ("bit(8)", "INT64"),
    ("bit(63)", "INT64"),
    ("bit(64)", "NUMERIC"),
    ("BIGINT(20) UNSIGNED", "NUMERIC"),
    ("  VARCHAR(10)  ", "STRING"),
]


@pytest.mark.parametrize("column_type, expected", MYSQL)
def test_mysql(column_type, expected):
    assert mysql_type(column_type) == BigQueryType(expected)


@pytest.mark.parametrize("column_type", ["decimal(65,0)", "decimal(39,0)", "decimal(65,26)"])
def test_mysql_decimal_too_wide(column_type):
    assert mysql_type(column_type) == BigQueryType("STRING", warning=too_wide(column_type))


@pytest.mark.parametrize(
    "column_type", ["geometry", "point", "polygon", "linestring", "multipoint", "vector(3)", "", "  ", "(1)"]
)
def test_mysql_unknown(column_type):
    assert mysql_type(column_type) == BigQueryType("STRING", warning=unknown(column_type))


@pytest.mark.parametrize(
    "field_type, expected",
    [
        ("INTEGER", "INT64"),
        ("INT64", "INT64"),
        ("FLOAT", "FLOAT64"),
        ("FLOAT64", "FLOAT64"),
        ("BOOLEAN", "BOOL"),
        ("BOOL", "BOOL"),
        ("NUMERIC", "NUMERIC"),
        ("DECIMAL", "NUMERIC"),
        ("BIGNUMERIC", "BIGNUMERIC"),
        ("BIGDECIMAL", "BIGNUMERIC"),
        ("STRING", "STRING"),
        ("BYTES", "BYTES"),
        ("DATE", "DATE"),
        ("DATETIME", "DATETIME"),
        ("TIME", "TIME"),
        ("TIMESTAMP", "TIMESTAMP"),
        ("JSON", "JSON"),
        ("GEOGRAPHY", "GEOGRAPHY"),
        ("INTERVAL", "INTERVAL"),
        ("integer", "INT64"),
    ],
)
@pytest.mark.parametrize(
    "mode, repeated", [("NULLABLE", False), ("REQUIRED", False), ("REPEATED", True), ("repeated", True), (None, False)]
)
def test_bigquery(field_type, expected, mode, repeated):
    assert bigquery_type(field_type, mode) == BigQueryType(expected, repeated)


def test_bigquery_default_mode_is_nullable():
    assert bigquery_type("TIMESTAMP") == BigQueryType("TIMESTAMP")


@pytest.mark.parametrize(
    "field_type, mode, expected",
    [
        ("RECORD", "NULLABLE", BigQueryType("JSON", False, "RECORD columns are loaded as JSON")),
        ("RECORD", "REPEATED", BigQueryType("JSON", True, "RECORD columns are loaded as JSON")),
        ("record", "REQUIRED", BigQueryType("JSON", False, "RECORD columns are loaded as JSON")),
        ("STRUCT", "NULLABLE", BigQueryType("JSON", False, "STRUCT columns are loaded as JSON")),
        ("RANGE", "NULLABLE", BigQueryType("STRING", False, unknown("RANGE"))),
        ("RANGE", "REPEATED", BigQueryType("STRING", True, unknown("RANGE"))),
    ],
)
def test_bigquery_record_and_unknown(field_type, mode, expected):
    assert bigquery_type(field_type, mode) == expected
