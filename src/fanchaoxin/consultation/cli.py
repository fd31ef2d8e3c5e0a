"""`fcx consultation …`: meetings, agenda items, decisions and action items (定期会商).

The operator at the CLI acts as the platform's administrator; the rules are `consultation.service`'s.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from fanchaoxin.consultation import service
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.service import find_organisation
from fanchaoxin.sanctions.policy import PolicyError

consultation_app = typer.Typer(help="Regular consultation (定期会商).", no_args_is_help=True)

# The CLI's operator: the platform's administrator (sees everything, closes any action item).
OPERATOR = Principal(role=Role.platform_admin)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"not a {what} id: {value!r}")


@consultation_app.command("schedule")
def schedule(
    title: Annotated[str, typer.Argument(help="The meeting's title.")],
    starts_at: Annotated[
        datetime, typer.Option("--at", help="When it starts (Beijing time), e.g. 2026-12-20T09:30.")
    ],
    period: Annotated[
        str | None, typer.Option(help="A regular meeting's quarter, e.g. 2026Q4; left out: ad hoc.")
    ] = None,
    place: Annotated[str, typer.Option(help="Where it is held.")] = "",
    invite: Annotated[
        list[str] | None,
        typer.Option(
            help="An organisation to invite (id, USCC or name; repeat); left out: all participants."
        ),
    ] = None,
) -> None:
    """Schedule a meeting (regular with --period, otherwise ad hoc) and e-mail the invitees."""
    try:
        with database().session() as session:
            invitees = [find_organisation(session, ref).id for ref in invite] if invite else None
            meeting = service.schedule_meeting(
                session,
                cli_actor(),
                kind="regular" if period else "ad_hoc",
                title=title,
                starts_at=starts_at,
                place=place,
                period=period,
                invitees=invitees,
            )
            counts = service.invitation_counts(session, meeting)
            console.print(
                f"{meeting.id}  {meeting.title}: {counts['invited']} invited, "
                f"{counts['without_address']} without a contact e-mail (not mailed)"
            )
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("list")
def list_meetings() -> None:
    """Meetings, newest first, with their agenda items and open action items."""
    with database().session() as session:
        for m in service.list_meetings(session, OPERATOR):
            when = m.starts_at.strftime("%Y-%m-%d %H:%M")
            console.print(f"{m.id}  {when}  {m.kind} {m.period or ''}  {m.status}  {m.title}")
            for item in service.list_agenda_items(session, OPERATOR, meeting_id=m.id):
                console.print(f"    agenda {item.id}  {item.kind}  {item.status}  {item.title}")
        waiting = service.list_agenda_items(session, OPERATOR, unscheduled=True)
        if waiting:
            console.print("Agenda items not yet on a meeting:")
            for item in waiting:
                console.print(f"    agenda {item.id}  {item.kind}  {item.title}")


@consultation_app.command("raise")
def raise_item(
    org: Annotated[str, typer.Argument(help="The raising organisation (id, USCC or name).")],
    kind: Annotated[
        str, typer.Argument(help="disputed_measure | data_quality | new_pattern | policy_change | other")
    ],
    title: Annotated[str, typer.Argument()],
    body: Annotated[str, typer.Option(help="The matter in full.")] = "",
    measure: Annotated[str | None, typer.Option(help="A disputed measure's code or number (1-13).")] = None,
    meeting: Annotated[str | None, typer.Option(help="Put it on this scheduled meeting's agenda.")] = None,
) -> None:
    """Raise an agenda item on behalf of an organisation."""
    try:
        with database().session() as session:
            raiser = find_organisation(session, org)
            item = service.raise_agenda_item(
                session,
                cli_actor(),
                raiser.id,
                kind=kind,
                title=title,
                body=body,
                measure=measure,
                meeting_id=_uuid(meeting, "meeting") if meeting else None,
                is_platform=True,
            )
            console.print(f"{item.id}  {item.kind}  {item.title}")
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("hold")
def hold(
    meeting: Annotated[str, typer.Argument(help="The meeting's id.")],
    minutes: Annotated[Path | None, typer.Option(help="A text file of the minutes.")] = None,
) -> None:
    """Mark a meeting held, with its minutes."""
    try:
        with database().session() as session:
            m = service.get_meeting(session, _uuid(meeting, "meeting"))
            text = minutes.read_text(encoding="utf-8") if minutes else None
            service.hold_meeting(session, cli_actor(), m, minutes=text)
            console.print(f"{m.id}  held")
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("decide")
def decide(
    meeting: Annotated[str, typer.Argument(help="The (held) meeting's id.")],
    text: Annotated[str, typer.Argument(help="The decision.")],
    item: Annotated[str | None, typer.Option(help="The agenda item it settles.")] = None,
) -> None:
    """Record a decision of a held meeting."""
    try:
        with database().session() as session:
            m = service.get_meeting(session, _uuid(meeting, "meeting"))
            d = service.record_decision(
                session,
                cli_actor(),
                m,
                text=text,
                agenda_item_id=_uuid(item, "agenda item") if item else None,
            )
            console.print(f"{d.id}  decision recorded")
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("action")
def action(
    meeting: Annotated[str, typer.Argument(help="The (held) meeting's id.")],
    owner: Annotated[str, typer.Argument(help="The owner organisation (id, USCC or name).")],
    title: Annotated[str, typer.Argument(help="What is to be done.")],
    working_days: Annotated[
        int | None, typer.Option("--days", help="Due in this many PRC working days.")
    ] = None,
    due: Annotated[
        datetime | None, typer.Option(help="Or due on this date (YYYY-MM-DD).", formats=["%Y-%m-%d"])
    ] = None,
    decision: Annotated[str | None, typer.Option(help="The decision it carries out.")] = None,
) -> None:
    """Add an action item with its owner and due day; the owner is e-mailed."""
    try:
        with database().session() as session:
            m = service.get_meeting(session, _uuid(meeting, "meeting"))
            org = find_organisation(session, owner)
            a = service.add_action_item(
                session,
                cli_actor(),
                m,
                owner_org_id=org.id,
                title=title,
                decision_id=_uuid(decision, "decision") if decision else None,
                due_on=due.date() if due else None,
                working_days=working_days,
            )
            console.print(f"{a.id}  due {a.due_on.isoformat()}  {org.name}")
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("close")
def close(
    item: Annotated[str, typer.Argument(help="The action item's id.")],
    note: Annotated[str, typer.Option(help="What was done.")],
) -> None:
    """Close an action item with a note."""
    try:
        with database().session() as session:
            a = service.get_action_item(session, _uuid(item, "action item"))
            service.close_action_item(session, OPERATOR, a, note, actor=cli_actor())
            console.print(f"{a.id}  closed")
    except Problem as exc:
        fail(problem_message(exc))


@consultation_app.command("overdue")
def overdue(
    today: Annotated[
        datetime | None,
        typer.Option(help="The day to judge by (default: today in Beijing).", formats=["%Y-%m-%d"]),
    ] = None,
    remind: Annotated[bool, typer.Option("--remind", help="E-mail the owners (once a day).")] = False,
) -> None:
    """Open action items past their due day, by owner."""
    day: date = today.date() if today else china_today()
    with database().session() as session:
        items = service.overdue_action_items(session, day)
        for a in items:
            org = session.get(Organisation, a.owner_org_id)
            console.print(
                f"{a.id}  due {a.due_on.isoformat()}  {org.name if org else a.owner_org_id}  {a.title}"
            )
        console.print(f"{len(items)} overdue on {day.isoformat()}")
        if remind:
            console.print(f"{service.remind_overdue(session, day)} reminder(s) e-mailed")


@consultation_app.command("policy")
def policy(
    decision: Annotated[str, typer.Argument(help="The consultation decision the new version carries out.")],
    file: Annotated[Path, typer.Argument(help="The policy YAML file.")],
) -> None:
    """Load a new policy version that cites a consultation decision."""
    try:
        with database().session() as session:
            row = service.load_policy_citing(
                session, cli_actor(), file.read_text(encoding="utf-8"), file.name, _uuid(decision, "decision")
            )
            console.print(f"policy {row.version} loaded, citing decision {decision}")
    except PolicyError as exc:
        fail(str(exc))
    except Problem as exc:
        fail(problem_message(exc))
