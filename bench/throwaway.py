"""Throwaway databases on the local servers for the benchmarks: created, handed out, dropped."""

import uuid
from contextlib import contextmanager

import pg8000.native
import pymysql

POSTGRES = {"user": "postgres", "host": "127.0.0.1"}
MARIADB = {"user": "root", "host": "127.0.0.1", "password": ""}


@contextmanager
def postgres_database():
    """(name, pg8000 connection to it); the connection should be closed before the block ends."""
    name = f"etl_bench_{uuid.uuid4().hex[:8]}"
    admin = pg8000.native.Connection(database="postgres", **POSTGRES)
    admin.run(f'CREATE DATABASE "{name}"')
    try:
        yield name, pg8000.native.Connection(database=name, **POSTGRES)
    finally:
        admin.run(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@contextmanager
def mariadb_database():
    """(name, pymysql connection using it)."""
    name = f"etl_bench_{uuid.uuid4().hex[:8]}"
    db = pymysql.connect(autocommit=True, **MARIADB)
    try:
        with db.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}`")
            cursor.execute(f"USE `{name}`")
        yield name, db
    finally:
        with db.cursor() as cursor:
            cursor.execute(f"DROP DATABASE `{name}`")
        db.close()
