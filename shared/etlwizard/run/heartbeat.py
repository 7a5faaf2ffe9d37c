"""A working run's heartbeat: a thread of its own renews the job's lease every quarter of
Settings.lease_seconds, whatever the run is waiting on (a slow query, a long load job). A run whose
heartbeat stops (its process was killed) loses the lease within lease_seconds, and the next trigger
takes over. A run that finds its lease taken over stops before it can commit."""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import Interrupted
from ..stack import Stack
from . import lease

log = logging.getLogger(__name__)


STOPPING = "The run was interrupted: its process is shutting down. Nothing was committed."


def stopped(stack: Stack, error: Exception) -> Exception:
    """An error a stopping process caused (a cancelled query, a load job cut off) is an interruption."""
    return Interrupted(STOPPING) if stack.stopping.is_set() and not isinstance(error, Interrupted) else error


class Pulse:
    """What the reading loop asks between batches: may this run go on?"""

    def __init__(self, stack: Stack, run_id: str):
        self.stack, self.run_id = stack, run_id
        self.lost = threading.Event()

    def check(self) -> None:
        if self.stack.stopping.is_set():
            raise Interrupted(STOPPING)
        if self.lost.is_set():
            raise Interrupted(f"Run {self.run_id} lost its job's lease to another run. Nothing was committed.")


@contextmanager
def heartbeat(
    stack: Stack, job_id: str, run_id: str, on_stop: Callable[[], None], beat: Callable[[], None] | None = None
) -> Iterator[Pulse]:
    """Until the block ends, renew the lease (and call `beat`, e.g. to stamp a chunk); once the
    process starts stopping, call `on_stop` (to cancel a source query that may not return a batch
    for minutes)."""
    pulse, done = Pulse(stack, run_id), threading.Event()
    interval = stack.settings.lease_seconds / 4

    def beating() -> None:
        while not done.wait(interval):
            try:
                if not lease.renew(stack, job_id, run_id):
                    pulse.lost.set()
                    return
                if beat is not None:
                    beat()
            except Exception:  # a store hiccup: the next beat tries again, the lease has slack
                log.warning("job %s run %s: heartbeat failed", job_id, run_id, exc_info=True)

    threads = [
        threading.Thread(target=beating, name=f"etl-heartbeat-{run_id}", daemon=True),
        threading.Thread(target=_when_stopping, args=(stack, done, on_stop), name=f"etl-stop-{run_id}", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield pulse
    finally:
        done.set()
        for thread in threads:
            thread.join()


def _when_stopping(stack: Stack, done: threading.Event, on_stop: Callable[[], None]) -> None:
    while not done.is_set():
        if stack.stopping.wait(0.5):
            try:
                on_stop()
            except Exception:
                log.warning("could not cancel the source's read", exc_info=True)
            return
