"""Display names of the codes the console shows (translated where shown; catalogue items carry zh/en)."""

from __future__ import annotations

from fanchaoxin.console.i18n import N_

ROLE = {
    "platform_admin": N_("Platform administrator"),
    "platform_reviewer": N_("Platform reviewer"),
    "auditor": N_("Auditor"),
    "department_officer": N_("Department officer"),
    "enterprise_operator": N_("Enterprise operator"),
    "enterprise_node": N_("Enterprise node (machine)"),
    "public": N_("Public"),
}

ENTRY_STATUS = {
    "submitted": N_("Submitted"),
    "under_review": N_("Under review"),
    "rejected": N_("Rejected"),
    "notice_period": N_("Notice period"),
    "published": N_("Published"),
    "disputed": N_("Disputed"),
    "expired": N_("Expired"),
    "revoked": N_("Revoked"),
    "repaired": N_("Repaired"),
}

ACTION = {
    "start_review": N_("Start review"),
    "reject": N_("Reject"),
    "open_notice": N_("Open notice period"),
    "publish": N_("Publish"),
    "dispute": N_("Mark disputed"),
    "resolve_dispute": N_("Resolve dispute"),
    "revoke": N_("Revoke"),
    "expire": N_("Expire"),
    "repair": N_("Credit repair"),
}

BASIS = {
    "administrative_penalty": N_("Administrative penalty"),
    "judicial_decision": N_("Judicial decision"),
    "enterprise_finding": N_("Enterprise finding"),
}

ENTRY_ROLE = {
    "organizer": N_("Organiser"),
    "participant": N_("Participant"),
    "facilitator": N_("Facilitator"),
}

CASE_STATUS = {
    "open": N_("Open"),
    "forwarded": N_("Forwarded"),
    "answered": N_("Answered"),
    "decided": N_("Decided"),
    "received": N_("Received"),
    "routed": N_("Routed"),
    "handled": N_("Handled"),
    "dismissed": N_("Dismissed"),
}

OUTCOME = {
    "upheld": N_("Upheld"),
    "corrected": N_("Corrected"),
    "revoked": N_("Revoked (entry withdrawn)"),
    "approved": N_("Approved (entry repaired)"),
    "rejected": N_("Refused"),
    "substantiated": N_("Substantiated"),
    "unsubstantiated": N_("Unsubstantiated"),
    "forwarded": N_("Forwarded to another authority"),
    "route": N_("Route to an organisation"),
    "dismiss": N_("Dismiss"),
}

INSTRUCTION_STATUS = {
    "pending": N_("Pending"),
    "acknowledged": N_("Acknowledged"),
    "executed": N_("Executed"),
    "not_applicable": N_("Not applicable"),
    "failed": N_("Failed"),
}

INSTRUCTION_KIND = {"apply": N_("Apply"), "lift": N_("Lift")}

ORG_KIND = {"platform": N_("Platform"), "department": N_("Department"), "enterprise": N_("Enterprise")}

IDENTIFIER = {
    "uscc": N_("Unified social credit code (USCC)"),
    "resident_id": N_("Resident ID number"),
    "phone": N_("Mobile phone"),
    "email": N_("E-mail"),
    "domain": N_("Domain name"),
    "app": N_("App package name"),
    "platform_account": N_("Platform account"),
    "social_account": N_("Social media account"),
    "device": N_("Device identifier"),
    "courier_staff": N_("Courier staff number"),
    "waybill_prefix": N_("Waybill prefix"),
}

ALL = {
    "role": ROLE,
    "entry_status": ENTRY_STATUS,
    "action": ACTION,
    "basis": BASIS,
    "entry_role": ENTRY_ROLE,
    "case_status": CASE_STATUS,
    "outcome": OUTCOME,
    "instruction_status": INSTRUCTION_STATUS,
    "instruction_kind": INSTRUCTION_KIND,
    "org_kind": ORG_KIND,
    "identifier": IDENTIFIER,
}
