"""Asking the participants to re-sign a new agreement version (重新签署), by e-mail.

A version published with a re-signing day (`AgreementVersion.resign_by`) leaves everyone in force under an
earlier version in force until that day (orgs.agreements). Each of them is asked once to sign the new
version, and reminded once more when five PRC working days or fewer remain; both are recorded in the audit
log (`agreement.resign_request`, with the version and which of the two it was), so the jobs loop, which
runs every few minutes, never mails twice. An enterprise without a contact e-mail is recorded as not
mailed, and the platform's participants page shows who has not re-signed yet.

The e-mail lives here because the agreement rules (orgs) sit below the notifier (appeals.notify).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.appeals.notify import Message, queue
from fanchaoxin.core import audit
from fanchaoxin.core.audit import Actor, AuditEvent
from fanchaoxin.core.calendar import china_today, working_days_between
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation

RESIGN_REQUEST = "agreement.resign_request"
# The last call goes out when this many PRC working days or fewer remain before the re-signing day.
LAST_CALL_WORKING_DAYS = 5

_SUBJECT = {
    "request": "请签署新版反炒信信息共享协议 Please sign the new sharing agreement ({version})",
    "reminder": "提醒：请于{resign_by}前签署信息共享协议 Reminder: sign the sharing agreement by {resign_by}",
}
_BODY = (
    "{org}：\n"
    "反炒信信息共享协议 {version} 版已发布。贵单位按此前版本签署的协议有效至 {resign_by}（含当日）；"
    "请在此之前登录平台控制台“信息共享协议”页面签署新版本并上传签署后的 PDF。逾期未签署的，"
    "共享名单、盲化查询和联合惩戒指令将暂停，直至签署为止。\n\n"
    "Version {version} of the anti-credit-hyping information-sharing agreement has been published. Your "
    "agreement under an earlier version stays in force until {resign_by} (inclusive); sign the new version "
    "before then on the console's Sharing agreement page and upload the signed PDF. Otherwise the shared "
    "list, blinded evaluation and instructions stop until you sign.\n\n"
    "此邮件由系统自动发送，请勿回复。This message was sent automatically; please do not reply."
)


def _asked(session: Session, org: Organisation, version: str) -> set[str]:
    """Which of the two e-mails this enterprise was already sent for this version."""
    details = session.scalars(
        select(AuditEvent.detail).where(
            AuditEvent.action == RESIGN_REQUEST, AuditEvent.target_id == str(org.id)
        )
    )
    return {str(d.get("kind")) for d in details if d and d.get("version") == version}


def ask_to_resign(session: Session, actor: Actor, today: date | None = None) -> int:
    """Ask (and once more remind) every enterprise that must re-sign the current version; returns how
    many e-mails were queued (sent after the commit)."""
    today = today or china_today()
    current = agreements.current_version(session, today)
    if current is None or current.resign_by is None or today > current.resign_by:
        return 0
    kind = (
        "reminder" if working_days_between(today, current.resign_by) <= LAST_CALL_WORKING_DAYS else "request"
    )
    mailed = 0
    for org, _standing in agreements.participants_to_resign(session, today):
        asked = _asked(session, org, current.version)
        # The last call stands in for the first request when publication came late.
        if kind in asked or (kind == "request" and "reminder" in asked):
            continue
        values = {"org": org.name, "version": current.version, "resign_by": current.resign_by.isoformat()}
        if org.contact_email:
            queue(
                session,
                Message(
                    to=org.contact_email,
                    subject=_SUBJECT[kind].format(**values),
                    body=_BODY.format(**values),
                    case=f"agreement:{current.version}",
                    event=RESIGN_REQUEST,
                ),
            )
            mailed += 1
        audit.record(
            session, actor, RESIGN_REQUEST, "organisation", org.id,
            detail={"version": current.version, "kind": kind, "mailed": bool(org.contact_email),
                    "resign_by": current.resign_by.isoformat()},
        )  # fmt: skip
    return mailed
