"""Notifications to objectors, applicants and reporters (e-mail).

Services *queue* a message in the session (`queue`); it is sent only after the transaction commits,
so a rolled-back change never mails anybody, and a mail server that is down never loses a change
(the failure is logged; the case's tracking page shows the same status). The hook is the session's
own (`send_after_commit`), set when it first queues a message: no process-wide session listener.

`LogNotifier` (development and tests) keeps what it sent in memory and logs it with the recipient
masked; `SmtpNotifier` sends through the SMTP server named in the settings (`FCX_SMTP_*`).
"""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

OUTBOX = "fcx_outbox"  # session.info key of the messages queued in its transaction
_HOOKED = "fcx_outbox_hooked"  # session.info key: the session sends its queue after commit


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str
    case: str  # the tracking number the message is about
    event: str  # e.g. objection.filed


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


class LogNotifier:
    """Keeps every message in `sent` and logs it (recipient masked)."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self._lock = threading.Lock()

    def send(self, message: Message) -> None:
        with self._lock:
            self.sent.append(message)
        log.info("notification %s on %s to %s", message.event, message.case, _masked(message.to))

    def for_case(self, tracking_number: str) -> list[Message]:
        with self._lock:
            return [m for m in self.sent if m.case == tracking_number]


class SmtpNotifier:
    """Plain SMTP (optionally STARTTLS and login), one connection per message."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password, self.timeout = starttls, username, password, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpNotifier:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
        )

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail["X-FCX-Case"] = message.case
        mail["X-FCX-Event"] = message.event
        mail.set_content(message.body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(mail)
        log.info("mailed %s on %s to %s", message.event, message.case, _masked(message.to))


def _masked(address: str) -> str:
    try:
        return mask("email", address)
    except Exception:
        return "***"


_lock = threading.Lock()
_notifier: Notifier | None = None


def get_notifier() -> Notifier:
    """The process's notifier, made from the settings on first use."""
    global _notifier
    with _lock:
        if _notifier is None:
            settings = get_settings()
            _notifier = SmtpNotifier.from_settings(settings) if settings.notifier == "smtp" else LogNotifier()
        return _notifier


def set_notifier(notifier: Notifier | None) -> Notifier | None:
    """Replace the process's notifier (tests, embedding); returns the previous one."""
    global _notifier
    with _lock:
        previous, _notifier = _notifier, notifier
        return previous


def queue(session: Session, message: Message) -> None:
    """Send `message` once the session's transaction has committed; never if it rolls back."""
    outbox: list[Message] | None = session.info.get(OUTBOX)
    if outbox is None:
        outbox = session.info[OUTBOX] = []
        send_after_commit(session)
    outbox.append(message)


def send_after_commit(session: Session) -> None:
    """Hook this session, and no other, to send its queued messages when its transaction commits.

    One listener pair per session, registered on the first message it queues: after the commit the
    queue is sent and emptied; when the outermost transaction ends without a commit it is dropped.
    """
    if session.info.get(_HOOKED):
        return
    session.info[_HOOKED] = True
    event.listen(session, "after_commit", _deliver)
    event.listen(session, "after_transaction_end", _discard)


def _deliver(session: Session) -> None:
    messages: list[Message] = session.info.pop(OUTBOX, None) or []
    if not messages:
        return
    notifier = get_notifier()
    for message in messages:
        try:
            notifier.send(message)
        except Exception:
            log.exception("could not send %s on %s", message.event, message.case)


def _discard(session: Session, transaction: SessionTransaction) -> None:
    # After a rollback nothing happened: whatever was queued is dropped (after_commit ran first).
    if transaction.parent is None:
        session.info.pop(OUTBOX, None)


def render(template: tuple[str, str], **values: Any) -> tuple[str, str]:
    subject, body = template
    return subject.format(**values), body.format(**values)


FOOTER = (
    "\n\n查询进度 / Track it: tracking number {tracking}, with the secret you were given.\n"
    "此邮件由系统自动发送，请勿回复。This message was sent automatically; please do not reply."
)

TEMPLATES: dict[str, tuple[str, str]] = {
    "objection.filed": (
        "异议已受理 Objection received ({tracking})",
        "您对炒信黑名单记录提出的异议已受理，记录已标注为“有异议”。\n"
        "Your objection was received; the entry is now marked disputed.\n"
        "处理期限 Decision due by: {due}" + FOOTER,
    ),
    "objection.forwarded": (
        "异议已转交核查 Objection forwarded ({tracking})",
        "您的异议已转交信息提供单位核查。\nYour objection was forwarded to the reporting organisation "
        "for verification.\n答复期限 Answer due by: {answer_due}; 决定期限 decision due by: {due}" + FOOTER,
    ),
    "objection.decided": (
        "异议处理结果 Objection decided ({tracking})",
        "处理结果 Outcome: {outcome}\n理由 Reason: {reason}\n{extra}" + FOOTER,
    ),
    "repair.filed": (
        "信用修复申请已受理 Credit repair application received ({tracking})",
        "您的信用修复申请已受理。Your credit repair application was received.\n"
        "决定期限 Decision due by: {due}" + FOOTER,
    ),
    "repair.decided": (
        "信用修复申请结果 Credit repair decided ({tracking})",
        "结果 Outcome: {outcome}\n理由 Reason: {reason}" + FOOTER,
    ),
    "report.filed": (
        "举报已受理 Report received ({tracking})",
        "您的举报已受理，我们将转交相关企业或部门处理。\nYour report was received." + FOOTER,
    ),
    "report.routed": (
        "举报已转交处理 Report routed ({tracking})",
        "您的举报已转交处理，处理期限 {due}。\nYour report was routed; it is due to be handled by {due}."
        + FOOTER,
    ),
    "report.handled": (
        "举报处理结果 Report handled ({tracking})",
        "处理结果 Outcome: {outcome}" + FOOTER,
    ),
}


def notify(session: Session, to: str | None, event_name: str, tracking: str, **values: Any) -> None:
    if not to:
        return
    subject, body = render(TEMPLATES[event_name], tracking=tracking, **values)
    queue(session, Message(to=to, subject=subject, body=body, case=tracking, event=event_name))
