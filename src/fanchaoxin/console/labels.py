"""Display names of the codes the console shows, in the page's language.

The domain vocabularies — behaviours, severities, subject kinds, bases, entry and case statuses — are
named by their catalogue (core.catalogue: each item carries zh and en), nowhere else. The console's own
vocabularies below (roles, actions, outcomes, identifier types, organisation kinds …) are English
message ids, translated with gettext.
"""

from __future__ import annotations

from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.core.catalogue import VOCABULARIES, catalogues

ROLE = {
    "platform_admin": N_("Platform administrator"),
    "platform_reviewer": N_("Platform reviewer"),
    "auditor": N_("Auditor"),
    "department_officer": N_("Department officer"),
    "enterprise_operator": N_("Enterprise operator"),
    "enterprise_node": N_("Enterprise node (machine)"),
    "public": N_("Public"),
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

ENTRY_ROLE = {
    "organizer": N_("Organiser"),
    "participant": N_("Participant"),
    "facilitator": N_("Facilitator"),
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

# The notice before listing (告知书): how it went out, and what came of it; the persons listed with a unit.
NOTICE_CHANNEL = {"email": N_("E-mail"), "sms": N_("SMS"), "letter": N_("Printed letter")}
NOTICE_DELIVERY = {
    "queued": N_("Queued"),
    "sent": N_("Sent"),
    "failed": N_("Failed"),
    "letter_required": N_("Letter to print and post"),
    "letter_posted": N_("Letter posted"),
}
LIABLE_ROLE = {
    "legal_representative": N_("Legal representative"),
    "principal": N_("Principal"),
    "directly_responsible": N_("Directly responsible person"),
}

ALL = {
    "role": ROLE,
    "action": ACTION,
    "entry_role": ENTRY_ROLE,
    "outcome": OUTCOME,
    "instruction_status": INSTRUCTION_STATUS,
    "instruction_kind": INSTRUCTION_KIND,
    "org_kind": ORG_KIND,
    "identifier": IDENTIFIER,
    "notice_channel": NOTICE_CHANNEL,
    "notice_delivery": NOTICE_DELIVERY,
    "liable_role": LIABLE_ROLE,
}


def label(kind: str, code: str | None, locale: str) -> str:
    """The name of `code` in `locale` (`zh_CN`, `en`); the code itself when nothing names it.

    `kind` is a catalogue vocabulary (behaviour, severity, subject_kind, basis, entry_status,
    case_status) or one of the console's own vocabularies (ALL).
    """
    if code is None:
        return "—"
    if kind in VOCABULARIES:
        item = catalogues().vocabulary(kind).get(code)
        return item.text(locale) if item is not None else code
    table = ALL.get(kind, {})
    return translator(locale)(table[code]) if code in table else code
