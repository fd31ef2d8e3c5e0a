"""Display names of the codes the console shows, in the page's language.

The domain vocabularies — behaviours, severities, subject kinds, bases, entry and case statuses — are
named by their catalogue (core.catalogue: each item carries zh and en), nowhere else. The console's own
vocabularies below (roles, actions, outcomes, identifier types, organisation kinds …) are English
message ids, translated with gettext.
"""

from __future__ import annotations

from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.core.catalogue import VOCABULARIES, catalogues
from fanchaoxin.sanctions.policy import measure_catalogue

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
    # Rows of an entry's history that are not steps a reviewer takes: its submission, a liable person's
    # entry opened with its unit's, the notice period running out.
    "submit": N_("Submitted"),
    "link": N_("Opened with its unit's entry"),
    "notice_ended": N_("Notice period ended"),
    "reject_identifier": N_("Reject a proposed identifier"),
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
    # issued final: the addressee's rulebook excludes the measure (orgs.rulebook); msgid in rulebooks.po
    "excluded_by_rule": N_("Not applicable by its rules"),
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

CASE_KIND = {
    "objection": N_("Objection"),
    "repair": N_("Credit repair application"),
    "report": N_("Report"),
    "statement": N_("Statement"),
}

PROPOSAL_STATUS = {
    "proposed": N_("Proposed"),
    "joined": N_("Joined the subject"),
    "taken": N_("Already another subject's"),
    "rejected": N_("Rejected"),
}

# What the audit log records (审计日志): every action `audit.record` is called with, in words. A test
# walks the code for the actions it records and fails on one without a name here.
AUDIT_ACTION = {
    # the information-sharing agreement (#22): msgids in agreements.po
    "agreement.publish": N_("Published an agreement version"),
    "agreement.apply": N_("Applied to take part in the joint action"),
    "agreement.sign": N_("Signed the sharing agreement"),
    "agreement.suspend": N_("Suspended an enterprise's sharing agreement"),
    "agreement.reinstate": N_("Lifted an enterprise's suspension"),
    "agreement.withdraw": N_("Withdrew from the joint action"),
    "agreement.pdf.read": N_("Read a signed agreement's PDF"),
    "agreement.resign_request": N_("Asked an enterprise to re-sign the sharing agreement"),
    "organisation.set_contact_email": N_("Set an organisation's contact e-mail"),
    "rulebook.set": N_("Set an enterprise's rulebook"),  # msgid in rulebooks.po
    "access_log.read": N_("Read the log of who looked a subject up"),
    "access_log.refused": N_("Refused a request for the log of who looked a subject up"),
    "api_key.create": N_("Issued an API key"),
    "api_key.revoke": N_("Revoked an API key"),
    "attachment.read": N_("Opened an attachment"),
    "audit.search": N_("Searched the audit log"),
    "auth.refused": N_("Refused an API key"),
    "case.progress": N_("Checked a case's progress"),
    "case.material_sent": N_("Sent the material asked for (补正)"),
    "commitment.breach": N_("Recorded a breach of a credit commitment"),
    "commitment.breach_withdrawn": N_("Withdrew a breach of a credit commitment"),
    "commitment.fulfil": N_("Recorded a credit commitment as kept"),
    "commitment.record": N_("Recorded a credit commitment"),
    "console.sign_in": N_("Signed in to the console"),
    "console.sign_in_failed": N_("Failed to sign in to the console"),
    "console.sign_out": N_("Signed out of the console"),
    "console_user.create": N_("Created a console user"),
    "consultation.action_add": N_("Added a consultation action item"),
    "consultation.action_close": N_("Closed a consultation action item"),
    "consultation.action_remind": N_("Reminded the owner of an overdue action item"),
    "consultation.attendance": N_("Recorded attendance at a consultation meeting"),
    "consultation.decision": N_("Recorded a consultation decision"),
    "consultation.item_raise": N_("Raised a consultation agenda item"),
    "consultation.item_schedule": N_("Put an agenda item on a consultation meeting"),
    "consultation.item_withdraw": N_("Withdrew a consultation agenda item"),
    "consultation.meeting_cancel": N_("Cancelled a consultation meeting"),
    "consultation.meeting_hold": N_("Marked a consultation meeting held"),
    "consultation.meeting_schedule": N_("Scheduled a consultation meeting"),
    "consultation.minutes": N_("Wrote the minutes of a consultation meeting"),
    "consultation.policy_cite": N_("Loaded a policy citing a consultation decision"),
    "correction.publish": N_("Published a correction notice"),
    "decision_log.node_dropped": N_("A node dropped decision log records"),
    "decision_log.patterns": N_("Read the query patterns of the decision log"),
    "decision_log.read": N_("Read the decision log"),
    "entries.export": N_("Exported entries"),
    "log.cosignature": N_("A witness cosigned a log checkpoint"),
    "log.statement": N_("Issued a signed log statement"),
    "entry.correct": N_("Corrected an entry"),
    "entry.evidence_add": N_("Added evidence to an entry"),
    "entry.identifier_reject": N_("Rejected a proposed identifier"),
    "entry.identifiers_join": N_("Joined proposed identifiers to the subject"),
    "entry.notice_ended": N_("An entry's notice period ended"),
    "entry.submit": N_("Submitted an entry"),
    "entry.start_review": N_("Started reviewing an entry"),
    "entry.reject": N_("Rejected an entry"),
    "entry.open_notice": N_("Opened an entry's notice period"),
    "entry.publish": N_("Published an entry"),
    "entry.dispute": N_("Marked an entry disputed"),
    "entry.resolve_dispute": N_("Resolved an entry's dispute"),
    "entry.revoke": N_("Revoked an entry"),
    "entry.expire": N_("An entry expired"),
    "entry.repair": N_("Repaired an entry's credit"),
    "evidence.read": N_("Opened evidence"),
    "instruction.acknowledge": N_("Acknowledged an instruction"),
    "instruction.report": N_("Reported on an instruction"),
    "instructions.issue": N_("Issued instructions"),
    "lookup": N_("Looked identifiers up"),
    "merge_proposal.dismiss": N_("Dismissed a merge proposal"),
    "node.back": N_("A node is back"),
    "node.first_seen": N_("A node was seen for the first time"),
    "node.silent": N_("A node went silent"),
    "node_key.enrol": N_("Enrolled a node key"),
    "node_key.revoke": N_("Revoked a node key"),
    "notice.issue": N_("Issued a notice"),
    "notice.letter_posted": N_("Posted a notice letter"),
    "notice.read": N_("Read a notice"),
    "notice.delivered": N_("Delivered a notice"),
    "notice.delivery_failed": N_("A notice could not be delivered"),
    "objection.answer": N_("Answered an objection"),
    "objection.decide": N_("Decided an objection"),
    "objection.file": N_("Filed an objection"),
    "objection.forward": N_("Forwarded an objection"),
    "objection.identity_verified": N_("Recorded how an objector's identity was verified"),
    "objection.attachment_add": N_("Attached a file to an objection"),
    "organisation.create": N_("Registered an organisation"),
    "organisation.set_department_kind": N_("Set a department's kind"),
    "orgs.quotas.set": N_("Set an organisation's quotas"),
    "policy.load": N_("Loaded a policy"),
    "public_query": N_("Public query"),
    "repair.decide": N_("Decided a credit repair application"),
    "repair.file": N_("Applied for credit repair"),
    "repair.identity_verified": N_("Recorded how an applicant's identity was verified"),
    "repair.attachment_add": N_("Attached a file to a credit repair application"),
    "report.file": N_("Filed a report"),
    "report.handle": N_("Handled a report"),
    "report.route": N_("Routed a report"),
    "report.dismiss": N_("Dismissed a report"),
    "report.attachment_add": N_("Attached a file to a report"),
    "security.alert.cleared": N_("Cleared a security alert"),
    "security.enumeration_suspected": N_("Suspected enumeration of identifiers"),
    "sharing.dead_letter.replay": N_("Replayed undelivered shared records"),
    "sharing.delta.read": N_("Read the shared list's changes"),
    "sharing.department_delivery": N_("Delivered the list to a department"),
    "sharing.evaluate": N_("Matched identifiers privately"),
    "sharing.quota.set": N_("Set a sharing quota"),
    "sharing.snapshot.read": N_("Read the shared list"),
    "sharing.webhook.create": N_("Added a webhook"),
    "sharing.webhook.delete": N_("Removed a webhook"),
    "statement.answer": N_("Answered a statement"),
    "statement.file": N_("Filed a statement"),
    "statement.attachment_add": N_("Attached a file to a statement"),
    "supplement.request": N_("Asked for more material"),
    "subject.create": N_("Created a subject"),
    "subject.merge": N_("Merged subjects"),
    "subject.split": N_("Split a subject"),
    "upload.refuse": N_("Refused an upload"),
}

# Who acted, where it was not a person: the platform's own processes and the demo's actors.
SYSTEM_ACTOR = {
    "system": N_("System"),
    "system:jobs": N_("System (scheduled jobs)"),
    "system:appeals": N_("System (objections and credit repair)"),
    "system:node_status": N_("System (node watch)"),
    "system:demo": N_("Demo data"),
    "system:demo-reviewer": N_("Demo reviewer"),
    "public": N_("Member of the public"),
    "public:demo": N_("Member of the public (demo)"),
}
# A prefix that names the kind of actor and is followed by its own name (a user, a key, an organisation).
_ACTOR_PREFIX = {
    "user:": N_("User {name}"),
    "key:": N_("API key {name}"),
    "cli:": N_("Command line ({name})"),
    "system:demo:": N_("Demo data ({name})"),
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
    "case_kind": CASE_KIND,
    "proposal_status": PROPOSAL_STATUS,
    "audit_action": AUDIT_ACTION,
}


def label(kind: str, code: str | None, locale: str) -> str:
    """The name of `code` in `locale` (`zh_CN`, `en`); the code itself when nothing names it.

    `kind` is a catalogue vocabulary (behaviour, severity, subject_kind, basis, entry_status,
    case_status), ``measure`` (an enterprise's or a department's measure: measures.yaml,
    department_measures.yaml), or one of the console's own vocabularies (ALL).
    """
    if code is None:
        return "—"
    if kind in VOCABULARIES:
        item = catalogues().vocabulary(kind).get(code)
        return item.text(locale) if item is not None else code
    if kind == "measure":
        cat = measure_catalogue()
        found = cat.measures.get(code) or cat.department_measures.get(code)
        name = getattr(found, "zh" if locale == "zh_CN" else "en", None)
        return name if isinstance(name, str) else code
    table = ALL.get(kind, {})
    return translator(locale)(table[code]) if code in table else code


def actor(name: str | None, locale: str) -> str:
    """Who acted, in words: ``system:demo-reviewer`` → 演示审核员, ``user:alice`` → 用户 alice.

    A person's or a key's own name is kept (it is theirs, not a code); a code nothing names is shown as
    the generic word for the system rather than raw.
    """
    if not name:
        return "—"
    _ = translator(locale)
    if name in SYSTEM_ACTOR:
        return _(SYSTEM_ACTOR[name])
    for prefix in sorted(_ACTOR_PREFIX, key=len, reverse=True):
        if name.startswith(prefix):
            return _(_ACTOR_PREFIX[prefix]).format(name=name[len(prefix) :])
    if name.startswith("system:"):
        return _(SYSTEM_ACTOR["system"])
    return name
