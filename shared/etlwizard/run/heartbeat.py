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


class Pulse:
    """What the reading loop asks between batches: may this run go on?"""

    def __init__(self, stack: Stack, run_id: str):
        self.stack, self.run_id = stack, run_id
        self.lost = threading.Event()

    def check(self) -> None:
        if self.stack.stopping.is_set():
            raise Interrupted("The run was interrupted: its process is shutting down. Nothing was committed.")
        if self.lost.is_set():
            raise Interrupted(f"Run {self.run_id} lost its job's lease to another run. Nothing was committed.")


@contextmanager
def heartbeat(stack: Stack, job_id: str, run_id: str, beat: Callable[[], None] | None = None) -> Iterator[Pulse]:
    """Renew the lease (and call `beat`, e.g. to stamp a chunk) until the block ends."""
    pulse, done = Pulse(stack, run_id), threading.Event()
    interval = stack.settings.lease_seconds / 4

    def loop() -> None:
        while not done.wait(interval):
            try:
                if not lease.renew(stack, job_id, run_id):
                    pulse.lost.set()
                    return
                if beat is not None:
                    beat()
            except Exception:  # a store hiccup: the next beat tries again, the lease has slack
                log.warning("job %s run %s: heartbeat failed", job_id, run_id, exc_info=True)

    thread = threading.Thread(target=loop, name=f"etl-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield pulse
    finally:
        done.set()
        thread.join()
