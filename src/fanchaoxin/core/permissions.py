"""Who may do what: the role sets routes and pages admit, and the rules that are more than a set.

A route names its roles with `allow(*permissions.REVIEWERS)` (a console page with `page(...)`); code that
decides inside a handler asks the same sets or the functions below, so that each rule is written once.
`core.auth` keeps the two sets it needs itself (PLATFORM_ROLES for tenancy, STAFF_ROLES); they are the
same objects here.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from fanchaoxin.core.auth import AGREEMENT_IN_FORCE, PLATFORM_ROLES, STAFF_ROLES, Access, Principal
from fanchaoxin.core.errors import Forbidden
from fanchaoxin.core.roles import Role

R = Role

# --- who someone is ---------------------------------------------------------------------------------------

# Platform staff (NDRC's subsystem): see every tenant's objects, within their role's routes.
PLATFORM: frozenset[Role] = PLATFORM_ROLES
# Every key holder: anyone but the public.
STAFF: frozenset[Role] = STAFF_ROLES
# Reviewers decide: review and publish entries, decide objections and repairs, triage reports, edit
# subjects — and see plain personal identifiers (may_reveal).
REVIEWERS: frozenset[Role] = frozenset({R.platform_reviewer, R.platform_admin})
# Those who keep the record: read the audit log, and still see an entry after its revocation.
RECORD_KEEPERS: frozenset[Role] = frozenset({R.platform_admin, R.auditor})
# An enterprise: its operators and its machine (`fcx node`).
ENTERPRISE: frozenset[Role] = frozenset({R.enterprise_operator, R.enterprise_node})
# The organisations a case (objection, report) is forwarded or routed to, to answer or handle it.
CASE_ADDRESSEES: frozenset[Role] = frozenset({R.enterprise_operator, R.department_officer})
# The addressees of joint-punishment instructions (enterprises apply the 13 measures, departments theirs).
INSTRUCTION_ADDRESSEES: frozenset[Role] = ENTERPRISE | {R.department_officer}
# Who may subscribe a webhook to the change feed (a machine, its operator, a department, the platform).
WEBHOOK_SUBSCRIBERS: frozenset[Role] = INSTRUCTION_ADDRESSEES | {R.platform_admin}
# Who issues and revokes API keys (each for its own organisation; the admin for any).
KEY_MANAGERS: frozenset[Role] = frozenset({R.platform_admin, R.department_officer, R.enterprise_operator})

# --- what they may do -------------------------------------------------------------------------------------

# Read entries (each within its tenancy: core.tenancy), the registry's information service. A department
# sees the lists that reach departments only (lists.yaml; blacklist.service.sees_list).
ENTRY_READERS: frozenset[Role] = STAFF
# The whole of what is shared with the participating enterprises — the change feed, its signed
# snapshots and deltas, decide() on every entry in force — holds the market-shared list (lists.yaml
# `shared`), which never reaches a department: everyone with a key but departments. Departments get the
# public list's entries through their webhooks and instructions (sharing.changes, sanctions).
SHARED_LIST_READERS: frozenset[Role] = STAFF - {R.department_officer}
# Submit entries: enterprises from their monitoring, departments from their decisions, reviewers.
SUBMITTERS: frozenset[Role] = frozenset(
    {R.enterprise_operator, R.department_officer, R.platform_reviewer, R.platform_admin}
)
# Download an entry's evidence: the platform and the organisation that submitted it (never a machine).
EVIDENCE_READERS: frozenset[Role] = PLATFORM | {R.enterprise_operator, R.department_officer}
# A subject's record, with its merge history: reviewers, and the auditor (read only).
SUBJECT_READERS: frozenset[Role] = REVIEWERS | {R.auditor}
# The audit log and its hash chain.
AUDIT_READERS: frozenset[Role] = RECORD_KEEPERS
# A revoked entry: nothing of it is shown but to those who keep the record.
SEE_REVOKED: frozenset[Role] = RECORD_KEEPERS
# Statistics of entries (departments too); of instructions (enterprises too, their own figures only).
STATS_ENTRY_READERS: frozenset[Role] = PLATFORM | {R.department_officer}
STATS_MEASURE_READERS: frozenset[Role] = STATS_ENTRY_READERS | ENTERPRISE


def may_reveal(principal: Principal) -> bool:
    """May see plain personal identifiers and names (audited): an authorised reviewer only.

    The subject itself sees its own data through due process (objections, repairs), never through this.
    """
    return principal.role in REVIEWERS


def sees_shared_list(principal: Principal) -> bool:
    """May see entries of the market-shared list (lists.yaml `shared`): not a department."""
    return principal.role in SHARED_LIST_READERS


def sees_revoked(principal: Principal) -> bool:
    return principal.role in SEE_REVOKED


def own_figures_only(principal: Principal) -> bool:
    """An enterprise sees its own instruction figures; platform staff and departments see everyone's."""
    return principal.role in ENTERPRISE


def require_agreement(principal: Principal) -> None:
    """An enterprise reads the shared list, evaluates blinded identifiers and receives instructions only
    while its information-sharing agreement is in force (orgs.agreements.standing, carried on the
    principal by the key authenticator): 403 naming the reason (`agreement.suspended` with its reason,
    `agreement.none`, `agreement.lapsed` …) otherwise. The platform and departments do not sign
    (`principal.agreement` is None)."""
    if principal.agreement is None or principal.agreement == AGREEMENT_IN_FORCE:
        return
    params = dict(principal.agreement_params)
    reason = f": {params['reason']}" if params.get("reason") else ""
    raise Forbidden(
        f"The organisation's information-sharing agreement is not in force ({principal.agreement}){reason}",
        code=principal.agreement,
        params=params,
    )


class ParticipantAccess(Access):
    """A route's rule that admits its roles and, for an enterprise, only while its agreement is in
    force (`require_agreement`)."""

    def __repr__(self) -> str:
        return f"ParticipantAccess({sorted(r.value for r in self.roles)})"

    async def __call__(self, request: Request) -> Principal:
        principal = await super().__call__(request)
        require_agreement(principal)
        return principal


def allow_participant(*roles: Role) -> Any:
    """`principal: Principal = allow_participant(...)`: `allow(...)`, and an enterprise's agreement in
    force (the shared list, blinded evaluation, decisions, instructions)."""
    return Depends(ParticipantAccess(frozenset(roles)))
