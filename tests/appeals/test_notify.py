"""Notifications: sent after commit only, through a real SMTP server (aiosmtpd on a free port)."""

import socket
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from fanchaoxin.appeals.notify import (
    LogNotifier,
    Message,
    SmtpNotifier,
    get_notifier,
    queue,
    set_notifier,
)
from fanchaoxin.core.roles import Role


class Inbox:
    """An aiosmtpd handler that keeps what arrived."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [message_from_bytes(e.original_content) for e in self.envelopes]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def restore_notifier():
    previous = set_notifier(None)
    yield
    set_notifier(previous)


def _subject(msg):
    return str(make_header(decode_header(msg["Subject"])))


def test_smtp_notifier_delivers(smtp, restore_notifier):
    inbox, port = smtp
    notifier = SmtpNotifier("127.0.0.1", port, "noreply@fanchaoxin.test")
    notifier.send(Message("objector@example.com", "异议已受理 (YY1)", "正文 body", "YY1", "objection.filed"))
    assert len(inbox.envelopes) == 1
    env = inbox.envelopes[0]
    assert env.mail_from == "noreply@fanchaoxin.test" and env.rcpt_tos == ["objector@example.com"]
    msg = inbox.messages()[0]
    assert _subject(msg) == "异议已受理 (YY1)" and msg["X-FCX-Case"] == "YY1"
    assert "正文 body" in msg.get_payload(decode=True).decode(msg.get_content_charset() or "utf-8")


def test_settings_choose_the_notifier(settings, restore_notifier):
    settings.notifier = "smtp"
    settings.smtp_host, settings.smtp_port = "mail.example.test", 2525
    n = get_notifier()
    assert isinstance(n, SmtpNotifier) and (n.host, n.port) == ("mail.example.test", 2525)
    set_notifier(None)
    settings.notifier = "log"
    assert isinstance(get_notifier(), LogNotifier)


def test_messages_go_out_after_commit_only(db, restore_notifier):
    log = LogNotifier()
    set_notifier(log)
    m = Message("a@example.com", "s", "b", "JB1", "report.filed")
    with pytest.raises(RuntimeError), db.session() as s:
        queue(s, m)
        raise RuntimeError("the change fails")
    assert log.sent == []
    with db.session() as s:
        queue(s, m)
        assert log.sent == []  # not before the commit
    assert log.sent == [m]


def test_each_session_sends_only_what_it_queued_in_the_transaction_that_committed(db, restore_notifier):
    log = LogNotifier()
    set_notifier(log)
    dropped = Message("a@example.com", "s", "b", "JB1", "report.filed")
    kept = Message("a@example.com", "s", "b", "JB2", "report.routed")
    session = db.sessionmaker()
    try:
        session.execute(text("SELECT 1"))  # a transaction under way, as when a service queues
        queue(session, dropped)
        session.rollback()  # the change failed: its message is dropped
        session.commit()  # a later transaction of the same session that queued nothing sends nothing
        assert log.sent == []
        with db.session() as other:  # another session, committing: not hooked to the first one's queue
            session.execute(text("SELECT 1"))
            queue(session, kept)
            assert other is not session
        assert log.sent == []
        session.commit()
        assert log.sent == [kept]
    finally:
        session.close()


def test_a_public_report_mails_the_reporter_through_smtp(client, world, smtp, restore_notifier):
    inbox, port = smtp
    set_notifier(SmtpNotifier("127.0.0.1", port, "noreply@fanchaoxin.test"))
    platform = world.platform()
    shop = world.enterprise("电商")
    r = client.post(
        "/v1/public/reports",
        json={
            "description": "某店铺组织刷单，每天数百单。",
            "reported": {"shop": "某某旗舰店"},
            "contact_email": "Whistle@Example.com",
        },
    )
    assert r.status_code == 201, r.text
    tracking = r.json()["tracking_number"]
    r = client.post(
        f"/v1/reports/{r.json()['id']}/triage",
        json={"action": "route", "addressed_to_org_id": str(shop.org.id)},
        headers=platform.headers(Role.platform_reviewer),
    )
    assert r.status_code == 200
    msgs = inbox.messages()
    assert [m["X-FCX-Event"] for m in msgs] == ["report.filed", "report.routed"]
    assert all(e.rcpt_tos == ["whistle@example.com"] for e in inbox.envelopes)
    assert all(tracking in _subject(m) for m in msgs)
    body = msgs[1].get_payload(decode=True).decode(msgs[1].get_content_charset() or "utf-8")
    assert r.json()["deadlines"]["handle_due_on"] in body


def test_a_mail_server_that_is_down_loses_no_change(client, world, restore_notifier):
    set_notifier(SmtpNotifier("127.0.0.1", _free_port(), "noreply@fanchaoxin.test", timeout=2))
    r = client.post(
        "/v1/public/reports",
        json={
            "description": "某店铺组织刷单，每天数百单。",
            "reported": {"shop": "某店"},
            "contact_email": "a@example.com",
        },
    )
    assert r.status_code == 201
    secret, tracking = r.json()["secret"], r.json()["tracking_number"]
    assert client.get(f"/v1/public/reports/{tracking}?secret={secret}").json()["status"] == "received"
