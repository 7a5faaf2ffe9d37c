"""The job store on Firestore (native mode): one collection per kind, runs as a sub-collection."""

from collections.abc import Callable
from typing import Any, TypeVar

from google.api_core import exceptions as google_errors
from google.cloud import firestore

from ..errors import StoreError
from . import Document, Mutation

T = TypeVar("T")


class FirestoreStore:
    def __init__(self, project: str, client: firestore.Client | None = None):
        self.client = client or firestore.Client(project=project)

    def _collection(self, path: str) -> firestore.CollectionReference:
        return self.client.collection(*path.split("/"))

    def get(self, collection: str, doc_id: str) -> Document | None:
        snapshot = self._call(self._collection(collection).document(doc_id).get)
        return snapshot.to_dict() if snapshot.exists else None

    def put(self, collection: str, doc_id: str, doc: Document) -> None:
        self._call(self._collection(collection).document(doc_id).set, doc)

    def list(self, collection: str) -> list[Document]:
        docs = self._call(lambda: list(self._collection(collection).order_by("__name__").stream()))
        return [doc for d in docs if (doc := d.to_dict()) is not None]  # streamed documents exist

    def delete(self, collection: str, doc_id: str) -> bool:
        ref = self._collection(collection).document(doc_id)
        existed = self._call(ref.get).exists
        self._call(ref.delete)
        return existed

    def transact(self, collection: str, doc_id: str, mutate: Mutation) -> Document | None:
        ref = self._collection(collection).document(doc_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Document | None:
            snapshot = ref.get(transaction=transaction)
            current = snapshot.to_dict() if snapshot.exists else None
            updated = mutate(current)
            if updated is not None and updated != current:
                transaction.set(ref, updated)
            return updated

        updated: Document | None = self._call(run, self.client.transaction(max_attempts=25))
        return updated

    @staticmethod
    def _call(fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except google_errors.GoogleAPICallError as e:
            raise StoreError(f"Firestore error: {e.message}") from None
        except ValueError as e:  # a transaction that kept losing to concurrent writers
            raise StoreError(f"Firestore transaction gave up: {e}") from None
