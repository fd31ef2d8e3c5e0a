"""Routes of each enterprise's rulebook (企业规则): which of the 13 measures its rules let it apply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import Role as R
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import rulebook, service
from fanchaoxin.orgs.models import Organisation

router = APIRouter(prefix="/v1", tags=["rulebooks"])

READERS = permissions.PLATFORM | permissions.ENTERPRISE
WRITERS = frozenset({R.enterprise_operator, R.platform_admin})


class RuleIn(StrictModel):
    """Checked by orgs.rulebook (every bad field named, e.g. `rules[3].measure`)."""

    measure: str | int | None = Field(
        None, description="A measure's code (restrict_promotions) or number 1-13."
    )
    applicable: bool | str | None = Field(None, description="Whether its rules let it apply the measure.")
    clause: str | None = Field(None, description="The clause of its user agreement or platform rules.")


class RulebookIn(StrictModel):
    rules: list[RuleIn] = Field(
        description="The whole rulebook: a measure left out is allowed (instructed as before)."
    )


class MeasureRuleOut(ResponseModel):
    measure: str
    number: int | None
    measure_zh: str
    measure_en: str
    ruled: bool = Field(description="False: no rule (allowed).")
    applicable: bool
    clause: str | None
    updated_at: datetime | None
    updated_by: str | None


class RulebookOut(ResponseModel):
    org_id: uuid.UUID
    org_name: str
    rules: list[MeasureRuleOut] = Field(description="The 13 measures in order, each allowed or excluded.")
    excluded: list[str]


class ExclusionOut(ResponseModel):
    org_id: uuid.UUID
    org_name: str
    org_name_en: str | None
    measure: str
    number: int | None
    measure_zh: str
    measure_en: str
    clause: str


def rulebook_out(session: Session, org: Organisation) -> RulebookOut:
    rules = {r.measure: r for r in rulebook.rulebook_of(session, org)}
    out = []
    for m in rulebook.measures():
        r = rules.get(m.code)
        out.append(
            MeasureRuleOut(
                measure=m.code,
                number=m.number,
                measure_zh=m.zh,
                measure_en=m.en,
                ruled=r is not None,
                applicable=r.applicable if r is not None else True,
                clause=r.clause if r is not None else None,
                updated_at=r.updated_at if r is not None else None,
                updated_by=r.updated_by if r is not None else None,
            )
        )
    return RulebookOut(
        org_id=org.id,
        org_name=org.name,
        rules=out,
        excluded=[r.measure for r in out if not r.applicable],
    )


def _own_or_platform(session: Session, org_id: uuid.UUID, principal: Principal) -> Organisation:
    # Tenancy: an enterprise sees only itself (404 for another), the platform every organisation.
    return service.get_organisation(session, org_id, principal)


@router.get(
    "/organisations/{org_id}/rulebook",
    response_model=RulebookOut,
    summary="An enterprise's rulebook: each of the 13 measures allowed or excluded, with the clause",
)
def get_rulebook(
    org_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*READERS)
) -> RulebookOut:
    return rulebook_out(session, _own_or_platform(session, org_id, principal))


@router.get(
    "/rulebook",
    response_model=RulebookOut,
    summary="The caller's own rulebook (an enterprise's operator or node: what `fcx node sync` keeps)",
)
def get_own_rulebook(
    session: Session = DB, principal: Principal = allow(*permissions.ENTERPRISE)
) -> RulebookOut:
    """The node has its key, not its organisation's id: it reads its rulebook here at every sync, so its
    own decisions leave out what its rules exclude, as the platform's do."""
    assert principal.org_id is not None  # an enterprise key always names its organisation
    return rulebook_out(session, _own_or_platform(session, principal.org_id, principal))


@router.put(
    "/organisations/{org_id}/rulebook",
    response_model=RulebookOut,
    summary="Replace an enterprise's rulebook (its operator, or the platform administrator)",
)
def put_rulebook(
    org_id: uuid.UUID,
    body: RulebookIn,
    session: Session = DB,
    principal: Principal = allow(*WRITERS, fresh=True),
) -> RulebookOut:
    """A measure left out is allowed. Instructions already issued are not re-issued; decisions follow
    within seconds. 422 naming the row for an unknown measure, a missing clause, a measure twice."""
    org = _own_or_platform(session, org_id, principal)
    if principal.role == R.enterprise_operator and principal.org_id != org.id:
        raise Forbidden("Only the enterprise itself sets its rulebook", code="rulebook.not_own")
    rules: list[dict[str, Any]] = [r.model_dump() for r in body.rules]
    rulebook.set_rulebook(session, principal.actor, org, rules)
    return rulebook_out(session, org)


@router.get(
    "/rulebooks",
    response_model=list[ExclusionOut],
    summary="Which measures each enterprise's rules exclude, and why (the platform)",
)
def list_exclusions(session: Session = DB, _: Principal = allow(*permissions.PLATFORM)) -> list[ExclusionOut]:
    return [ExclusionOut(**row) for row in rulebook.exclusions(session)]
