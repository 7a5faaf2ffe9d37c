"""Source column types -> BigQuery column types.

Each source reports a column's type as its catalog spells it (PostgreSQL's format_type(), MySQL's
COLUMN_TYPE, a BigQuery schema field's type); one function per source turns that text into a
BigQueryType. A type no map knows becomes STRING with a warning: a preview never crashes on it.
"""

import re
from dataclasses import dataclass

# Types whose values order rows in time: what a transactional job may use as its cursor.
CURSOR_TYPES = frozenset({"TIMESTAMP", "DATETIME", "DATE"})

# BigQuery NUMERIC holds 29 integer and 9 fractional digits; BIGNUMERIC 38 and 38.
NUMERIC_DIGITS = (29, 9)
BIGNUMERIC_DIGITS = (38, 38)


@dataclass(frozen=True)
class BigQueryType:
    type: str
    repeated: bool = False
    warning: str | None = None


def clusterable(bigquery_type: str, mode: str = "NULLABLE") -> bool:
    """Whether BigQuery can cluster a table by a column of this type (ETL Wizard clusters new
    tables by the key columns it can)."""
    return mode != "REPEATED" and bigquery_type not in ("JSON", "FLOAT64", "BYTES")


def unknown(source_type: str) -> BigQueryType:
    return BigQueryType("STRING", warning=f"type {source_type} is not known: it is loaded as STRING")


def numeric_type(precision: int | None, scale: int | None, source_type: str) -> BigQueryType:
    """The narrowest BigQuery decimal type that holds every value of DECIMAL(precision, scale)."""
    if precision is None:
        return BigQueryType("BIGNUMERIC")
    scale = scale or 0
    integer_digits = precision - scale
    scale = max(scale, 0)
    if integer_digits <= NUMERIC_DIGITS[0] and scale <= NUMERIC_DIGITS[1]:
        return BigQueryType("NUMERIC")
    if integer_digits <= BIGNUMERIC_DIGITS[0] and scale <= BIGNUMERIC_DIGITS[1]:
        return BigQueryType("BIGNUMERIC")
    return BigQueryType(
        "STRING", warning=f"{source_type} has more digits than BIGNUMERIC holds: it is loaded as STRING"
    )


# --- PostgreSQL ---------------------------------------------------------------------------------

_POSTGRES = {
    "smallint": "INT64",
    "integer": "INT64",
    "bigint": "INT64",
    "real": "FLOAT64",
    "double precision": "FLOAT64",
    "boolean": "BOOL",
    "text": "STRING",
    "character varying": "STRING",
    "character": "STRING",
    "name": "STRING",
    "uuid": "STRING",
    "citext": "STRING",
    "enum": "STRING",
    "inet": "STRING",
    "cidr": "STRING",
    "macaddr": "STRING",
    "interval": "STRING",
    "xml": "STRING",
    "date": "DATE",
    "time without time zone": "TIME",
    "time with time zone": "STRING",
    "timestamp without time zone": "DATETIME",
    "timestamp with time zone": "TIMESTAMP",
    "json": "JSON",
    "jsonb": "JSON",
    "bytea": "BYTES",
    "money": "NUMERIC",
}
_TYPMOD = re.compile(r"\([^)]*\)")


def postgres_type(base_type: str) -> BigQueryType:
    """Map a PostgreSQL type as format_type() spells it ("numeric(12,2)", "integer[]",
    "timestamp(3) with time zone"). Enums arrive as "enum", domains as their base type."""
    text = base_type.strip().lower()
    if text.endswith("[]"):
        element = postgres_type(text[:-2])
        return BigQueryType(element.type, repeated=True, warning=element.warning)
    if text.startswith("numeric") or text.startswith("decimal"):
        digits = re.findall(r"-?\d+", text)  # PostgreSQL 15 allows a negative scale
        precision = int(digits[0]) if digits else None
        scale = int(digits[1]) if len(digits) > 1 else 0
        return numeric_type(precision, scale, base_type)
    plain = re.sub(r"\s+", " ", _TYPMOD.sub("", text)).strip()
    if plain in _POSTGRES:
        return BigQueryType(_POSTGRES[plain])
    return unknown(base_type)


# --- MySQL / MariaDB ----------------------------------------------------------------------------

_MYSQL = {
    "tinyint": "INT64",
    "smallint": "INT64",
    "mediumint": "INT64",
    "int": "INT64",
    "integer": "INT64",
    "bigint": "INT64",
    "float": "FLOAT64",
    "double": "FLOAT64",
    "real": "FLOAT64",
    "char": "STRING",
    "varchar": "STRING",
    "tinytext": "STRING",
    "text": "STRING",
    "mediumtext": "STRING",
    "longtext": "STRING",
    "enum": "STRING",
    "set": "STRING",
    "date": "DATE",
    "datetime": "DATETIME",
    "timestamp": "TIMESTAMP",
    "time": "STRING",  # a duration from -838:59:59 to 838:59:59, not a time of day
    "year": "INT64",
    "json": "JSON",
    "uuid": "STRING",  # MariaDB 10.7+
    "inet4": "STRING",
    "inet6": "STRING",
    "binary": "BYTES",
    "varbinary": "BYTES",
    "tinyblob": "BYTES",
    "blob": "BYTES",
    "mediumblob": "BYTES",
    "longblob": "BYTES",
}
_MYSQL_TYPE = re.compile(r"^\s*([a-z]+)\s*(?:\(([^)]*)\))?\s*(.*)$")


def mysql_type(column_type: str) -> BigQueryType:
    """Map a MySQL/MariaDB COLUMN_TYPE ("bigint(20) unsigned", "tinyint(1)", "decimal(10,2)",
    "enum('a','b')"). MariaDB's JSON is a LONGTEXT with a json_valid check: the source passes "json"."""
    match = _MYSQL_TYPE.match(column_type.lower())
    if not match:
        return unknown(column_type)
    name, args, flags = match.groups()
    unsigned = "unsigned" in flags
    if name == "tinyint" and args == "1" and not unsigned:  # BOOLEAN
        return BigQueryType("BOOL")
    if name == "bigint" and unsigned:
        return BigQueryType("NUMERIC")  # 0 .. 18446744073709551615 does not fit INT64
    if name in ("decimal", "numeric", "dec", "fixed"):
        digits = [int(d) for d in re.findall(r"\d+", args or "")]
        precision = digits[0] if digits else 10  # MySQL's default DECIMAL is DECIMAL(10,0)
        return numeric_type(precision, digits[1] if len(digits) > 1 else 0, column_type)
    if name == "bit":
        width = int(args or 1)
        if width == 1:
            return BigQueryType("BOOL")
        return BigQueryType("INT64" if width < 64 else "NUMERIC")
    if name in _MYSQL:
        return BigQueryType(_MYSQL[name])
    return unknown(column_type)


# --- BigQuery -----------------------------------------------------------------------------------

_BIGQUERY_NAMES = {
    "INTEGER": "INT64",
    "INT64": "INT64",
    "FLOAT": "FLOAT64",
    "FLOAT64": "FLOAT64",
    "BOOLEAN": "BOOL",
    "BOOL": "BOOL",
    "NUMERIC": "NUMERIC",
    "BIGNUMERIC": "BIGNUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
    "DECIMAL": "NUMERIC",
    "STRING": "STRING",
    "BYTES": "BYTES",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "JSON": "JSON",
    "GEOGRAPHY": "GEOGRAPHY",
    "INTERVAL": "INTERVAL",
}


def bigquery_type(field_type: str, mode: str = "NULLABLE") -> BigQueryType:
    """A BigQuery source maps to itself; legacy names become their standard SQL names."""
    repeated = (mode or "").upper() == "REPEATED"
    name = field_type.upper()
    if name in ("RECORD", "STRUCT"):
        return BigQueryType("JSON", repeated, warning=f"{name} columns are loaded as JSON")
    if name in _BIGQUERY_NAMES:
        return BigQueryType(_BIGQUERY_NAMES[name], repeated)
    return BigQueryType("STRING", repeated, unknown(field_type).warning)
