"""Who looked me up (查询记录): a listed subject's right of access to the checks made about it (PIPL art. 45).

The subject proves who it is as for an objection — the entry id (编号) and one of its identifiers
(:func:`~fanchaoxin.appeals.cases.prove_subject`: the same 404 for every failure) — and is shown, per
month (Beijing time), newest first and at most ``FCX_AUDIT_RETENTION_YEARS`` back, which organisations
checked it, of what kind, for what purpose (or that none was given), by kind of check (decision, look-up,
blinded evaluation) and by channel (the platform, or an enterprise's own node).

The decision log holds no plain identifier, so the subject's records are found by digest: the keyed blind
index of **every** identifier of the subject (``core.vault.identifier_index``: platform records) and
``"tag:" + tag`` for each identifier's tag under every OPRF key the platform holds, retired ones included
(node records: a node knows its users by tag only). Each request is audited with the entry id, never the
identifier.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.cases import prove_subject
from fanchaoxin.blacklist.schemas import IdentifierIn
from fanchaoxin.core import audit, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.calendar import SHANGHAI, add_months, china_today
from fanchaoxin.core.errors import NotFound
from fanchaoxin.core.identifiers import IdentifierError, normalise
from fanchaoxin.core.schemas import StrictModel
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord, Organisation
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import oprf

KINDS = ("decision", "lookup", "evaluation")
CHANNELS = ("platform", "node")
NO_PURPOSE_ZH = "未说明用途"
NO_PURPOSE_EN = "no purpose given"
TAG_DIGEST_PREFIX = "tag:"  # orgs.node_logs


class AccessLogIn(StrictModel):
    """The entry and one of its subject's identifiers: what the subject (or its agent) knows."""

    entry_id: uuid.UUID = Field(description="The entry's id (编号), as published.")
    identifier: IdentifierIn = Field(
        description="One identifier of the listed subject (e.g. its resident ID or phone); checked against "
        "the entry. A wrong one answers 404 exactly like an unknown entry."
    )

    @field_validator("identifier")
    @classmethod
    def _normalise(cls, v: IdentifierIn) -> IdentifierIn:
        try:
            v.value = normalise(v.type, v.value)
        except IdentifierError as exc:
            raise ValueError(f"value: {exc}") from exc
        return v


# --- the digests of a subject ---------------------------------------------------------------------------


def _oprf_keys() -> list[oprf.OPRFKey]:
    """Every OPRF key the platform holds (retired ones too: older node records carry their tags)."""
    try:
        return sharing_keys.all_oprf_keys()
    except (sharing_keys.KeyFileError, OSError):  # no sharing set up: no node can have tagged anyone
        return []


def subject_digests(identifiers: Iterable[Any]) -> list[str]:
    """The digests under which the decision log may hold checks of these identifiers (SubjectIdentifier
    rows: ``type``, ``value``, and ``value_index`` where the model has it)."""
    idents = list(identifiers)
    digests: list[str] = []
    for ident in idents:
        digests.append(getattr(ident, "value_index", None) or vault.identifier_index(ident.type, ident.value))
    for key in _oprf_keys():
        for ident in idents:
            digests.append(
                TAG_DIGEST_PREFIX + key.tag(oprf.identifier_input(ident.type, ident.value, normalised=True))
            )
    return list(dict.fromkeys(digests))


# --- the report -----------------------------------------------------------------------------------------


def window_start(today: date, years: int) -> date:
    """The first month shown: the retention window, from the first of its month."""
    return add_months(today.replace(day=1), -12 * years)


def _month(session: Session) -> ColumnElement[str]:
    """``YYYY-MM`` of a record's time in Beijing (China keeps no summer time: +8 hours is exact)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", DecisionLogRecord.at), "YYYY-MM")
    return func.strftime("%Y-%m", DecisionLogRecord.at, "+8 hours")


def _purpose_out(purpose: str | None, checks: int) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "label_zh": purpose or NO_PURPOSE_ZH,
        "label_en": purpose or NO_PURPOSE_EN,
        "checks": checks,
    }


def access_report(session: Session, digests: list[str], since: datetime) -> list[dict[str, Any]]:
    """Months (newest first) of the checks recorded under any of ``digests`` since ``since``."""
    if not digests:
        return []
    month = _month(session)
    records = select(DecisionLogIdentifier.record_id).where(DecisionLogIdentifier.digest.in_(digests))
    grouped = (
        month,
        Organisation.id,
        Organisation.name,
        Organisation.name_en,
        Organisation.kind,
        DecisionLogRecord.kind,
        DecisionLogRecord.channel,
        DecisionLogRecord.purpose,
    )
    rows = session.execute(
        select(*grouped, func.count())
        .join(Organisation, Organisation.id == DecisionLogRecord.org_id)
        .where(DecisionLogRecord.id.in_(records), DecisionLogRecord.at >= since)
        .group_by(*grouped)
    ).all()
    months: dict[str, dict[str, Any]] = {}
    for m, org_id, name, name_en, org_kind, kind, channel, purpose, n in rows:
        bucket = months.setdefault(
            m,
            {
                "month": m,
                "checks": 0,
                "by_kind": dict.fromkeys(KINDS, 0),
                "by_channel": dict.fromkeys(CHANNELS, 0),
                "organisations": {},
            },
        )
        org = bucket["organisations"].setdefault(
            org_id,
            {
                "name": name,
                "name_en": name_en,
                "kind": org_kind,
                "checks": 0,
                "by_kind": dict.fromkeys(KINDS, 0),
                "by_channel": dict.fromkeys(CHANNELS, 0),
                "purposes": {},
            },
        )
        purpose = purpose.strip() if purpose and purpose.strip() else None
        for target in (bucket, org):
            target["checks"] += n
            target["by_kind"][kind] = target["by_kind"].get(kind, 0) + n
            target["by_channel"][channel] = target["by_channel"].get(channel, 0) + n
        org["purposes"][purpose] = org["purposes"].get(purpose, 0) + n
    out = []
    for m in sorted(months, reverse=True):
        bucket = months[m]
        orgs = sorted(bucket["organisations"].values(), key=lambda o: (-o["checks"], o["name"]))
        for org in orgs:
            org["purposes"] = [
                _purpose_out(p, c)
                for p, c in sorted(org["purposes"].items(), key=lambda pc: (-pc[1], pc[0] or ""))
            ]
        bucket["organisations"] = orgs
        out.append(bucket)
    return out


def who_looked_me_up(
    session: Session,
    actor: Actor,
    entry_id: uuid.UUID,
    id_type: str,
    id_value: str,
    *,
    today: date | None = None,
) -> dict[str, Any]:
    """The subject's access report, once it proved to be the entry's subject (404 otherwise, the same
    for every failure, audited as refused). ``id_value`` canonical (AccessLogIn normalises it)."""
    try:
        entry = prove_subject(session, entry_id, id_type, id_value)
    except NotFound:
        audit.record_read(session, actor, "access_log.refused", "entry", entry_id, detail={"proven": False})
        raise
    today = today or china_today()
    first = window_start(today, get_settings().audit_retention_years)
    since = datetime.combine(first, time(), SHANGHAI).astimezone(UTC)
    months = access_report(session, subject_digests(entry.subject.identifiers), since)
    total = sum(m["checks"] for m in months)
    audit.record_read(
        session, actor, "access_log.read", "entry", entry_id,
        detail={"proven": True, "months": len(months), "checks": total},
    )  # fmt: skip
    return {
        "entry_id": str(entry.id),
        "since": first.isoformat(),
        "checks": total,
        "months": months,
    }
