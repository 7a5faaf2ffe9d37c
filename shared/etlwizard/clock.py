"""Now: one clock the whole library asks, so tests can say what time it is."""

from collections.abc import Callable
from datetime import datetime, timezone

Clock = Callable[[], datetime]  # "now", aware


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
