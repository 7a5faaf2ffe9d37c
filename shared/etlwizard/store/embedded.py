"""The embedded job store: one SQLite file, documents as JSON, for the demo and local runs."""

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from ..secrets import private_dir, private_file
from . import Document, Mutation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (collection, id)
)
"""


class EmbeddedStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        private_dir(self.path.parent)
        # Made 0600 before SQLite opens it: its -wal and -shm files take the database file's mode.
        os.close(private_file(self.path))
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get(self, collection: str, doc_id: str) -> Document | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT data FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
            ).fetchone()
        return _document(row[0]) if row else None

    def put(self, collection: str, doc_id: str, doc: Document) -> None:
        with closing(self._connect()) as db:
            db.execute(
                "INSERT INTO documents (collection, id, data) VALUES (?, ?, ?) "
                "ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data",
                (collection, doc_id, json.dumps(doc)),
            )

    def list(self, collection: str) -> list[Document]:
        with closing(self._connect()) as db:
            rows = db.execute("SELECT data FROM documents WHERE collection = ? ORDER BY id", (collection,)).fetchall()
        return [_document(r[0]) for r in rows]

    def transact(self, collection: str, doc_id: str, mutate: Mutation) -> Document | None:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across threads and processes
            try:
                row = db.execute(
                    "SELECT data FROM documents WHERE collection = ? AND id = ?", (collection, doc_id)
                ).fetchone()
                current = _document(row[0]) if row else None
                updated = mutate(current)
                if updated is not None:
                    db.execute(
                        "INSERT INTO documents (collection, id, data) VALUES (?, ?, ?) "
                        "ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data",
                        (collection, doc_id, json.dumps(updated)),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return updated

    def delete(self, collection: str, doc_id: str) -> bool:
        with closing(self._connect()) as db:
            cursor = db.execute("DELETE FROM documents WHERE collection = ? AND id = ?", (collection, doc_id))
        return cursor.rowcount > 0


def _document(data: str) -> Document:
    document: Document = json.loads(data)  # stored by put or transact: always an object
    return document
