"""Routes of the information-sharing agreement (信息共享协议): versions, signing, suspending, withdrawing.

The rules are in `orgs.agreements`; an enterprise sees only its own standing and signatures."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from pydantic import Field
from sqlalchemy.orm import Session

from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.core.roles import Role as R
from fanchaoxin.core.schemas import ResponseModel, StrictModel
from fanchaoxin.orgs import agreements, service
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import AgreementSignature, AgreementVersion

router = APIRouter(prefix="/v1", tags=["agreements"])

# Who reads an organisation's standing and signatures: the platform, and the enterprise's operators.
READERS = (*permissions.PLATFORM, R.enterprise_operator)


class PayloadTooLarge(Problem):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"
    title_zh = "上传内容过大"


class VersionIn(StrictModel):
    version: str = Field(min_length=1, max_length=20, description="e.g. 2026.1")
    title: str = Field(min_length=1, max_length=200)
    text_zh: str = Field(min_length=1, description="The agreement's text (Chinese).")
    summary_en: str = Field(min_length=1, description="An English summary.")
    published_on: date
    resign_by: date | None = Field(
        None, description="The day by which enterprises in force under an earlier version must re-sign."
    )


class VersionOut(ResponseModel):
    id: uuid.UUID
    version: str
    title: str
    text_zh: str
    summary_en: str
    published_on: date
    resign_by: date | None
    published_by: str
    created_at: datetime


class StandingOut(ResponseModel):
    in_force: bool
    code: str = Field(description="agreement.in_force | none | applied | suspended | withdrawn | lapsed")
    params: dict[str, Any]
    version: str | None
    signature_id: uuid.UUID | None
    signed_on: date | None


class SignatureOut(ResponseModel):
    id: uuid.UUID
    owner_org_id: uuid.UUID
    version: str
    signatory: str
    signatory_title: str | None
    signed_on: date
    pdf_sha256: str
    pdf_size: int
    pdf_filename: str
    recorded_at: datetime
    recorded_by: str


class AgreementOut(ResponseModel):
    org_id: uuid.UUID
    name: str
    status: str | None = Field(
        description="The participation: applied, active, suspended, withdrawn (or none)."
    )
    standing: StandingOut
    signatures: list[SignatureOut]


class ParticipantOut(ResponseModel):
    org_id: uuid.UUID
    name: str
    status: str | None
    standing: StandingOut


class ReasonIn(StrictModel):
    reason: str = Field(min_length=1, max_length=1000)


class ReinstateIn(StrictModel):
    reason: str = Field("", max_length=1000)


def standing_out(s: agreements.Standing) -> StandingOut:
    return StandingOut(
        in_force=s.in_force, code=s.code, params=s.params, version=s.version, signature_id=s.signature_id,
        signed_on=s.signed_on,
    )  # fmt: skip


def signature_out(sig: AgreementSignature, version: AgreementVersion) -> SignatureOut:
    return SignatureOut(
        id=sig.id, owner_org_id=sig.owner_org_id, version=version.version, signatory=sig.signatory,
        signatory_title=sig.signatory_title, signed_on=sig.signed_on, pdf_sha256=sig.pdf_sha256,
        pdf_size=sig.pdf_size, pdf_filename=sig.pdf_filename, recorded_at=sig.recorded_at,
        recorded_by=sig.recorded_by,
    )  # fmt: skip


def agreement_out(session: Session, org: Organisation) -> AgreementOut:
    p = agreements.participation(session, org)
    return AgreementOut(
        org_id=org.id,
        name=org.name,
        status=p.status if p else None,
        standing=standing_out(agreements.standing(session, org)),
        signatures=[signature_out(s, v) for s, v in agreements.signatures(session, org)],
    )


def _org(session: Session, org_id: uuid.UUID, principal: Principal) -> Organisation:
    """The organisation, if the caller may see it (an enterprise: its own; else 404)."""
    return service.get_organisation(session, org_id, principal)


@router.get(
    "/agreements/versions", response_model=list[VersionOut], summary="Agreement versions, newest first"
)
def list_versions(session: Session = DB, _: Principal = allow(*permissions.STAFF)) -> list[VersionOut]:
    return [VersionOut.model_validate(v) for v in agreements.versions(session)]


@router.post(
    "/agreements/versions",
    response_model=VersionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Publish an agreement version (those under an earlier one re-sign by `resign_by`)",
)
def publish_version(
    body: VersionIn, session: Session = DB, principal: Principal = allow(R.platform_admin, fresh=True)
) -> VersionOut:
    v = agreements.publish_version(session, principal.actor, **body.model_dump())
    return VersionOut.model_validate(v)


@router.get(
    "/agreements/versions/current", response_model=VersionOut, summary="The current agreement version"
)
def current_version(session: Session = DB, _: Principal = allow(*permissions.STAFF)) -> VersionOut:
    v = agreements.current_version(session)
    if v is None:
        raise NotFound("No agreement version is published yet", code="agreement.no_version")
    return VersionOut.model_validate(v)


@router.get(
    "/agreements/participants",
    response_model=list[ParticipantOut],
    summary="Every enterprise with its agreement standing (platform)",
)
def participants(session: Session = DB, _: Principal = allow(*permissions.PLATFORM)) -> list[ParticipantOut]:
    orgs = agreements.enterprises(session)
    found = agreements.standings(session, orgs)
    parts = agreements.participations(session)
    return [
        ParticipantOut(
            org_id=o.id,
            name=o.name,
            status=parts[o.id].status if o.id in parts else None,
            standing=standing_out(found[o.id]),
        )
        for o in orgs
    ]


@router.get(
    "/organisations/{org_id}/agreement",
    response_model=AgreementOut,
    summary="An enterprise's agreement standing and signatures (its own; the platform any)",
)
def get_agreement(
    org_id: uuid.UUID, session: Session = DB, principal: Principal = allow(*READERS)
) -> AgreementOut:
    return agreement_out(session, _org(session, org_id, principal))


@router.post(
    "/organisations/{org_id}/agreement/application",
    response_model=AgreementOut,
    status_code=status.HTTP_201_CREATED,
    summary="The enterprise applies to take part in the joint action",
)
def apply(
    org_id: uuid.UUID, session: Session = DB, principal: Principal = allow(R.enterprise_operator)
) -> AgreementOut:
    org = _org(session, org_id, principal)
    agreements.apply(session, principal.actor, org)
    return agreement_out(session, org)


@router.post(
    "/organisations/{org_id}/agreement/signatures",
    response_model=SignatureOut,
    status_code=status.HTTP_201_CREATED,
    summary="Sign the current version: the signed PDF (multipart `file`), the signatory and the day",
    description="Only the current version can be signed; the file must be a PDF of at most "
    "FCX_AGREEMENT_PDF_MAX_BYTES (10 MiB); `signed_on` not in the future.",
)
def sign(
    org_id: uuid.UUID,
    request: Request,
    version: str = Form(..., max_length=20),
    signatory: str = Form("", max_length=200),
    signatory_title: str = Form("", max_length=200),
    signed_on: date = Form(...),
    file: UploadFile = File(...),
    session: Session = DB,
    principal: Principal = allow(R.enterprise_operator),
) -> SignatureOut:
    limit = agreements.pdf_max_bytes()
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + 64 * 1024:  # the file plus the multipart envelope
        raise PayloadTooLarge(
            f"The upload is {declared} bytes; the signed agreement may be at most {limit} bytes",
            code="agreement.pdf_too_large",
            params={"size": declared, "limit": limit},
            errors=[{"in": "body", "field": "file", "type": "too_large", "message": f"at most {limit} bytes",
                     "code": "agreement.pdf_too_large", "params": {"size": declared, "limit": limit}}],
        )  # fmt: skip
    org = _org(session, org_id, principal)
    data = file.file.read(limit + 1)
    sig = agreements.sign(
        session, principal.actor, org, version=version, signatory=signatory, signatory_title=signatory_title,
        signed_on=signed_on, pdf=data, filename=file.filename or "agreement.pdf",
    )  # fmt: skip
    v = session.get(AgreementVersion, sig.version_id)
    assert v is not None
    return signature_out(sig, v)


@router.get(
    "/organisations/{org_id}/agreement/signatures/{signature_id}/pdf",
    summary="The signed agreement's PDF (its own; the platform any; audited)",
)
def signature_pdf(
    org_id: uuid.UUID,
    signature_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = allow(*READERS),
) -> Response:
    org = _org(session, org_id, principal)
    sig = session.get(AgreementSignature, signature_id)
    if sig is None or sig.owner_org_id != org.id:
        raise NotFound(f"No signature {signature_id}", code="agreement.signature_not_found")
    audit.record(
        session, principal.actor, "agreement.pdf.read", "organisation", org.id,
        detail={"signature_id": str(sig.id), "sha256": sig.pdf_sha256},
    )  # fmt: skip
    return Response(
        sig.pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="agreement-{sig.pdf_sha256[:12]}.pdf"',
            "ETag": f'"{sig.pdf_sha256}"',
        },
    )


@router.post(
    "/organisations/{org_id}/agreement/suspension",
    response_model=AgreementOut,
    summary="Suspend an enterprise (platform): its keys are refused the shared list at once",
)
def suspend(
    org_id: uuid.UUID,
    body: ReasonIn,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> AgreementOut:
    org = _org(session, org_id, principal)
    agreements.suspend(session, principal.actor, org, body.reason)
    return agreement_out(session, org)


@router.post(
    "/organisations/{org_id}/agreement/reinstatement",
    response_model=AgreementOut,
    summary="Lift an enterprise's suspension (platform)",
)
def reinstate(
    org_id: uuid.UUID,
    body: ReinstateIn,
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> AgreementOut:
    org = _org(session, org_id, principal)
    agreements.reinstate(session, principal.actor, org, body.reason)
    return agreement_out(session, org)


@router.post(
    "/organisations/{org_id}/agreement/withdrawal",
    response_model=AgreementOut,
    summary="The enterprise withdraws from the joint action",
)
def withdraw(
    org_id: uuid.UUID,
    body: ReasonIn,
    session: Session = DB,
    principal: Principal = allow(R.enterprise_operator),
) -> AgreementOut:
    org = _org(session, org_id, principal)
    agreements.withdraw(session, principal.actor, org, body.reason)
    return agreement_out(session, org)
