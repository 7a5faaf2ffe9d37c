"""The job store: connections, jobs and their runs, as documents in named collections.

Two implementations pass one contract suite: Firestore in production, SQLite in the embedded stack.
A sub-collection is addressed by its path, e.g. "jobs/<job_id>/runs".
"""

from collections.abc import Callable
from typing import Any, Protocol

Document = dict[str, Any]
# What transact applies: the current document (None: there is none) -> the new one (None: no write)
Mutation = Callable[[Document | None], Document | None]


class DocumentStore(Protocol):
    def get(self, collection: str, doc_id: str) -> Document | None: ...
    def put(self, collection: str, doc_id: str, doc: Document) -> None: ...
    def list(self, collection: str) -> list[Document]: ...
    def delete(self, collection: str, doc_id: str) -> bool: ...

    def transact(self, collection: str, doc_id: str, mutate: Mutation) -> Document | None:
        """Atomically: doc = mutate(current doc or None); a None result writes nothing.
        Returns what mutate returned. Leases and watermarks move through this."""
