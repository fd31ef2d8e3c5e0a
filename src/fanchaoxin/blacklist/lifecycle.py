"""The entry state machine — the one place that says which step may follow which.

```
submitted → under_review → rejected
                         → notice_period → published      (enterprise findings: 告知 + 陈述申辩 first)
                         → published                      (administrative / judicial basis only)
            notice_period → rejected                      (the subject's statement convinced the reviewer)
published ⇄ disputed                                       (an objection is open)
published | disputed → expired | revoked | repaired        (the entry ends)
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from fanchaoxin.core.catalogue import notice_bases
from fanchaoxin.core.errors import Conflict, ValidationProblem


class Status(StrEnum):
    submitted = "submitted"
    under_review = "under_review"
    rejected = "rejected"
    notice_period = "notice_period"
    published = "published"
    disputed = "disputed"
    expired = "expired"
    revoked = "revoked"
    repaired = "repaired"


class Action(StrEnum):
    start_review = "start_review"
    reject = "reject"
    open_notice = "open_notice"  # 告知: tell the subject, open the 陈述申辩 period
    publish = "publish"
    dispute = "dispute"  # an objection was filed (异议)
    resolve_dispute = "resolve_dispute"  # the objection ended with the entry upheld or corrected
    revoke = "revoke"  # 撤销
    expire = "expire"  # the maximum period has passed
    repair = "repair"  # 信用修复 approved


S, A = Status, Action

TRANSITIONS: dict[tuple[Status, Action], Status] = {
    (S.submitted, A.start_review): S.under_review,
    (S.under_review, A.reject): S.rejected,
    (S.under_review, A.open_notice): S.notice_period,
    (S.under_review, A.publish): S.published,
    (S.notice_period, A.reject): S.rejected,
    (S.notice_period, A.publish): S.published,
    (S.published, A.dispute): S.disputed,
    (S.disputed, A.resolve_dispute): S.published,
    (S.published, A.revoke): S.revoked,
    (S.disputed, A.revoke): S.revoked,
    (S.published, A.expire): S.expired,
    (S.disputed, A.expire): S.expired,
    (S.published, A.repair): S.repaired,
    (S.disputed, A.repair): S.repaired,
}

# Statuses in which an entry is in force: shared with all participants, in the feed, in decide().
IN_FORCE = frozenset({S.published, S.disputed})
FINAL = frozenset({S.rejected, S.expired, S.revoked, S.repaired})
# Statuses that end punishment: every measure applied is lifted (解除惩戒).
LIFTED = frozenset({S.expired, S.revoked, S.repaired})
# The change-feed event each step announces; steps not named here change nothing participants see.
FEED_EVENT: dict[Action, str] = {
    A.publish: "published",
    A.dispute: "disputed",
    A.resolve_dispute: "undisputed",
    A.revoke: "revoked",
    A.expire: "expired",
    A.repair: "repaired",
}
# Steps of a unit's entry that its liable persons' entries follow.
FOLLOWED_BY_LINKED = frozenset({A.dispute, A.resolve_dispute, A.revoke, A.expire, A.repair})
# Actions a reviewer must give a reason for (the subject and the audit trail are owed one).
NEEDS_REASON = frozenset({A.reject, A.revoke, A.repair, A.dispute, A.resolve_dispute})


@dataclass(frozen=True)
class EntryFacts:
    """What the guards need to know about an entry."""

    status: Status
    basis: str
    notice_ends_on: date | None
    min_end_on: date | None
    max_end_on: date | None
    is_linked: bool  # a liable person's entry follows its unit's entry


def next_status(
    facts: EntryFacts, action: Action, *, today: date, reason: str = "", system: bool = False
) -> Status:
    """The status after `action`, or a 409 that says why the step is not allowed now."""
    target = TRANSITIONS.get((facts.status, action))
    if target is None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == facts.status)
        raise Conflict(
            f"Cannot {action.value} an entry that is {facts.status.value}"
            + (f"; possible now: {', '.join(allowed)}" if allowed else "; it is final"),
            code="entry.step_not_allowed" if allowed else "entry.final",
            params={"action": action.value, "status": facts.status.value, "allowed": allowed},
        )
    if facts.is_linked and not system:
        raise Conflict(
            "A liable person's entry follows its unit's entry; act on the unit's entry",
            code="entry.follows_unit",
        )
    if action in NEEDS_REASON and not reason.strip():
        raise ValidationProblem(
            f"{action.value} needs a reason",
            code="entry.reason_required",
            params={"action": action.value},
            errors=[{"in": "body", "field": "reason", "type": "missing", "message": "give the reason"}],
        )
    if action == A.publish:
        # A liable person's entry needs no notice of its own: the unit's notice period covered it.
        if facts.status == S.under_review and facts.basis in notice_bases() and not facts.is_linked:
            raise Conflict(
                "An enterprise finding is published only after the notice period (告知 + 陈述申辩); "
                "open_notice first",
                code="entry.notice_first",
            )
        if facts.status == S.notice_period and facts.notice_ends_on and today <= facts.notice_ends_on:
            raise Conflict(
                f"The notice period runs until {facts.notice_ends_on.isoformat()} inclusive",
                code="entry.notice_running",
                params={"until": facts.notice_ends_on.isoformat()},
            )
    if action == A.repair and facts.min_end_on and today < facts.min_end_on:
        raise Conflict(
            f"Credit repair is possible from {facts.min_end_on.isoformat()} (the minimum period)",
            code="entry.repair_not_yet",
            params={"from": facts.min_end_on.isoformat()},
        )
    if action == A.expire and (facts.max_end_on is None or today < facts.max_end_on):
        raise Conflict("The entry has not reached its maximum period", code="entry.not_at_max")
    return target


def possible_actions(facts: EntryFacts, *, today: date, system: bool = False) -> list[Action]:
    """The steps `next_status` allows now, in the order of TRANSITIONS (a reason is asked for with the
    step itself, so it is taken as given here). The console offers these and no other."""
    possible: list[Action] = []
    for status, action in TRANSITIONS:
        if status != facts.status:
            continue
        try:
            next_status(facts, action, today=today, reason="-", system=system)
        except (Conflict, ValidationProblem):
            continue
        possible.append(action)
    return possible
