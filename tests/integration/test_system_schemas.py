"""Previews and jobs read user tables only: the databases' own schemas (password hashes among them)
answer 404 like a missing table, even to a user allowed to read them, and the tables list hides them."""

import pytest

PG_SYSTEM = [
    ("pg_catalog", "pg_authid"),
    ("pg_catalog", "pg_class"),
    ("information_schema", "tables"),
    ("pg_toast", "pg_toast_1262"),  # pg_database's TOAST table
]
MYSQL_SYSTEM = [
    ("mysql", "user"),
    ("MYSQL", "user"),  # case-insensitively, whatever the server's lower_case_table_names
    ("mysql", "global_priv"),
    ("information_schema", "TABLES"),
    ("INFORMATION_SCHEMA", "tables"),
    ("performance_schema", "threads"),
    ("sys", "version"),
]


def preview(client, connection_id, schema, table):
    return client.post(
        f"/api/connections/{connection_id}/fetch-table-preview/", json={"schema_name": schema, "table_name": table}
    )


@pytest.mark.parametrize(("schema", "table"), PG_SYSTEM)
def test_postgres_system_tables_preview_as_missing(client, pg, schema, table):
    response = preview(client, pg, schema, table)
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["message"] == f"table {schema}.{table} does not exist in connection 'pg'"


@pytest.mark.parametrize(("schema", "table"), MYSQL_SYSTEM)
def test_mysql_system_tables_preview_as_missing(client, maria, schema, table):
    response = preview(client, maria, schema, table)
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["message"] == f"table {schema}.{table} does not exist in connection 'maria'"


def test_the_superuser_could_read_them_and_user_tables_still_preview(client, pg, maria, mysql_db, postgres_db):
    """The test servers' users may read pg_authid and mysql.user: only the refusal keeps them out."""
    import pg8000.native
    import pymysql

    db = pg8000.native.Connection(**postgres_db)
    assert db.run("SELECT count(*) FROM pg_catalog.pg_authid")[0][0] > 0
    db.close()
    my = pymysql.connect(password="", **mysql_db)
    with my.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM mysql.user")
        assert cursor.fetchone()[0] > 0
    my.close()
    assert preview(client, pg, "public", "all_types").status_code == 200
    assert preview(client, maria, mysql_db["database"], "all_types").status_code == 200


@pytest.mark.parametrize("kind", ["pg", "maria"])
def test_the_tables_list_hides_system_schemas(client, request, kind):
    connection_id = request.getfixturevalue(kind)
    tables = client.get(f"/api/connections/{connection_id}/tables/").get_json()["tables"]
    schemas = {t["schema_name"].lower() for t in tables}
    assert tables and not schemas & {"pg_catalog", "information_schema", "mysql", "performance_schema", "sys"}
    assert not any(s.startswith("pg_toast") for s in schemas)


@pytest.mark.parametrize(
    ("kind", "schema", "table", "column"),
    [("pg", "pg_catalog", "pg_authid", "rolname"), ("maria", "mysql", "user", "User")],
)
def test_a_job_on_a_system_table_is_refused(client, request, dataset, kind, schema, table, column):
    body = {
        "name": "Password hashes",
        "connection_id": request.getfixturevalue(kind),
        "schema_name": schema,
        "table_name": table,
        "selected_columns": [column],
        "load_type": "catalog",
        "destination": {"mode": "new", "dataset": dataset, "table": "stolen"},
        "schedule": {"type": "manual"},
    }
    response = client.post("/api/etl/jobs/", json=body)
    assert response.status_code == 404, response.get_json()
    assert "does not exist" in response.get_json()["message"]
    assert client.get("/api/etl/jobs/").get_json()["jobs"] == []
