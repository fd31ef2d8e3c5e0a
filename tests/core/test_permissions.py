"""core.permissions: each access rule written once; the routes built on it admit exactly whom they did."""

import pytest
from fastapi.routing import APIRoute

from fanchaoxin.core import permissions as P
from fanchaoxin.core.auth import PLATFORM_ROLES, STAFF_ROLES, Principal, iter_routes, route_access
from fanchaoxin.core.roles import Role as R

ADMIN, REVIEWER, AUDITOR = "platform_admin", "platform_reviewer", "auditor"
DEPT, OPERATOR, NODE = "department_officer", "enterprise_operator", "enterprise_node"
STAFF = {ADMIN, AUDITOR, DEPT, NODE, OPERATOR, REVIEWER}


def names(roles) -> set[str]:
    return {r.value for r in roles}


def test_the_role_sets():
    assert P.PLATFORM is PLATFORM_ROLES and P.STAFF is STAFF_ROLES
    assert names(P.PLATFORM) == {ADMIN, AUDITOR, REVIEWER}
    assert names(P.STAFF) == names(P.ENTRY_READERS) == STAFF
    assert names(P.REVIEWERS) == {ADMIN, REVIEWER}
    assert names(P.SEE_REVOKED) == names(P.AUDIT_READERS) == {ADMIN, AUDITOR}
    assert names(P.SUBMITTERS) == {DEPT, OPERATOR, ADMIN, REVIEWER}
    assert names(P.SUBJECT_READERS) == {AUDITOR, ADMIN, REVIEWER}
    assert names(P.EVIDENCE_READERS) == {AUDITOR, DEPT, OPERATOR, ADMIN, REVIEWER}
    assert names(P.STATS_ENTRY_READERS) == {AUDITOR, DEPT, ADMIN, REVIEWER}
    assert names(P.STATS_MEASURE_READERS) == STAFF
    assert names(P.CASE_ADDRESSEES) == {DEPT, OPERATOR}
    assert names(P.INSTRUCTION_ADDRESSEES) == {DEPT, NODE, OPERATOR}
    assert names(P.KEY_MANAGERS) == {DEPT, OPERATOR, ADMIN}


@pytest.mark.parametrize("role", list(R))
def test_only_a_reviewer_may_reveal(role):
    principal = Principal(role=role)
    assert P.may_reveal(principal) is (role in (R.platform_reviewer, R.platform_admin))
    assert P.sees_revoked(principal) is (role in (R.platform_admin, R.auditor))
    assert P.own_figures_only(principal) is (role in (R.enterprise_operator, R.enterprise_node))


# The routes whose rules come from core.permissions, with the roles each admitted before it did.
ROUTES = {
    "GET /v1/audit/events": {AUDITOR, ADMIN},
    "GET /v1/audit/verify": {AUDITOR, ADMIN},
    "POST /v1/identifiers/validate": STAFF,
    "GET /v1/entries": STAFF,
    "GET /v1/entries/{entry_id}": STAFF,
    "GET /v1/lookup": STAFF,
    "POST /v1/entries": {DEPT, OPERATOR, ADMIN, REVIEWER},
    "POST /v1/uploads": {DEPT, OPERATOR, ADMIN, REVIEWER},
    "POST /v1/evidence/{entry_id}": {DEPT, OPERATOR, ADMIN, REVIEWER},
    "GET /v1/evidence/{entry_id}/{digest}": {AUDITOR, DEPT, OPERATOR, ADMIN, REVIEWER},
    "POST /v1/entries/{entry_id}/transitions": {ADMIN, REVIEWER},
    "GET /v1/subjects/{subject_id}": {AUDITOR, ADMIN, REVIEWER},
    "GET /v1/merge-proposals": {ADMIN, REVIEWER},
    "POST /v1/merge-proposals/{proposal_id}/dismiss": {ADMIN, REVIEWER},
    "GET /v1/stats/entries": {AUDITOR, DEPT, ADMIN, REVIEWER},
    "GET /v1/stats/measures": STAFF,
    "GET /v1/stats/coordination": STAFF,  # #22: an enterprise sees its own row
    "GET /v1/stats/cases": {AUDITOR, ADMIN, REVIEWER},
    "GET /v1/stats/public": {"public"},
    # #22: the information-sharing agreement
    "GET /v1/agreements/versions": STAFF,
    "POST /v1/agreements/versions": {ADMIN},
    "GET /v1/agreements/versions/current": STAFF,
    "GET /v1/agreements/participants": {AUDITOR, ADMIN, REVIEWER},
    "GET /v1/organisations/{org_id}/agreement": {AUDITOR, ADMIN, REVIEWER, OPERATOR},
    "GET /v1/organisations/{org_id}/agreement/signatures/{signature_id}/pdf": {AUDITOR, ADMIN, REVIEWER, OPERATOR},
    "POST /v1/organisations/{org_id}/agreement/application": {OPERATOR},
    "POST /v1/organisations/{org_id}/agreement/signatures": {OPERATOR},
    "POST /v1/organisations/{org_id}/agreement/withdrawal": {OPERATOR},
    "POST /v1/organisations/{org_id}/agreement/suspension": {ADMIN},
    "POST /v1/organisations/{org_id}/agreement/reinstatement": {ADMIN},
    "PUT /v1/organisations/{org_id}/contact-email": {ADMIN, DEPT, OPERATOR},
    # #22: each enterprise's rulebook
    "GET /v1/organisations/{org_id}/rulebook": {ADMIN, AUDITOR, REVIEWER, OPERATOR, NODE},
    "PUT /v1/organisations/{org_id}/rulebook": {ADMIN, OPERATOR},
    "GET /v1/rulebooks": {ADMIN, AUDITOR, REVIEWER},
    "GET /v1/rulebook": {OPERATOR, NODE},  # the caller's own: what its node keeps
    # #22: the regular consultation (定期会商)
    "POST /v1/consultation/meetings": {ADMIN},
    "GET /v1/consultation/meetings": {ADMIN, REVIEWER, AUDITOR, DEPT, OPERATOR},
    "GET /v1/consultation/meetings/{meeting_id}": {ADMIN, REVIEWER, AUDITOR, DEPT, OPERATOR},
    "POST /v1/consultation/meetings/{meeting_id}/attendance": {ADMIN},
    "POST /v1/consultation/meetings/{meeting_id}/minutes": {ADMIN},
    "POST /v1/consultation/meetings/{meeting_id}/hold": {ADMIN},
    "POST /v1/consultation/meetings/{meeting_id}/cancellation": {ADMIN},
    "POST /v1/consultation/meetings/{meeting_id}/decisions": {ADMIN},
    "POST /v1/consultation/meetings/{meeting_id}/action-items": {ADMIN},
    "POST /v1/consultation/agenda-items": {ADMIN, REVIEWER, DEPT, OPERATOR},
    "GET /v1/consultation/agenda-items": {ADMIN, REVIEWER, AUDITOR, DEPT, OPERATOR},
    "POST /v1/consultation/agenda-items/{item_id}/schedule": {ADMIN},
    "POST /v1/consultation/agenda-items/{item_id}/withdrawal": {ADMIN, REVIEWER, DEPT, OPERATOR},
    "GET /v1/consultation/decisions/{decision_id}": {ADMIN, REVIEWER, AUDITOR, DEPT, OPERATOR},
    "POST /v1/consultation/decisions/{decision_id}/policy": {ADMIN},
    "GET /v1/consultation/action-items": {ADMIN, REVIEWER, AUDITOR, DEPT, OPERATOR},
    "POST /v1/consultation/action-items/{item_id}/closure": {ADMIN, DEPT, OPERATOR},
}


def test_routes_admit_exactly_whom_they_did(app):
    found = {}
    for path, route in iter_routes(app.routes):
        if isinstance(route, APIRoute):
            for method in route.methods:
                found[f"{method} {path}"] = route_access(route)
    for route, roles in ROUTES.items():
        assert route in found, f"no route {route}"
        assert names(found[route].roles) == roles, route


# The routes an enterprise may call only while its sharing agreement is in force (#22).
GATED = {
    "GET /v1/feed", "GET /v1/sharing/manifest", "GET /v1/sharing/snapshots/{seq}", "GET /v1/sharing/deltas",
    "POST /v1/sharing/evaluate", "POST /v1/decisions", "GET /v1/instructions", "POST /v1/instructions/ack",
    "POST /v1/instructions/feedback", "POST /v1/instructions/{instruction_id}/ack",
    "POST /v1/instructions/{instruction_id}/feedback", "GET /v1/lookup", "POST /v1/lookup",
}  # fmt: skip


def test_the_shared_list_and_instructions_need_an_agreement_in_force(app):
    gated = set()
    for path, route in iter_routes(app.routes):
        if isinstance(route, APIRoute) and isinstance(route_access(route), P.ParticipantAccess):
            gated |= {f"{method} {path}" for method in route.methods}
    assert gated == GATED


def test_require_agreement():
    P.require_agreement(Principal(role=R.department_officer))
    P.require_agreement(Principal(role=R.enterprise_node, agreement="agreement.in_force"))
    suspended = Principal(role=R.enterprise_node, agreement="agreement.suspended", agreement_params=(("reason", "泄露"),))
    with pytest.raises(P.Forbidden) as refused:
        P.require_agreement(suspended)
    assert (refused.value.code, refused.value.params) == ("agreement.suspended", {"reason": "泄露"})
