"""Console pages of each enterprise's rulebook (企业规则, #22): one enterprise's 13 measures, each allowed
or excluded by its rules with the clause (its operator and the platform administrator edit it), and the
platform's overview of which enterprises cannot apply which measures and why. The rules are
orgs.rulebook's."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import PLATFORM, console_router
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.core.roles import OrgKind, Role
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import Organisation

router = console_router()

READERS = PLATFORM | {Role.enterprise_operator}
EDITORS = frozenset({Role.enterprise_operator, Role.platform_admin})
# A choice of the form: no rule (allowed, as before), allowed by a clause, excluded by a clause.
CHOICES = ("", "allowed", "excluded")
_ROW = re.compile(r"^rules\[(\d+)\]\.(\w+)$")


def _enterprise(session: Session, org_id: uuid.UUID, principal: Principal) -> Organisation:
    if principal.role == Role.enterprise_operator and org_id != principal.org_id:
        raise NotFound(f"No organisation with id {org_id}")
    org = orgs.get_organisation(session, org_id, principal)
    if org.kind != OrgKind.enterprise.value:
        raise NotFound(f"No enterprise with id {org_id}")
    return org


def _rows(
    session: Session, org: Organisation, form: dict[str, dict[str, str]] | None
) -> list[dict[str, Any]]:
    rules = {r.measure: r for r in rulebook.rulebook_of(session, org)}
    out = []
    for m in rulebook.measures():
        r = rules.get(m.code)
        if form is not None:
            choice, clause = form[m.code]["choice"], form[m.code]["clause"]
        else:
            choice = "" if r is None else ("allowed" if r.applicable else "excluded")
            clause = r.clause if r is not None else ""
        out.append(
            {
                "code": m.code,
                "number": m.number,
                "zh": m.zh,
                "en": m.en,
                "choice": choice,
                "clause": clause,
                "updated_by": r.updated_by if r is not None else None,
            }
        )
    return out


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    org: Organisation,
    *,
    form: dict[str, dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    problem_title: str | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    may_edit = principal.role in EDITORS and (principal.is_platform or principal.org_id == org.id)
    return render(
        request,
        "rulebook.html",
        status_code=status_code,
        org=org,
        rows=_rows(session, org, form),
        may_edit=may_edit,
        errors=errors or {},
        problem_title=problem_title,
        done=done,
    )


@router.get("/orgs/{org_id}/rulebook")
def rulebook_page(
    request: Request, org_id: uuid.UUID, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    org = _enterprise(session, org_id, principal)
    saved = request.query_params.get("saved") == "1"
    return _page(request, session, principal, org, done="The rulebook was saved." if saved else None)


@router.post("/orgs/{org_id}/rulebook")
async def rulebook_save(
    request: Request, org_id: uuid.UUID, session: Session = DB, principal: Principal = page(*EDITORS)
) -> Response:
    org = _enterprise(session, org_id, principal)
    data = await request.form()
    form = {
        m.code: {
            "choice": str(data.get(f"choice_{m.code}", "")).strip(),
            "clause": str(data.get(f"clause_{m.code}", "")).strip(),
        }
        for m in rulebook.measures()
    }
    rules: list[dict[str, Any]] = []
    codes: list[str] = []
    for code, given in form.items():
        choice = given["choice"] if given["choice"] in CHOICES else ""
        if not choice:
            continue  # no rule: allowed, as before
        rules.append({"measure": code, "applicable": choice == "allowed", "clause": given["clause"]})
        codes.append(code)
    try:
        rulebook.set_rulebook(session, principal.actor, org, rules)
    except Problem as exc:
        session.rollback()
        text = describe(exc, locale_of(request))
        errors: dict[str, str] = {}
        for name, message in text.by_field.items():
            found = _ROW.match(name)
            if found and int(found.group(1)) < len(codes):
                errors[f"{codes[int(found.group(1))]}.{found.group(2)}"] = message
            else:
                errors[name] = message
        return _page(
            request,
            session,
            principal,
            org,
            form=form,
            errors=errors,
            problem_title=text.title,
            status_code=exc.status,
        )
    return redirect(request, f"{PREFIX}/orgs/{org.id}/rulebook?saved=1")


@router.get("/rulebooks")
def rulebooks_overview(
    request: Request, session: Session = DB, principal: Principal = page(*PLATFORM)
) -> Response:
    return render(request, "rulebooks.html", exclusions=rulebook.exclusions(session))
