"""The information-sharing agreement (反炒信信息共享协议, action plan 一(三)): the rules, in one place.

Versioned texts (Chinese, with an English summary); the latest published is the current one, and only
it can be signed. An enterprise applies, signs (the signed PDF kept and hashed), and takes part from
then on; the platform suspends it (a data breach, an abuse of queries), the enterprise withdraws. A
new version may set `resign_by`: whoever is in force under an earlier version stays so until that day,
then lapses until it signs the new one.

`standing` says whether an enterprise's agreement is in force, and why not; `in_force_enterprise_ids`
answers the same for every enterprise in a few queries (instructions, targeting). The API key
authenticator puts the standing on the principal (`Principal.agreement`), so the gate on the feed,
blinded evaluation, decisions and instructions (`core.permissions.allow_participant`) costs nothing.

Compatibility: an enterprise that has no signature but a legacy `Organisation.agreement_signed_on`
on or before today (registered before agreements were versioned) is in force as if it had signed an
earlier version: it lapses only once a current version's `resign_by` has passed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import AGREEMENT_IN_FORCE, forget_principals
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, ValidationProblem
from fanchaoxin.core.roles import OrgKind
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.participation_models import AgreementSignature, AgreementVersion, Participation

IN_FORCE = AGREEMENT_IN_FORCE
NONE = "agreement.none"
APPLIED = "agreement.applied"
SUSPENDED = "agreement.suspended"
WITHDRAWN = "agreement.withdrawn"
LAPSED = "agreement.lapsed"
NOT_APPLICABLE = "agreement.not_applicable"  # departments and the platform do not sign

def pdf_max_bytes() -> int:
    """FCX_AGREEMENT_PDF_MAX_BYTES (10 MiB unless set)."""
    return get_settings().agreement_pdf_max_bytes


@dataclass(frozen=True)
class Standing:
    """Whether an organisation's agreement is in force, and why not (`code`, with `params`)."""

    in_force: bool
    code: str
    params: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the version of the signature in force (None: legacy or none)
    signature_id: uuid.UUID | None = None
    signed_on: date | None = None

    def out(self) -> dict[str, Any]:
        return {
            "in_force": self.in_force,
            "code": self.code,
            "params": self.params,
            "version": self.version,
            "signature_id": str(self.signature_id) if self.signature_id else None,
            "signed_on": self.signed_on.isoformat() if self.signed_on else None,
        }


# --- versions ---------------------------------------------------------------------------------------------


def versions(session: Session) -> list[AgreementVersion]:
    """Every version, newest first."""
    return list(
        session.scalars(
            select(AgreementVersion).order_by(
                AgreementVersion.published_on.desc(), AgreementVersion.created_at.desc()
            )
        )
    )


def current_version(session: Session, today: date | None = None) -> AgreementVersion | None:
    """The latest version published on or before `today` (None: no version yet)."""
    today = today or china_today()
    return session.scalar(
        select(AgreementVersion)
        .where(AgreementVersion.published_on <= today)
        .order_by(AgreementVersion.published_on.desc(), AgreementVersion.created_at.desc())
        .limit(1)
    )


def publish_version(
    session: Session,
    actor: Actor,
    *,
    version: str,
    title: str,
    text_zh: str,
    summary_en: str,
    published_on: date,
    resign_by: date | None = None,
    today: date | None = None,
) -> AgreementVersion:
    """Publish a version. It is current from `published_on`; those in force under an earlier one must
    re-sign by `resign_by` (`participants_to_resign` names them, for the reminder)."""
    today = today or china_today()
    version, title = version.strip(), title.strip()
    for name, value, limit in (("version", version, 20), ("title", title, 200)):
        if not value:
            raise ValidationProblem.on_field(
                name, "required", "missing", code="agreement.field_required", params={"field": name}
            )
        if len(value) > limit:
            raise ValidationProblem.on_field(
                name, f"at most {limit} characters", code="agreement.field_too_long",
                params={"field": name, "max": limit},
            )  # fmt: skip
    for name, value in (("text_zh", text_zh), ("summary_en", summary_en)):
        if not value.strip():
            raise ValidationProblem.on_field(
                name, "required", "missing", code="agreement.field_required", params={"field": name}
            )
    latest = session.scalar(select(func.max(AgreementVersion.published_on)))
    if latest is not None and published_on < latest:
        raise ValidationProblem.on_field(
            "published_on", f"must not be before the latest version's ({latest.isoformat()})",
            code="agreement.published_before_latest", params={"latest": latest.isoformat()},
        )  # fmt: skip
    if resign_by is not None:
        if resign_by <= published_on:
            raise ValidationProblem.on_field(
                "resign_by", "must be after the publication day",
                code="agreement.resign_by_before_publication",
                params={"published_on": published_on.isoformat()},
            )  # fmt: skip
        if resign_by < today:
            raise ValidationProblem.on_field(
                "resign_by", "must not be in the past", code="agreement.resign_by_past",
                params={"today": today.isoformat()},
            )  # fmt: skip
    if session.scalar(select(AgreementVersion.id).where(AgreementVersion.version == version)):
        raise Conflict(
            f"Agreement version {version} exists already", code="agreement.version_exists",
            params={"version": version},
        )  # fmt: skip
    row = AgreementVersion(
        version=version, title=title, text_zh=text_zh.strip(), summary_en=summary_en.strip(),
        published_on=published_on, resign_by=resign_by, published_by=actor.name,
    )  # fmt: skip
    session.add(row)
    session.flush()
    # Every enterprise's standing may change: every cached principal is forgotten.
    forget_principals(session, everyone=True)
    audit.record(
        session, actor, "agreement.publish", "agreement_version", row.id,
        after=version_snapshot(row),
    )  # fmt: skip
    return row


def version_snapshot(v: AgreementVersion) -> dict[str, Any]:
    return {
        "id": str(v.id),
        "version": v.version,
        "title": v.title,
        "summary_en": v.summary_en,
        "published_on": v.published_on.isoformat(),
        "resign_by": v.resign_by.isoformat() if v.resign_by else None,
        "published_by": v.published_by,
    }


def find_version(session: Session, version: str) -> AgreementVersion | None:
    return session.scalar(select(AgreementVersion).where(AgreementVersion.version == version.strip()))


# --- the rule of standing ------------------------------------------------------------------------------


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else ""


def _decide(
    *,
    kind: str,
    legacy_signed_on: date | None,
    participation: Participation | None,
    signature: AgreementSignature | None,
    signature_version: AgreementVersion | None,
    current: AgreementVersion | None,
    today: date,
) -> Standing:
    """The one rule: an organisation's standing from its rows (used for one and for all)."""
    if kind != OrgKind.enterprise.value:
        return Standing(True, NOT_APPLICABLE)
    if participation is not None and participation.status == "suspended":
        since = participation.suspended_at
        reason = participation.suspension_reason or ""
        return Standing(False, SUSPENDED, {"reason": reason, "since": _day(since)})
    if participation is not None and participation.status == "withdrawn":
        since = participation.withdrawn_at
        reason = participation.withdrawal_reason or ""
        return Standing(False, WITHDRAWN, {"reason": reason, "since": _day(since)})
    signed = signature is not None or (legacy_signed_on is not None and legacy_signed_on <= today)
    if signed:
        version = signature_version.version if signature_version else None
        signature_id = signature.id if signature else None
        signed_on = signature.signed_on if signature else legacy_signed_on
        of_current = signature is not None and (current is None or signature.version_id == current.id)
        params: dict[str, Any] = {}
        code = IN_FORCE
        if not of_current and current is not None and current.resign_by is not None:
            # Signed an earlier version: in force until the current one's re-signing day.
            params = {"version": current.version, "resign_by": current.resign_by.isoformat()}
            code = LAPSED if today > current.resign_by else IN_FORCE
        return Standing(code == IN_FORCE, code, params, version, signature_id, signed_on)
    if participation is not None and participation.status in ("applied", "active"):
        return Standing(False, APPLIED, {})
    return Standing(False, NONE, {})


def _latest_signature(
    session: Session, org_id: uuid.UUID
) -> tuple[AgreementSignature | None, AgreementVersion | None]:
    row = session.execute(
        select(AgreementSignature, AgreementVersion)
        .join(AgreementVersion, AgreementVersion.id == AgreementSignature.version_id)
        .where(AgreementSignature.owner_org_id == org_id)
        .order_by(AgreementVersion.published_on.desc(), AgreementSignature.signed_on.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else (None, None)


def standing(session: Session, org: Organisation, today: date | None = None) -> Standing:
    """Whether `org`'s agreement is in force on `today`, and why not."""
    today = today or china_today()
    if org.kind != OrgKind.enterprise.value:
        return Standing(True, NOT_APPLICABLE)
    signature, signature_version = _latest_signature(session, org.id)
    return _decide(
        kind=org.kind,
        legacy_signed_on=org.agreement_signed_on,
        participation=session.get(Participation, org.id),
        signature=signature,
        signature_version=signature_version,
        current=current_version(session, today),
        today=today,
    )


def standings(
    session: Session, orgs: Iterable[Organisation], today: date | None = None
) -> dict[uuid.UUID, Standing]:
    """Each organisation's standing, in a few queries whatever their number."""
    today = today or china_today()
    orgs = list(orgs)
    current = current_version(session, today)
    parts = {p.org_id: p for p in session.scalars(select(Participation))}
    latest: dict[uuid.UUID, tuple[AgreementSignature, AgreementVersion]] = {}
    rows = session.execute(
        select(AgreementSignature, AgreementVersion)
        .join(AgreementVersion, AgreementVersion.id == AgreementSignature.version_id)
        .order_by(AgreementVersion.published_on, AgreementSignature.signed_on)
    )
    for sig, ver in rows:
        latest[sig.owner_org_id] = (sig, ver)  # the last one wins: the newest
    out = {}
    for org in orgs:
        found = latest.get(org.id)
        out[org.id] = _decide(
            kind=org.kind, legacy_signed_on=org.agreement_signed_on, participation=parts.get(org.id),
            signature=found[0] if found else None, signature_version=found[1] if found else None,
            current=current, today=today,
        )  # fmt: skip
    return out


def enterprises(session: Session, *, active_only: bool = True) -> list[Organisation]:
    stmt = select(Organisation).where(Organisation.kind == OrgKind.enterprise.value)
    if active_only:
        stmt = stmt.where(Organisation.active.is_(True))
    return list(session.scalars(stmt.order_by(Organisation.name)))


def in_force_enterprise_ids(session: Session, today: date | None = None) -> set[uuid.UUID]:
    """The active enterprises whose agreement is in force on `today` (instructions go only to them)."""
    return {oid for oid, s in standings(session, enterprises(session), today).items() if s.in_force}


def participants_to_resign(
    session: Session, today: date | None = None
) -> list[tuple[Organisation, Standing]]:
    """The enterprises in force under an earlier version than the current one, which has a re-signing
    day: whom to remind (by e-mail, to `contact_email`) to sign it by then."""
    today = today or china_today()
    current = current_version(session, today)
    if current is None or current.resign_by is None:
        return []
    orgs = enterprises(session)
    found = standings(session, orgs, today)
    return [(o, found[o.id]) for o in orgs if found[o.id].in_force and found[o.id].params.get("resign_by")]


# --- steps -------------------------------------------------------------------------------------------------


def participation(session: Session, org: Organisation) -> Participation | None:
    return session.get(Participation, org.id)


def participations(session: Session) -> dict[uuid.UUID, Participation]:
    return {p.org_id: p for p in session.scalars(select(Participation))}


def _participation_snapshot(p: Participation | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        "status": p.status,
        "applied_by": p.applied_by,
        "suspended_by": p.suspended_by,
        "suspension_reason": p.suspension_reason,
        "withdrawal_reason": p.withdrawal_reason,
    }


def _enterprise_only(org: Organisation) -> None:
    if org.kind != OrgKind.enterprise.value:
        raise Conflict(
            f"Only an enterprise signs the sharing agreement, not a {org.kind}",
            code="agreement.enterprise_only", params={"kind": org.kind},
        )  # fmt: skip


def _changed(session: Session, org: Organisation) -> None:
    """A standing changed: this organisation's cached principals are forgotten at once (here) and
    within the revocation check interval elsewhere (the epoch counts participations)."""
    session.flush()
    forget_principals(session, org_id=org.id)


def apply(session: Session, actor: Actor, org: Organisation, today: date | None = None) -> Participation:
    """The enterprise applies to take part (申请加入)."""
    _enterprise_only(org)
    p = session.get(Participation, org.id)
    before = _participation_snapshot(p)
    if p is not None and p.status in ("applied", "active"):
        raise Conflict(
            f"{org.name} has already applied", code="agreement.already_applied", params={"status": p.status}
        )
    if p is not None and p.status == "suspended":
        raise Conflict(f"{org.name} is suspended", code="agreement.is_suspended")
    if p is None:
        p = Participation(org_id=org.id, status="applied", applied_by=actor.name)
        session.add(p)
    else:
        p.status, p.applied_by, p.applied_at = "applied", actor.name, utcnow()
        p.withdrawn_at = p.withdrawal_reason = None
    _changed(session, org)
    audit.record(
        session,
        actor,
        "agreement.apply",
        "organisation",
        org.id,
        before=before,
        after=_participation_snapshot(p),
    )
    return p


def check_pdf(pdf: bytes, filename: str) -> None:
    """A PDF (its header `%PDF-` and its end `%%EOF`), not empty, at most FCX_AGREEMENT_PDF_MAX_BYTES."""
    limit = pdf_max_bytes()
    if len(pdf) > limit:
        raise ValidationProblem.on_field(
            "file", f"the file has {len(pdf)} bytes; at most {limit}", "too_large",
            code="agreement.pdf_too_large", params={"size": len(pdf), "limit": limit},
        )  # fmt: skip
    if not pdf.startswith(b"%PDF-") or b"%%EOF" not in pdf[-1024:]:
        raise ValidationProblem.on_field(
            "file", "not a PDF file", "not_pdf", code="agreement.not_pdf", params={"filename": filename}
        )


def sign(
    session: Session,
    actor: Actor,
    org: Organisation,
    *,
    version: str,
    signatory: str,
    signatory_title: str | None,
    signed_on: date,
    pdf: bytes,
    filename: str,
    today: date | None = None,
) -> AgreementSignature:
    """Record the enterprise's signature of the current version, with the signed PDF (kept and hashed).
    The enterprise takes part from then on (from applied, or re-signing)."""
    today = today or china_today()
    _enterprise_only(org)
    current = current_version(session, today)
    if current is None or current.version != version.strip():
        raise Conflict(
            f"Version {version!r} is not the current agreement"
            + (f"; sign {current.version}" if current else "; none is published"),
            code="agreement.version_not_current",
            params={"version": version, "current": current.version if current else ""},
            errors=[{
                "in": "body", "field": "version", "type": "not_current", "message": "not the current version",
                "code": "agreement.version_not_current",
                "params": {"version": version, "current": current.version if current else ""},
            }],
        )  # fmt: skip
    signatory = signatory.strip()
    if not signatory:
        raise ValidationProblem.on_field(
            "signatory", "say who signed", "missing", code="agreement.signatory_required"
        )
    if len(signatory) > 200:
        raise ValidationProblem.on_field(
            "signatory", "at most 200 characters", code="agreement.field_too_long",
            params={"field": "signatory", "max": 200},
        )  # fmt: skip
    if signed_on > today:
        raise ValidationProblem.on_field(
            "signed_on", "must not be in the future", code="agreement.signed_in_future",
            params={"today": today.isoformat()},
        )  # fmt: skip
    filename = (filename or "agreement.pdf").strip()[-200:] or "agreement.pdf"
    check_pdf(pdf, filename)
    p = session.get(Participation, org.id)
    before = _participation_snapshot(p)
    if p is not None and p.status == "suspended":
        raise Conflict(f"{org.name} is suspended", code="agreement.is_suspended")
    if p is not None and p.status == "withdrawn":
        raise Conflict(f"{org.name} has withdrawn; apply again first", code="agreement.is_withdrawn")
    if session.scalar(
        select(AgreementSignature.id).where(
            AgreementSignature.owner_org_id == org.id, AgreementSignature.version_id == current.id
        )
    ):
        raise Conflict(
            f"{org.name} has already signed version {current.version}",
            code="agreement.already_signed", params={"version": current.version},
        )  # fmt: skip
    sig = AgreementSignature(
        owner_org_id=org.id, version_id=current.id, signatory=signatory,
        signatory_title=(signatory_title or "").strip()[:200] or None, signed_on=signed_on,
        pdf_sha256=hashlib.sha256(pdf).hexdigest(), pdf_size=len(pdf), pdf_filename=filename, pdf=pdf,
        recorded_by=actor.name,
    )  # fmt: skip
    session.add(sig)
    if p is None:
        p = Participation(org_id=org.id, status="active", applied_by=actor.name)
        session.add(p)
    else:
        p.status = "active"
    try:
        _changed(session, org)
    except IntegrityError:  # a signature of the same version at the same instant
        raise Conflict(
            "Already signed", code="agreement.already_signed", params={"version": current.version}
        ) from None
    audit.record(
        session, actor, "agreement.sign", "organisation", org.id, before=before,
        after=(_participation_snapshot(p) or {}) | signature_snapshot(sig, current),
    )  # fmt: skip
    return sig


def signature_snapshot(sig: AgreementSignature, version: AgreementVersion | None = None) -> dict[str, Any]:
    return {
        "signature_id": str(sig.id),
        "version": version.version if version else None,
        "signatory": sig.signatory,
        "signatory_title": sig.signatory_title,
        "signed_on": sig.signed_on.isoformat(),
        "pdf_sha256": sig.pdf_sha256,
        "pdf_size": sig.pdf_size,
        "pdf_filename": sig.pdf_filename,
    }


def signatures(session: Session, org: Organisation) -> list[tuple[AgreementSignature, AgreementVersion]]:
    """The organisation's signatures, newest first."""
    rows = session.execute(
        select(AgreementSignature, AgreementVersion)
        .join(AgreementVersion, AgreementVersion.id == AgreementSignature.version_id)
        .where(AgreementSignature.owner_org_id == org.id)
        .order_by(AgreementVersion.published_on.desc(), AgreementSignature.signed_on.desc())
    )
    return [(s, v) for s, v in rows]


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationProblem.on_field("reason", "say why", "missing", code="agreement.reason_required")
    if len(reason) > 1000:
        raise ValidationProblem.on_field("reason", "at most 1000 characters", code="agreement.field_too_long",
                       params={"field": "reason", "max": 1000})  # fmt: skip
    return reason


def suspend(session: Session, actor: Actor, org: Organisation, reason: str) -> Participation:
    """The platform suspends the enterprise (e.g. a data breach, an abuse of queries): at once, its
    keys are refused the feed, evaluation, decisions and instructions."""
    _enterprise_only(org)
    reason = _reason(reason)
    p = session.get(Participation, org.id)
    before = _participation_snapshot(p)
    if p is not None and p.status == "suspended":
        raise Conflict(f"{org.name} is already suspended", code="agreement.already_suspended")
    if p is None:
        p = Participation(org_id=org.id, status="suspended", applied_by=actor.name)
        session.add(p)
    p.status, p.suspended_at, p.suspended_by, p.suspension_reason = "suspended", utcnow(), actor.name, reason
    _changed(session, org)
    audit.record(
        session,
        actor,
        "agreement.suspend",
        "organisation",
        org.id,
        before=before,
        after=_participation_snapshot(p),
    )
    return p


def reinstate(session: Session, actor: Actor, org: Organisation, reason: str = "") -> Participation:
    """The platform lifts a suspension: the enterprise stands as its signatures say."""
    _enterprise_only(org)
    p = session.get(Participation, org.id)
    if p is None or p.status != "suspended":
        raise Conflict(f"{org.name} is not suspended", code="agreement.not_suspended")
    before = _participation_snapshot(p)
    has_signature = session.scalar(
        select(func.count(AgreementSignature.id)).where(AgreementSignature.owner_org_id == org.id)
    )
    p.status = "active" if has_signature or org.agreement_signed_on else "applied"
    _changed(session, org)
    audit.record(
        session, actor, "agreement.reinstate", "organisation", org.id, before=before,
        after=_participation_snapshot(p), detail={"reason": (reason or "").strip()[:1000]},
    )  # fmt: skip
    return p


def withdraw(session: Session, actor: Actor, org: Organisation, reason: str) -> Participation:
    """The enterprise withdraws from the joint action (退出): it is no longer in force."""
    _enterprise_only(org)
    reason = _reason(reason)
    p = session.get(Participation, org.id)
    before = _participation_snapshot(p)
    if p is not None and p.status == "withdrawn":
        raise Conflict(f"{org.name} has already withdrawn", code="agreement.already_withdrawn")
    if p is not None and p.status == "suspended":
        raise Conflict(f"{org.name} is suspended", code="agreement.is_suspended")
    if p is None:
        p = Participation(org_id=org.id, status="withdrawn", applied_by=actor.name)
        session.add(p)
    p.status, p.withdrawn_at, p.withdrawal_reason = "withdrawn", utcnow(), reason
    _changed(session, org)
    audit.record(
        session,
        actor,
        "agreement.withdraw",
        "organisation",
        org.id,
        before=before,
        after=_participation_snapshot(p),
    )
    return p


def principal_agreement(
    session: Session, org: Organisation, today: date | None = None
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """What the API key authenticator puts on an enterprise's principal: its standing's code and
    params (None for departments and the platform, which do not sign)."""
    if org.kind != OrgKind.enterprise.value:
        return None, ()
    s = standing(session, org, today)
    return s.code, tuple((k, str(v)) for k, v in s.params.items())


def epoch(session: Session) -> tuple[object, ...]:
    """Moves whenever a participation changes or a version is published (core.auth's revocation epoch)."""
    parts = select(func.count(Participation.org_id), func.max(Participation.updated_at)).subquery()
    vers = select(func.count(AgreementVersion.id), func.max(AgreementVersion.created_at)).subquery()
    return tuple(session.execute(select(parts, vers).select_from(parts.join(vers, true()))).one())
