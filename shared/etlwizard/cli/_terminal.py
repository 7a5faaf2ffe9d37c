"""What the CLI prints and asks: lines and tables for people, the API's JSON for programs."""

import json
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")(command)


def print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def print_table(header: list[str], rows: list[list[object]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    cells = [header, *([text(v) for v in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for line in cells:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def ask_password(name: str) -> str:
    password: str = click.prompt(
        f"Password for connection {name} (empty for none)", hide_input=True, default="", show_default=False, err=True
    )
    return password


def ask_passphrase(name: str) -> str:
    passphrase: str = click.prompt(f"Passphrase of the SSH key for connection {name}", hide_input=True, err=True)
    return passphrase


MARKS = {"ok": "✓", "failed": "✗", "skipped": "\u2013", "confirm": "?", "warning": "!"}


def print_steps(steps: list[dict[str, object]]) -> None:
    """A connection test's checklist: a line a step (mark, title, detail); under a step, what to fix."""
    if not steps:
        return
    width = max(len(text(step.get("title") or step.get("step"))) for step in steps)
    under = " " * (width + 4)
    for step in steps:
        title = text(step.get("title") or step.get("step"))
        mark = MARKS.get(text(step.get("status")), "·")
        click.echo(f"{mark} {title.ljust(width)}  {text(step.get('detail'))}".rstrip())
        if step.get("fix"):
            click.echo(f"{under}Fix: {text(step['fix'])}")
