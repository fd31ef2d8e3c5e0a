"""Unusual patterns of checks (异常查询模式), for the platform's auditor: one row per organisation.

From the decision log in a window: checks, distinct identifier digests checked, the share of checks
without a purpose, the hit rate (checks that matched an entry), distinct digests per declared user
(``Organisation.declared_users``), and the enumeration alarms raised in the window (audit events
``security.enumeration_suspected``). An organisation is flagged, with plain reasons in Chinese and English,
when

* more than :data:`NO_PURPOSE_SHARE` of its checks gave no purpose (PIPL: processing needs a stated
  purpose);
* it checked far more distinct identifiers than it has users: more than :data:`DIGESTS_PER_USER` per
  declared user (each user has a few identifiers, and a node's tag counts besides the platform digest), or
  :data:`UNDECLARED_MIN_DIGESTS` or more without having declared its users;
* an enumeration alarm was raised for it.

Distinct digests are an upper bound on distinct people (one person checked by phone and by resident ID
counts twice), which is why the ratio allows several per user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fanchaoxin.core.audit import AuditEvent
from fanchaoxin.orgs.models import DecisionLogIdentifier, DecisionLogRecord, Organisation

ENUMERATION_ACTION = "security.enumeration_suspected"
NO_PURPOSE_SHARE = 0.10
DIGESTS_PER_USER = 3.0
UNDECLARED_MIN_DIGESTS = 100


@dataclass
class Flag:
    code: str
    reason_zh: str
    reason_en: str


@dataclass
class OrgPattern:
    org_id: uuid.UUID
    name: str
    name_en: str | None
    kind: str
    declared_users: int | None
    checks: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    distinct_digests: int = 0
    no_purpose: int = 0
    hits: int = 0
    enumeration_alarms: int = 0
    flags: list[Flag] = field(default_factory=list)

    @property
    def no_purpose_share(self) -> float:
        return self.no_purpose / self.checks if self.checks else 0.0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.checks if self.checks else 0.0

    @property
    def digests_per_user(self) -> float | None:
        return self.distinct_digests / self.declared_users if self.declared_users else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "org_id": str(self.org_id),
            "name": self.name,
            "name_en": self.name_en,
            "kind": self.kind,
            "declared_users": self.declared_users,
            "checks": self.checks,
            "by_channel": self.by_channel,
            "distinct_digests": self.distinct_digests,
            "no_purpose_share": round(self.no_purpose_share, 4),
            "hit_rate": round(self.hit_rate, 4),
            "digests_per_user": None if self.digests_per_user is None else round(self.digests_per_user, 2),
            "enumeration_alarms": self.enumeration_alarms,
            "flagged": bool(self.flags),
            "flags": [f.__dict__ for f in self.flags],
        }


def _flags(p: OrgPattern) -> list[Flag]:
    flags = []
    if p.checks and p.no_purpose_share > NO_PURPOSE_SHARE:
        pct = f"{p.no_purpose_share:.0%}"
        flags.append(
            Flag(
                "no_purpose",
                f"{pct} 的查询未说明用途（{p.no_purpose}/{p.checks}）",
                f"{pct} of its checks gave no purpose ({p.no_purpose} of {p.checks})",
            )
        )
    per_user = p.digests_per_user
    if per_user is not None and per_user > DIGESTS_PER_USER:
        flags.append(
            Flag(
                "subjects_above_users",
                f"查询了 {p.distinct_digests} 个不同标识，申报用户仅 {p.declared_users} 个"
                f"（每用户 {per_user:.1f} 个）",
                f"checked {p.distinct_digests} distinct identifiers with only {p.declared_users} declared "
                f"users ({per_user:.1f} per user)",
            )
        )
    elif not p.declared_users and p.distinct_digests >= UNDECLARED_MIN_DIGESTS:
        flags.append(
            Flag(
                "subjects_without_users",
                f"查询了 {p.distinct_digests} 个不同标识，但未申报用户数",
                f"checked {p.distinct_digests} distinct identifiers without having declared any users",
            )
        )
    if p.enumeration_alarms:
        flags.append(
            Flag(
                "enumeration_alarm",
                f"期间内触发 {p.enumeration_alarms} 次遍历（枚举）告警",
                f"{p.enumeration_alarms} enumeration alarm(s) raised in the period",
            )
        )
    return flags


def _alarm_org(event: AuditEvent) -> uuid.UUID | None:
    """The organisation an enumeration alarm is about: named in its detail, its target, or its actor."""
    detail = event.detail or {}
    for value in (
        detail.get("org_id"),
        event.target_id if event.target_type in ("organisation", "org") else None,
    ):
        if value:
            try:
                return uuid.UUID(str(value))
            except ValueError:
                continue
    return event.actor_org_id


def patterns(session: Session, since: datetime, until: datetime) -> list[OrgPattern]:
    """Every organisation with checks or alarms in ``[since, until)``: flagged ones first, then by checks."""
    in_window = (DecisionLogRecord.at >= since, DecisionLogRecord.at < until)
    no_purpose = case((func.coalesce(func.trim(DecisionLogRecord.purpose), "") == "", 1), else_=0)
    hit = case((func.json_array_length(DecisionLogRecord.entry_ids) > 0, 1), else_=0)
    found: dict[uuid.UUID, OrgPattern] = {}

    def org(org_id: uuid.UUID) -> OrgPattern | None:
        if org_id not in found:
            o = session.get(Organisation, org_id)
            if o is None:
                return None
            found[org_id] = OrgPattern(o.id, o.name, o.name_en, o.kind, o.declared_users)
        return found[org_id]

    rows = session.execute(
        select(
            DecisionLogRecord.org_id,
            DecisionLogRecord.channel,
            func.count(),
            func.sum(no_purpose),
            func.sum(hit),
        )
        .where(*in_window)
        .group_by(DecisionLogRecord.org_id, DecisionLogRecord.channel)
    ).all()
    for org_id, channel, n, unstated, hits in rows:
        p = org(org_id)
        if p is None:
            continue
        p.checks += n
        p.by_channel[channel] = p.by_channel.get(channel, 0) + n
        p.no_purpose += int(unstated or 0)
        p.hits += int(hits or 0)
    digests = session.execute(
        select(DecisionLogRecord.org_id, func.count(func.distinct(DecisionLogIdentifier.digest)))
        .join(DecisionLogIdentifier, DecisionLogIdentifier.record_id == DecisionLogRecord.id)
        .where(*in_window)
        .group_by(DecisionLogRecord.org_id)
    ).all()
    for org_id, n in digests:
        p = found.get(org_id)
        if p is not None:
            p.distinct_digests = n
    alarms = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == ENUMERATION_ACTION, AuditEvent.at >= since, AuditEvent.at < until
        )
    )
    for event in alarms:
        org_id = _alarm_org(event)
        p = org(org_id) if org_id is not None else None
        if p is not None:
            p.enumeration_alarms += 1
    for p in found.values():
        p.flags = _flags(p)
    return sorted(found.values(), key=lambda p: (not p.flags, -p.checks, p.name))
