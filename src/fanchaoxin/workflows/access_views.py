"""``POST /v1/public/access-log``: who looked me up (查询记录), for a listed subject, without a key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.appeals import access
from fanchaoxin.appeals.views import rate_limit
from fanchaoxin.core.auth import DB, Principal, allow_public
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.schemas import ResponseModel

router = APIRouter(prefix="/v1", tags=["due process"])


class PurposeOut(ResponseModel):
    purpose: str | None = Field(description="The purpose the organisation gave; null when it gave none.")
    label_zh: str = Field(description="The purpose, or 未说明用途.")
    label_en: str = Field(description="The purpose, or 'no purpose given'.")
    checks: int


class OrganisationChecksOut(ResponseModel):
    name: str
    name_en: str | None
    kind: str = Field(description="platform | department | enterprise")
    checks: int
    by_kind: dict[str, int] = Field(description="decision / lookup / evaluation")
    by_channel: dict[str, int] = Field(description="platform (the platform's API) / node (its own node)")
    purposes: list[PurposeOut]


class MonthOut(ResponseModel):
    month: str = Field(description="YYYY-MM, Beijing time")
    checks: int
    by_kind: dict[str, int]
    by_channel: dict[str, int]
    organisations: list[OrganisationChecksOut]


class AccessLogOut(ResponseModel):
    entry_id: str
    since: str = Field(description="The first day shown: the retention window (FCX_AUDIT_RETENTION_YEARS).")
    checks: int
    months: list[MonthOut] = Field(description="Newest first; months without checks are left out.")


@router.post(
    "/public/access-log",
    response_model=AccessLogOut,
    summary="Who looked me up: the checks organisations made about a listed subject, per month",
    description="For the listed subject (PIPL art. 45), without a key (rate-limited per address and per "
    "entry). Prove who you are as for an objection: the entry id and one of the subject's identifiers; "
    "a wrong one answers 404 exactly like an unknown entry. Each request is audited with the entry id "
    "(never the identifier).",
)
def access_log(
    body: access.AccessLogIn, request: Request, session: Session = DB, principal: Principal = allow_public()
) -> AccessLogOut:
    rate_limit(request, principal, [f"access:{body.entry_id}"])
    try:
        report = access.who_looked_me_up(
            session, principal.actor, body.entry_id, body.identifier.type.value, body.identifier.value
        )
    except NotFound:
        session.commit()  # the refusal stays on the record; the 404 says nothing more
        raise
    return AccessLogOut.model_validate(report)
