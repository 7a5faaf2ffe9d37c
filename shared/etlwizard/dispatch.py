"""Run messages on their way to run-job: Pub/Sub in production, a worker pool in the embedded stack.

Both take the same bytes ({"job_id": ..., optional chunk/run ids}); run-job reads the same bytes.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

from .errors import StoreError

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, data: bytes) -> str:
        """Send a run message; returns its message id."""
        ...


class PubSubPublisher:
    def __init__(self, project: str, topic: str, client: Any = None):
        if client is None:
            from google.cloud.pubsub_v1 import PublisherClient

            client = PublisherClient()
        self.client = client
        self.topic = client.topic_path(project, topic)

    def publish(self, data: bytes) -> str:
        from google.api_core import exceptions

        job_id = json.loads(data).get("job_id", "")
        try:
            return str(self.client.publish(self.topic, data, job_id=job_id).result(timeout=30))
        except exceptions.GoogleAPICallError as e:
            raise StoreError(f"Pub/Sub refused the run message: {e.message}") from None


class LocalDispatcher:
    """Hands each message to `handle(data)` on a small pool of worker threads."""

    def __init__(self, handle: Callable[[bytes], Any], workers: int = 4):
        self.handle = handle
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etl-run")
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def publish(self, data: bytes) -> str:
        future = self.pool.submit(self.handle, data)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return f"local-{id(future):x}"

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        self._report(future)

    @staticmethod
    def _report(future: Future[Any]) -> None:
        if future.exception() is not None:
            log.error("run failed: %s", future.exception())

    def drain(self, timeout: float = 300) -> bool:
        """Wait until no message is in flight, including those that in-flight runs publish; False
        when some still are after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = set(self._pending)
            left = deadline - time.monotonic()
            if not pending:
                return True
            if left <= 0:
                return False
            wait(pending, timeout=left)
