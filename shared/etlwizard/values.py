"""Database values -> JSON-safe values that keep every digit and every microsecond."""

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

# Integers beyond this lose digits in a JavaScript number: they are sent as strings.
_SAFE_INTEGER = 2**53


def to_json(value: object) -> Any:
    """A JSON-safe form of a value: what json.dumps takes without losing digits or microseconds."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INTEGER < value < _SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(Decimal(value))  # NaN, Infinity, -Infinity
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_json(v) for v in value]
    return str(value)


def format_duration(value: timedelta) -> str:
    """A MySQL TIME (which may pass 24 h or be negative) as [-]HH:MM:SS.ffffff."""
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, micro = divmod(abs(micros), 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours:02d}:{minute:02d}:{second:02d}.{micro:06d}"
