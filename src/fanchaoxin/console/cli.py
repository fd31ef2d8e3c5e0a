"""`fcx console …`: staff users of the web console."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

console_app = typer.Typer(help="The web console (/console): staff users.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@console_app.command("add-user")
def add_user(
    username: Annotated[str, typer.Argument(help="Sign-in name (letters, digits, . _ - @).")],
    org: Annotated[str, typer.Option("--org", help="Organisation: id, USCC or exact name.")],
    role: Annotated[str, typer.Option("--role", help="platform_admin, platform_reviewer, auditor, …")],
    display_name: Annotated[str, typer.Option("--display-name")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (else: prompt).")
    ] = False,
) -> None:
    """Add a console user who signs in with a password (stored as an scrypt hash only)."""
    from fanchaoxin.cli import _cli_actor, _database, _problem_message
    from fanchaoxin.console.auth import create_user
    from fanchaoxin.core.errors import Problem
    from fanchaoxin.orgs.models import Role
    from fanchaoxin.orgs.service import find_organisation

    try:
        role_ = Role(role)
    except ValueError:
        err.print(
            f"[bold red]error:[/] role: unknown role {role!r}; one of {', '.join(r.value for r in Role)}"
        )
        raise typer.Exit(1) from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("FCX_CONSOLE_PASSWORD"):
        password = os.environ["FCX_CONSOLE_PASSWORD"]
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            err.print("[bold red]error:[/] password: the two entries differ")
            raise typer.Exit(1)
    try:
        with _database().session() as s:
            organisation = find_organisation(s, org)
            user = create_user(
                s, _cli_actor(), username=username, password=password, org=organisation, role=role_,
                display_name=display_name,
            )  # fmt: skip
            out.print(f"console user {user.username} ({role_.value}, {organisation.name}) added")
    except Problem as exc:
        err.print(f"[bold red]error:[/] {_problem_message(exc)}")
        raise typer.Exit(1) from None
