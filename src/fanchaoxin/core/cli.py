"""What every `fcx` sub-command shares: the database, who is acting, and how a failure is shown."""

from __future__ import annotations

import getpass
from typing import NoReturn

import typer
from rich.console import Console

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.settings import get_settings

console = Console()
err = Console(stderr=True)


def database() -> Database:
    """The platform's database, as the environment (FCX_DATABASE_URL) names it."""
    settings = get_settings()
    return Database(settings.database_url, echo=settings.database_echo)


def cli_actor() -> Actor:
    """The person at the terminal, as the audit log names them (`cli:<login>`)."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return Actor(f"cli:{user}")


def problem_message(exc: Problem) -> str:
    """A problem in one line: each offending field with its message, or the detail."""
    if exc.errors:
        return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors)
    return exc.detail


def fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)
