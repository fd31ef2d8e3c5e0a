"""Text messages (短信) to a listed subject's mobile phone: the notice before listing (告知书) by SMS.

An SMS provider is a `SmsSender`; the platform ships the logging backend (`LogSms`, `FCX_SMS_BACKEND=log`,
the default), which keeps what it sent in memory and logs it with the number masked. A deployment plugs
in its provider's client with `set_sms_sender` (each SMS gateway in China has its own signed API and
template approval; none is a dependency of the platform). Like e-mail, an SMS is sent only once the
transaction that issued it has committed (`appeals.notify.queue_call`), and its outcome is reported to
the receipt the caller gives.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from fanchaoxin.appeals.notify import Receipt, queue_call
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.settings import get_settings

log = logging.getLogger(__name__)

BACKENDS = ("log",)


@dataclass(frozen=True)
class Sms:
    to: str  # canonical E.164 (+8613812345678)
    text: str
    case: str  # the notice number (or tracking number) it is about
    event: str  # e.g. notice.issued


class SmsSender(Protocol):
    """An SMS provider: sends one message or raises."""

    def send(self, sms: Sms) -> None: ...


class LogSms:
    """Keeps every SMS in `sent` and logs it (the number masked): development, tests, dry runs."""

    def __init__(self) -> None:
        self.sent: list[Sms] = []
        self._lock = threading.Lock()

    def send(self, sms: Sms) -> None:
        with self._lock:
            self.sent.append(sms)
        log.info("sms %s on %s to %s", sms.event, sms.case, _masked(sms.to))

    def for_case(self, case: str) -> list[Sms]:
        with self._lock:
            return [m for m in self.sent if m.case == case]


def _masked(number: str) -> str:
    try:
        return mask("phone", number)
    except Exception:
        return "***"


_lock = threading.Lock()
_sender: SmsSender | None = None


def get_sms_sender() -> SmsSender:
    """The process's SMS sender, made from the settings (`FCX_SMS_BACKEND`) on first use."""
    global _sender
    with _lock:
        if _sender is None:
            backend = get_settings().sms_backend
            if backend not in BACKENDS:
                raise ValueError(
                    f"FCX_SMS_BACKEND={backend!r} is not known; one of {', '.join(BACKENDS)} "
                    "(a provider's client is installed with appeals.sms.set_sms_sender)"
                )
            _sender = LogSms()
        return _sender


def set_sms_sender(sender: SmsSender | None) -> SmsSender | None:
    """Replace the process's SMS sender (a provider's client, tests); returns the previous one."""
    global _sender
    with _lock:
        previous, _sender = _sender, sender
        return previous


def queue_sms(session: Session, sms: Sms, on_result: Receipt | None = None) -> None:
    """Send `sms` once the session's transaction has committed; never if it rolls back."""
    queue_call(
        session,
        f"sms {sms.event} on {sms.case}",
        lambda: get_sms_sender().send(sms),
        on_result,
    )
