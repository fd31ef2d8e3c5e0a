"""Notifications to objectors, applicants, reporters, filers of statements and listed subjects (e-mail).

Services *queue* a message in the session (`queue`); it is sent only after the transaction commits,
so a rolled-back change never mails anybody, and a mail server that is down never loses a change
(the failure is logged; the case's tracking page shows the same status). The hook is the session's
own (`send_after_commit`), set when it first queues a message: no process-wide session listener.
Other deliveries that must wait for the commit (an SMS of the notice before listing, `appeals.sms`)
go through the same queue (`queue_call`).

A message may carry files (the notice's PDF) and a receipt (`on_result`): called after the attempt
with whether it went out, so that the sender can record the delivery (the notice's delivery status).

`LogNotifier` (development and tests) keeps what it sent in memory and logs it with the recipient
masked; `SmtpNotifier` sends through the SMTP server named in the settings (`FCX_SMTP_*`).
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.settings import Settings, get_settings

log = logging.getLogger(__name__)

OUTBOX = "fcx_outbox"  # session.info key of the messages queued in its transaction
_HOOKED = "fcx_outbox_hooked"  # session.info key: the session sends its queue after commit


# After an attempt to deliver: (whether it went out, why not — never the recipient's address).
Receipt = Callable[[bool, str | None], None]


@dataclass(frozen=True)
class MailFile:
    """A file sent with a message (the notice's PDF)."""

    filename: str
    media_type: str  # e.g. application/pdf
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    body: str
    case: str  # the tracking number (or notice number) the message is about
    event: str  # e.g. objection.filed
    files: tuple[MailFile, ...] = ()
    on_result: Receipt | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    """A delivery of another kind (an SMS) that waits for the commit like a message."""

    what: str  # for the log: e.g. "sms notice.issued on GZ20261205-…"
    send: Callable[[], None] = field(repr=False)
    on_result: Receipt | None = field(default=None, compare=False, repr=False)


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
        for f in message.files:
            maintype, _, subtype = f.media_type.partition("/")
            mail.add_attachment(
                f.data, maintype=maintype, subtype=subtype or "octet-stream", filename=f.filename
            )
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


def queue(session: Session, message: Message | Call) -> None:
    """Send `message` once the session's transaction has committed; never if it rolls back."""
    outbox: list[Message | Call] | None = session.info.get(OUTBOX)
    if outbox is None:
        outbox = session.info[OUTBOX] = []
        send_after_commit(session)
    outbox.append(message)


def queue_call(
    session: Session, what: str, send: Callable[[], None], on_result: Receipt | None = None
) -> None:
    """Run `send` once the session's transaction has committed (an SMS), with its receipt."""
    queue(session, Call(what, send, on_result))


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
    messages: list[Message | Call] = session.info.pop(OUTBOX, None) or []
    if not messages:
        return
    notifier = get_notifier()
    for message in messages:
        error: str | None = None
        try:
            if isinstance(message, Call):
                message.send()
            else:
                notifier.send(message)
        except Exception as exc:
            what = message.what if isinstance(message, Call) else f"{message.event} on {message.case}"
            log.exception("could not send %s", what)
            # The kind of failure only: a mail server's message may repeat the recipient's address.
            error = type(exc).__name__
        if message.on_result is not None:
            try:
                message.on_result(error is None, error)
            except Exception:
                log.exception("could not record the delivery receipt")


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
    "statement.filed": (
        "陈述申辩已受理 Statement received ({tracking})",
        "您就告知书 {notice} 提交的陈述申辩已受理。审核人员将在作出决定时逐项答复。\n"
        "Your statement on notice {notice} was received; the reviewer answers it when deciding.\n"
        "告知期截止 The notice period ends on: {ends}（含当日 inclusive）" + FOOTER,
    ),
    "statement.answered": (
        "陈述申辩答复 Statement answered ({tracking})",
        "{result}\n答复 Answer: {answer}" + FOOTER,
    ),
}


def notify(session: Session, to: str | None, event_name: str, tracking: str, **values: Any) -> None:
    if not to:
        return
    subject, body = render(TEMPLATES[event_name], tracking=tracking, **values)
    queue(session, Message(to=to, subject=subject, body=body, case=tracking, event=event_name))
