"""Reading request bodies: each function returns the field's value or raises InvalidInput naming it."""

from typing import Any

from .errors import InvalidInput

Body = dict[str, Any]


def require_object(body: object, field: str = "body") -> Body:
    if not isinstance(body, dict):
        raise InvalidInput(field, "must be a JSON object")
    return body


def require_text(body: Body, name: str, *, max_length: int = 1024) -> str:
    value = body.get(name)
    if value is None or value == "":
        raise InvalidInput(name, "is required")
    return _text(value, name, max_length)


def optional_text(body: Body, name: str, *, max_length: int = 1024) -> str | None:
    value = body.get(name)
    return None if value is None or value == "" else _text(value, name, max_length)


def _text(value: object, name: str, max_length: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(name, "must be a string")
    if len(value) > max_length or "\x00" in value:
        raise InvalidInput(name, f"must be at most {max_length} characters of text")
    return value


def require_names(body: Body, name: str, *, optional: bool = False) -> list[str]:
    value = body.get(name)
    if value in (None, []) and optional:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise InvalidInput(name, "must be a non-empty list of column names")
    if len({v.lower() for v in value}) != len(value):
        raise InvalidInput(name, "names a column twice")
    return list(value)


def require_choice(
    body: Body, name: str, choices: tuple[str, ...], *, default: str | None = None, field: str | None = None
) -> str:
    """One of `choices`; `field` names it in an error when it sits inside an object (destination.mode)."""
    value = body.get(name, default)
    if value not in choices:
        raise InvalidInput(field or name, f"must be {', '.join(choices[:-1])} or {choices[-1]}")
    return str(value)


def optional_bool(body: Body, name: str, *, field: str | None = None) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(field or name, "must be true or false")
    return value
