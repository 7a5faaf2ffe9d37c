"""One contract, two job stores: the embedded SQLite store and Firestore (on Google's emulator)."""

import threading
import uuid

import pytest

from etlwizard.store.embedded import EmbeddedStore


@pytest.fixture(params=["embedded", "firestore"])
def store(request, tmp_path):
    if request.param == "embedded":
        return EmbeddedStore(tmp_path / "store.sqlite3")
    request.getfixturevalue("firestore_emulator")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from etlwizard.store.firestore import FirestoreStore

    project = f"contract-{uuid.uuid4().hex[:8]}"  # a fresh project: an empty database per test
    return FirestoreStore(project, firestore.Client(project=project, credentials=AnonymousCredentials()))


def test_put_get_list_delete(store):
    assert store.get("jobs", "a") is None
    store.put("jobs", "b", {"name": "second", "n": 2, "nested": {"x": [1, 2]}})
    store.put("jobs", "a", {"name": "first", "n": 1})
    assert store.get("jobs", "b") == {"name": "second", "n": 2, "nested": {"x": [1, 2]}}
    assert store.list("jobs") == [{"name": "first", "n": 1}, {"name": "second", "n": 2, "nested": {"x": [1, 2]}}]
    store.put("jobs", "a", {"name": "first", "n": 10})
    assert store.get("jobs", "a") == {"name": "first", "n": 10}
    assert store.delete("jobs", "a") is True
    assert store.delete("jobs", "a") is False
    assert [d["name"] for d in store.list("jobs")] == ["second"]
    assert store.list("connections") == []


def test_sub_collections_are_separate(store):
    store.put("jobs", "j1", {"name": "job"})
    store.put("jobs/j1/runs", "r1", {"status": "succeeded"})
    store.put("jobs/j2/runs", "r1", {"status": "failed"})
    assert store.list("jobs/j1/runs") == [{"status": "succeeded"}]
    assert store.get("jobs/j2/runs", "r1") == {"status": "failed"}
    assert store.list("jobs") == [{"name": "job"}]


def test_transact_reads_and_writes_atomically(store):
    assert store.transact("jobs", "j", lambda doc: None) is None
    assert store.get("jobs", "j") is None
    store.transact("jobs", "j", lambda doc: {"n": 0})

    def add_one(_):
        for _ in range(5):
            store.transact("jobs", "j", lambda doc: {"n": doc["n"] + 1})

    threads = [threading.Thread(target=add_one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.get("jobs", "j") == {"n": 15}  # no update lost under contention


def test_transact_leaves_the_document_when_mutate_returns_none(store):
    store.put("jobs", "j", {"lease": "held"})
    assert store.transact("jobs", "j", lambda doc: None if doc["lease"] else {"lease": "mine"}) is None
    assert store.get("jobs", "j") == {"lease": "held"}
