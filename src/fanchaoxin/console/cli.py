"""`fcx console …`: staff users of the web console."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated

import typer

from fanchaoxin.console.auth import create_user
from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.service import find_organisation

console_app = typer.Typer(help="The web console (/console): staff users.", no_args_is_help=True)


def _password(from_stdin: bool) -> str:
    """From standard input, FCX_CONSOLE_PASSWORD, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if os.environ.get("FCX_CONSOLE_PASSWORD"):
        return os.environ["FCX_CONSOLE_PASSWORD"]
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        fail("password: the two entries differ")
    return password


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
    """Add a console user who signs in with a password (stored as a salted password hash only)."""
    try:
        role_ = Role(role)
    except ValueError:
        fail(f"role: unknown role {role!r}; one of {', '.join(r.value for r in Role)}")
    password = _password(password_stdin)
    try:
        with database().session() as s:
            organisation = find_organisation(s, org)
            user = create_user(
                s, cli_actor(), username=username, password=password, org=organisation, role=role_,
                display_name=display_name,
            )  # fmt: skip
            console.print(f"console user {user.username} ({role_.value}, {organisation.name}) added")
    except Problem as exc:
        fail(problem_message(exc))
