"""Reading request bodies: each function returns the field's value or raises InvalidInput naming it.

Types are strict (a string is a string, a boolean a boolean), and every text field refuses control
characters: NUL and its kin end up in identifiers, SQL drivers and log lines, and no name needs them.
"""

import re
import unicodedata
from typing import Any

from .errors import InvalidInput

Body = dict[str, Any]

# Connections, jobs and runs are named by uuid4().hex[:12] (new_id); nothing else is an id.
_ID = re.compile(r"[0-9a-f]{12}")
MAX_NAMES = 10_000  # BigQuery's limit of columns in a table


def require_object(body: object, field: str = "body") -> Body:
    if not isinstance(body, dict):
        raise InvalidInput(field, "must be a JSON object")
    return body


def require_text(body: Body, name: str, *, max_length: int = 1024, field: str | None = None) -> str:
    """`field` names it in an error when it sits inside an object (schedule.cron)."""
    value = body.get(name)
    if value is None or value == "":
        raise InvalidInput(field or name, "is required")
    return check_text(value, field or name, max_length)


def optional_text(body: Body, name: str, *, max_length: int = 1024, field: str | None = None) -> str | None:
    value = body.get(name)
    return None if value is None or value == "" else check_text(value, field or name, max_length)


def check_text(value: object, field: str, max_length: int = 1024) -> str:
    """A string of at most max_length characters without control characters (Unicode's Cc)."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters of text")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise InvalidInput(field, "must not contain control characters (NUL, tab, line breaks, ...)")
    return value


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def require_id(body: Body, name: str) -> str:
    """A connection or job id from a body field: 12 lowercase hex characters."""
    value = body.get(name)
    if not is_id(value):
        raise InvalidInput(name, "must be an id: 12 lowercase hex characters")
    return str(value)


def optional_id(body: Body, name: str) -> str | None:
    return None if body.get(name) in (None, "") else require_id(body, name)


def require_names(body: Body, name: str, *, optional: bool = False) -> list[str]:
    value = body.get(name)
    if value in (None, []) and optional:
        return []
    if not isinstance(value, list) or not value or len(value) > MAX_NAMES:
        raise InvalidInput(name, f"must be a non-empty list of column names (at most {MAX_NAMES})")
    for item in value:
        if item == "":
            raise InvalidInput(name, "must not hold an empty column name")
        check_text(item, name)
    if len({v.lower() for v in value}) != len(value):
        raise InvalidInput(name, "names a column twice")
    return list(value)


def require_choice(
    body: Body, name: str, choices: tuple[str, ...], *, default: str | None = None, field: str | None = None
) -> str:
    """One of `choices`; `field` names it in an error when it sits inside an object (destination.mode)."""
    value = body.get(name, default)
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(field or name, f"must be {', '.join(choices[:-1])} or {choices[-1]}")
    return value


def optional_bool(body: Body, name: str, *, field: str | None = None) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(field or name, "must be true or false")
    return value
