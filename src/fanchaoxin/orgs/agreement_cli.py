"""`fcx agreement …`: agreement versions, applications, signatures, suspension and withdrawal.

The rules are in `orgs.agreements`; a suspension made here reaches running API processes within the
revocation check interval (FCX_AUTH_REVOCATION_CHECK_SECONDS)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.orgs import agreements, service

agreement_app = typer.Typer(help="The information-sharing agreement (信息共享协议).", no_args_is_help=True)

_ORG = typer.Argument(help="The enterprise: id, USCC or exact name.")

_WORDS = {
    agreements.IN_FORCE: "in force",
    agreements.NONE: "no agreement",
    agreements.APPLIED: "applied, not signed",
    agreements.SUSPENDED: "suspended",
    agreements.WITHDRAWN: "withdrawn",
    agreements.LAPSED: "lapsed",
    agreements.NOT_APPLICABLE: "does not sign",
}


def agreement_text(s: agreements.Standing) -> str:
    """A standing in plain words, with its reason or re-signing day (lists, `status`)."""
    words = _WORDS.get(s.code, s.code)
    if s.code in (agreements.SUSPENDED, agreements.WITHDRAWN) and s.params.get("reason"):
        words += f" since {s.params.get('since')}: {s.params['reason']}"
    elif s.code == agreements.LAPSED:
        words += f": version {s.params['version']} was to be signed by {s.params['resign_by']}"
    elif s.in_force and s.params.get("resign_by"):
        words += f" (sign version {s.params['version']} by {s.params['resign_by']})"
    if s.in_force and s.version:
        words += f", version {s.version} signed {s.signed_on}"
    elif s.in_force and s.signed_on:
        words += f", signed {s.signed_on} (before versions)"
    return words


def _date(option: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date YYYY-MM-DD")


@agreement_app.command("publish")
def publish(
    version: Annotated[str, typer.Option(help="The version, e.g. 2026.1.")],
    title: Annotated[str, typer.Option(help="The agreement's title.")],
    text: Annotated[Path, typer.Option(help="A UTF-8 file with the agreement's Chinese text.")],
    summary_en: Annotated[str, typer.Option(help="An English summary.")],
    published_on: Annotated[str, typer.Option(help="The day it becomes current (YYYY-MM-DD).")],
    resign_by: Annotated[
        str | None, typer.Option(help="The day by which those under an earlier version must re-sign.")
    ] = None,
) -> None:
    """Publish a new version of the agreement."""
    published = _date("--published-on", published_on)
    assert published is not None
    try:
        text_zh = text.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"--text: cannot read {text}: {exc}")
    db = database()
    try:
        with db.session() as session:
            v = agreements.publish_version(
                session, cli_actor(), version=version, title=title, text_zh=text_zh, summary_en=summary_en,
                published_on=published, resign_by=_date("--resign-by", resign_by),
            )  # fmt: skip
            console.print(f"Published agreement version [bold]{escape(v.version)}[/] from {v.published_on}")
            if v.resign_by:
                due = agreements.participants_to_resign(session, v.published_on)
                console.print(f"{len(due)} enterprise(s) must sign it by {v.resign_by}")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("list")
def list_versions() -> None:
    """The agreement's versions, newest first, and every enterprise's standing."""
    db = database()
    with db.session() as session:
        current = agreements.current_version(session)
        table = Table("version", "title", "published", "re-sign by", "current")
        for v in agreements.versions(session):
            is_current = "yes" if current and v.id == current.id else ""
            table.add_row(v.version, v.title, v.published_on.isoformat(),
                          v.resign_by.isoformat() if v.resign_by else "", is_current)  # fmt: skip
        console.print(table)
        orgs = agreements.enterprises(session)
        found = agreements.standings(session, orgs)
        table = Table("enterprise", "standing")
        for o in orgs:
            table.add_row(o.name, agreement_text(found[o.id]))
        console.print(table)


@agreement_app.command("status")
def status(org: Annotated[str, _ORG]) -> None:
    """An enterprise's standing and its signatures."""
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            console.print(f"{escape(o.name)}: {escape(agreement_text(agreements.standing(session, o)))}")
            for sig, v in agreements.signatures(session, o):
                console.print(
                    f"  version {escape(v.version)} signed {sig.signed_on} by {escape(sig.signatory)} "
                    f"({escape(sig.signatory_title or '')}); PDF {escape(sig.pdf_filename)}, "
                    f"{sig.pdf_size} bytes, SHA-256 {sig.pdf_sha256}"
                )
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("apply")
def apply(org: Annotated[str, _ORG]) -> None:
    """Record an enterprise's application to take part."""
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            agreements.apply(session, cli_actor(), o)
            console.print(f"{escape(o.name)} has applied to take part")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("sign")
def sign(
    org: Annotated[str, _ORG],
    version: Annotated[str, typer.Option(help="The current version (fcx agreement list).")],
    signatory: Annotated[str, typer.Option(help="Who signed for the enterprise.")],
    pdf: Annotated[Path, typer.Option(help="The signed agreement, a PDF file.")],
    signed_on: Annotated[str, typer.Option(help="The day it was signed (YYYY-MM-DD).")],
    signatory_title: Annotated[str | None, typer.Option(help="The signatory's title.")] = None,
) -> None:
    """Record an enterprise's signature of the current version, with the signed PDF."""
    day = _date("--signed-on", signed_on)
    assert day is not None
    try:
        data = pdf.read_bytes()
    except OSError as exc:
        fail(f"--pdf: cannot read {pdf}: {exc}")
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            sig = agreements.sign(
                session, cli_actor(), o, version=version, signatory=signatory,
                signatory_title=signatory_title, signed_on=day, pdf=data, filename=pdf.name,
            )  # fmt: skip
            console.print(f"{escape(o.name)} signed version {escape(version)}; PDF SHA-256 {sig.pdf_sha256}")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("suspend")
def suspend(
    org: Annotated[str, _ORG],
    reason: Annotated[str, typer.Option(help="Why (e.g. a data breach, an abuse of queries).")],
) -> None:
    """Suspend an enterprise: its keys are refused the shared list, evaluation and instructions."""
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            agreements.suspend(session, cli_actor(), o, reason)
            console.print(f"{escape(o.name)} is suspended: {escape(reason)}")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("reinstate")
def reinstate(
    org: Annotated[str, _ORG], reason: Annotated[str, typer.Option(help="Why it is lifted.")] = ""
) -> None:
    """Lift an enterprise's suspension."""
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            agreements.reinstate(session, cli_actor(), o, reason)
            console.print(f"{escape(o.name)}: {escape(agreement_text(agreements.standing(session, o)))}")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("withdraw")
def withdraw(
    org: Annotated[str, _ORG], reason: Annotated[str, typer.Option(help="Why the enterprise withdraws.")]
) -> None:
    """Record an enterprise's withdrawal from the joint action."""
    db = database()
    try:
        with db.session() as session:
            o = service.find_organisation(session, org)
            agreements.withdraw(session, cli_actor(), o, reason)
            console.print(f"{escape(o.name)} has withdrawn")
    except Problem as exc:
        fail(problem_message(exc))


@agreement_app.command("reminders")
def reminders() -> None:
    """The enterprises that must re-sign the current version, and by when (with their contact e-mail)."""
    db = database()
    with db.session() as session:
        due = agreements.participants_to_resign(session)
        if not due:
            console.print("Nobody needs to re-sign.")
        for o, s in due:
            console.print(
                f"{escape(o.name)} <{escape(o.contact_email or 'no contact e-mail')}>: "
                f"sign version {s.params['version']} by {s.params['resign_by']}"
            )
