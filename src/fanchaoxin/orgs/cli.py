"""`fcx org quota`, `fcx org clear-alarm` and `fcx org set-kind`: an organisation's matching quotas, its
security alerts, and a department's kind.

Running servers pick a quota change up within one decision-log flush (orgs.budget).
"""

from __future__ import annotations

from typing import Annotated

import typer

from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs import service
from fanchaoxin.orgs.department_kinds import department_kinds
from fanchaoxin.orgs.models import Organisation

_ORG = typer.Argument(help="Organisation id, USCC or exact name.")

DEPARTMENT_KIND_HELP = (
    "A department's kind, required for a department: what it acts on (department_kinds.yaml, e.g. "
    "market_regulation, pboc, public_security, posts, cyberspace)."
)


def department_kind_text(org: Organisation) -> str:
    """A department's kind as a list shows it; says so when it has none (it then receives nothing)."""
    if org.kind != OrgKind.department.value:
        return ""
    kind = department_kinds().get(org.department_kind or "")
    if kind is None:
        return "no kind: receives nothing (fcx org set-kind)"
    return f"{kind.code} {kind.zh}"


def quota(
    org: Annotated[str, _ORG],
    plain_per_minute: Annotated[
        int | None, typer.Option(min=0, help="Plain identifiers matched per minute.")
    ] = None,
    plain_per_day: Annotated[
        int | None, typer.Option(min=0, help="Plain identifiers matched per China day.")
    ] = None,
    evaluations_per_minute: Annotated[
        int | None, typer.Option(min=0, help="Blinded evaluations per minute.")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Back to the platform's defaults (before the options given).")
    ] = False,
) -> None:
    """Show or set an organisation's quotas of identifier matching (options not given stay as they are)."""
    db = database()
    try:
        with db.session() as session:
            organisation = service.find_organisation(session, org)
            values: dict[str, int | None] = dict.fromkeys(budgets.QUOTA_FIELDS) if reset else {}
            given = {
                "quota_plain_per_minute": plain_per_minute,
                "quota_plain_per_day": plain_per_day,
                "quota_evaluations_per_minute": evaluations_per_minute,
            }
            values.update({k: v for k, v in given.items() if v is not None})
            if values:
                budgets.set_quotas(session, cli_actor(), organisation, values)
            limits = budgets.limits_of(organisation, get_settings())
            console.print(
                f"{organisation.name}: {limits.plain_per_minute} plain identifiers a minute, "
                f"{limits.plain_per_day} a day, {limits.evaluations_per_minute} blinded evaluations a minute"
            )
    except Problem as exc:
        fail(problem_message(exc))


def clear_alarm(
    org: Annotated[str, _ORG],
    reason: Annotated[str, typer.Option(help="What the review found (audited).")],
) -> None:
    """Clear the organisation's open security alerts after review: it may match identifiers again."""
    if not reason.strip():
        fail("--reason: say what the review found")
    db = database()
    try:
        with db.session() as session:
            organisation = service.find_organisation(session, org)
            alerts = [a for a in budgets.list_alerts(session, limit=1000) if a.org_id == organisation.id]
            if not alerts:
                fail(f"{organisation.name} has no open security alert")
            now = utcnow()
            for a in alerts:
                budgets.clear_alert(session, cli_actor(), a, reason.strip(), now)
            console.print(
                f"Cleared {len(alerts)} alert(s) of {organisation.name}; running servers let it match "
                "again within a second"
            )
    except Problem as exc:
        fail(problem_message(exc))


def set_kind(
    org: Annotated[str, _ORG],
    kind: Annotated[str, typer.Argument(help=DEPARTMENT_KIND_HELP)],
) -> None:
    """Give a department its kind (audited); it is then instructed by its kind's competence."""
    db = database()
    try:
        with db.session() as session:
            organisation = service.find_organisation(session, org)
            service.set_department_kind(session, cli_actor(), organisation, kind)
            console.print(f"{organisation.name}: {department_kind_text(organisation)}")
    except Problem as exc:
        fail(problem_message(exc))
