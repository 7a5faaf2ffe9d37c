"""The job store: connections, jobs and their runs, as documents in named collections.

Two implementations pass one contract suite: Firestore in production, SQLite in the embedded stack.
A sub-collection is addressed by its path, e.g. "jobs/<job_id>/runs".
"""

from typing import Protocol


class DocumentStore(Protocol):
    def get(self, collection: str, doc_id: str) -> dict | None: ...
    def put(self, collection: str, doc_id: str, doc: dict) -> None: ...
    def list(self, collection: str) -> list[dict]: ...
    def delete(self, collection: str, doc_id: str) -> bool: ...

    def transact(self, collection: str, doc_id: str, mutate) -> dict | None:
        """Atomically: doc = mutate(current doc or None); a None result writes nothing.
        Returns what mutate returned. Leases and watermarks move through this."""
