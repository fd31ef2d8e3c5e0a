"""A policy's dry run (试运行): what grading the entries in force under it would change, per organisation.

Loading a policy does not touch the entries in force: each keeps the version that graded it, and a
correction grades it again under the policy then active (sanctions.service.reissue_instructions).
Before loading, `fcx policy check` and `POST /v1/policies/check` show what that regrading would
change: which entries would be graded differently, and for each organisation which instructions
would be newly applied or lifted. Who gets what is asked of the one targeting rule
(`sanctions.service.targets`) with the entry graded under the new policy; what is in force now is
what the entry's instructions applied and did not lift, as a re-issue counts it. Nothing is written.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service
from fanchaoxin.sanctions.policy import Policy


@dataclass(frozen=True)
class Regraded:
    """An entry in force that the policy would grade differently."""

    entry_id: uuid.UUID
    before: tuple[str, ...]  # measure codes as graded now
    after: tuple[str, ...]  # under the policy
    changed: tuple[str, ...]  # measures kept, with other parameters or actions (not re-issued)

    def to_dict(self) -> dict[str, Any]:
        return {
            "entry_id": str(self.entry_id),
            "before": list(self.before),
            "after": list(self.after),
            "changed": list(self.changed),
        }


@dataclass
class OrganisationImpact:
    """One organisation's instructions that regrading would newly apply or lift, by measure."""

    org_id: uuid.UUID
    name: str
    kind: str
    applied: dict[str, list[uuid.UUID]] = field(default_factory=dict)  # measure → entries
    lifted: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    # Newly targeted but ruled out by the enterprise's rulebook: issued as not applicable by its rules.
    excluded: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def entries(self) -> list[uuid.UUID]:
        """The entries whose instructions to this organisation would change."""
        return sorted({e for ids in (*self.applied.values(), *self.lifted.values()) for e in ids}, key=str)

    def to_dict(self, *, details: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "org_id": str(self.org_id),
            "name": self.name,
            "kind": self.kind,
            "entries": len(self.entries),
            "apply": {m: len(ids) for m, ids in sorted(self.applied.items())},
            "lift": {m: len(ids) for m, ids in sorted(self.lifted.items())},
            "excluded_by_rules": {m: len(ids) for m, ids in sorted(self.excluded.items())},
        }
        if details:
            out["entry_ids"] = [str(e) for e in self.entries]
            out["apply_entry_ids"] = {m: [str(e) for e in ids] for m, ids in sorted(self.applied.items())}
            out["lift_entry_ids"] = {m: [str(e) for e in ids] for m, ids in sorted(self.lifted.items())}
        return out


@dataclass
class PolicyImpact:
    """What grading every entry in force under `version` would change."""

    version: str
    active_version: str
    today: date
    entries_in_force: int
    regraded: list[Regraded]
    organisations: list[OrganisationImpact]

    def to_dict(self, *, details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "active_version": self.active_version,
            "today": self.today.isoformat(),
            "entries_in_force": self.entries_in_force,
            "regraded": len(self.regraded),
            "organisations": [o.to_dict(details=details) for o in self.organisations],
        }
        if details:
            out["regraded_entries"] = [r.to_dict() for r in self.regraded]
        return out


def policy_impact(session: Session, policy: Policy, today: date) -> PolicyImpact:
    """Grade every entry in force under `policy` and compare with its grading and instructions now."""
    entries = list(
        session.scalars(select(Entry).where(Entry.status.in_(list(IN_FORCE))).order_by(Entry.submitted_at))
    )
    organisations = {o.id: o for o in session.scalars(select(Organisation))}
    impacts: dict[uuid.UUID, OrganisationImpact] = {}

    def impact_of(org_id: uuid.UUID) -> OrganisationImpact:
        if org_id not in impacts:
            org = organisations[org_id]
            impacts[org_id] = OrganisationImpact(org_id, org.name, org.kind)
        return impacts[org_id]

    regraded: list[Regraded] = []
    for entry in entries:
        now = {m["code"]: m for m in entry.measures or []}
        under = service.graded_measures(policy, entry)
        then = {m["code"]: m for m in under}
        if now == then:
            continue  # graded the same: regrading changes nothing
        regraded.append(
            Regraded(
                entry.id,
                before=tuple(now),
                after=tuple(then),
                changed=tuple(c for c in then if c in now and now[c] != then[c]),
            )
        )
        applied, lifted = service.applied_and_lifted(session, entry)  # as a re-issue counts them
        in_force = {(a.owner_org_id, a.measure): a for a in applied}
        wanted = service.targets(session, entry, today, measures=under)
        newly: dict[uuid.UUID, list[str]] = defaultdict(list)
        for org_id, measure in wanted:
            if (org_id, measure) not in in_force:
                newly[org_id].append(measure)
        for (org_id, measure), instruction in in_force.items():
            if (org_id, measure) not in wanted and service.liftable(instruction, lifted):
                impact_of(org_id).lifted.setdefault(measure, []).append(entry.id)
        for org_id, measures in newly.items():
            for measure in measures:
                ruled_out = wanted[(org_id, measure)].excluded_by is not None
                bucket = impact_of(org_id).excluded if ruled_out else impact_of(org_id).applied
                bucket.setdefault(measure, []).append(entry.id)
    return PolicyImpact(
        version=policy.version,
        active_version=service.active_policy(session).version,
        today=today,
        entries_in_force=len(entries),
        regraded=regraded,
        organisations=sorted(impacts.values(), key=lambda o: (o.kind != "enterprise", o.name)),
    )
