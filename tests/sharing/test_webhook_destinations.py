"""Webhook destinations (SSRF): the delivery connects to the address it checked, never to a second
lookup; addresses that wrap a private IPv4 are refused; departments only over https (#13).

Nothing here touches the network: name lookups are answered by a fake ``socket.getaddrinfo`` (or an
injected resolver), and connections are recorded by a fake ``socket.create_connection`` that refuses.
"""

from __future__ import annotations

import socket

import httpx
import pytest
from sqlalchemy import select

from fanchaoxin.core.roles import Role
from fanchaoxin.sharing import outbox
from fanchaoxin.sharing.models import OutboxItem
from tests.blacklist.registry_helpers import judicial
from tests.sharing import test_sharing
from tests.sharing.test_sharing import publish

settings = test_sharing.settings
market = test_sharing.market

PUBLIC = "93.184.215.14"  # a global unicast address; never actually connected to here
_real_getaddrinfo = socket.getaddrinfo


class FakeDNS:
    """Answers for names ending in ``.example``; a list of answers is served one per lookup (the last
    one repeated), as a rebinding name server would. Other names go to the real resolver (numeric
    addresses and localhost only, in these tests)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else str(host)
        if not name.endswith(".example"):
            return _real_getaddrinfo(host, port, *args, **kwargs)
        self.lookups.append(name)
        queue = self.answers.get(name, [[PUBLIC]])
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        out = []
        for a in addresses:
            if ":" in a:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port or 0, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0)))
        return out


@pytest.fixture
def network(monkeypatch):  # type: ignore[no-untyped-def]
    """Fake DNS; connections recorded (with the address a name would reach) and refused."""
    dns = FakeDNS({})
    connects: list[tuple[str, int]] = []

    def create_connection(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        host, port = address[0], address[1]
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            connects.append((info[4][0], port))
        raise ConnectionRefusedError(f"test: no connection to {address}")

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return dns, connects


def test_delivery_connects_only_to_the_address_it_checked(client, market, db, settings, network):
    dns, connects = network
    # Subscribed while private receivers are allowed (no lookup), delivered with the check on.
    r = client.post(
        "/v1/sharing/webhooks",
        headers=market["shop"].headers(Role.enterprise_node),
        json={"url": "http://rebind.example:8080/hook"},
    )
    assert r.status_code == 201, r.text
    publish(db, market["ride"].org.id, judicial())
    settings.sharing_webhook_allow_private = False
    # The check's lookup gets a public address; any later lookup would get the platform's own host.
    dns.answers["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]

    assert outbox.deliver_due(db, settings=settings) == {"delivered": 0, "failed": 1, "dead": 0}
    assert connects == [(PUBLIC, 8080)]
    assert dns.lookups == ["rebind.example"]


def test_the_request_goes_to_the_checked_ip_with_the_hostname_for_host_and_tls():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    lookups: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append((host, port))
        return ["2606:2800:21f:cb07:6820:80da:af6b:8b2c", PUBLIC]

    with httpx.Client(transport=httpx.MockTransport(handler)) as c:
        r = outbox.pinned_post(
            c,
            "https://hook.example:8443/in?x=1",
            content=b"{}",
            headers={"X-FCX-Event-Id": "evt_1"},
            allow_private=False,
            resolver=resolver,
        )
    assert r.status_code == 204 and lookups == [("hook.example", 8443)]
    [request] = seen
    assert request.url.host == "2606:2800:21f:cb07:6820:80da:af6b:8b2c" and request.url.port == 8443
    assert request.url.raw_path == b"/in?x=1"
    assert request.headers["host"] == "hook.example:8443"
    assert request.extensions["sni_hostname"] == "hook.example"  # SNI and certificate name
    assert request.headers["x-fcx-event-id"] == "evt_1"


REFUSED = {
    "http://[64:ff9b::7f00:1]/x": "NAT64 address of 127.0.0.1",
    "http://[64:ff9b::a9fe:a9fe]/x": "NAT64 address of 169.254.169.254",
    "http://[64:ff9b:1::a00:1]/x": "local-use NAT64",
    "http://[2002:a00:1::1]/x": "6to4 address of 10.0.0.1",
    "http://[2002:7f00:1::]/x": "6to4 address of 127.0.0.1",
    "http://[::ffff:127.0.0.1]/x": "IPv4-mapped",
    "http://[::ffff:8.8.8.8]/x": "IPv4-mapped",
    "http://[::7f00:1]/x": "IPv4-compatible",
    "http://[fe80::1%25eth0]/x": "zone",
    "http://[ff02::1]/x": "multicast",
    "http://224.0.0.1/x": "multicast",
    "http://169.254.169.254/latest/meta-data": "private",
    "http://mapped.example/x": "IPv4-mapped",
    "http://nat64.example/x": "NAT64 address of 10.1.2.3",
    "http://zone.example/x": "zone",
    "http://mixed.example/x": "private",  # one public, one private address: refused
}


def test_addresses_that_wrap_a_private_ipv4_are_refused(client, market, settings, network):
    dns, _ = network
    dns.answers.update(
        {
            "mapped.example": [["::ffff:10.0.0.7"]],
            "nat64.example": [["64:ff9b::a01:203"]],
            "zone.example": [["fe80::1%2"]],
            "mixed.example": [[PUBLIC, "192.168.1.10"]],
        }
    )
    settings.sharing_webhook_allow_private = False
    op = market["shop"].headers(Role.enterprise_operator)
    for url, why in REFUSED.items():
        r = client.post("/v1/sharing/webhooks", headers=op, json={"url": url})
        assert r.status_code == 422, (url, r.text)
        [error] = r.json()["errors"]
        assert error["field"] == "url" and why in error["message"], (url, error)
    # NAT64 and 6to4 of public addresses are public.
    for url in ("https://[64:ff9b::808:808]/x", "https://[2002:808:808::1]/x", "https://ok.example/x"):
        r = client.post("/v1/sharing/webhooks", headers=op, json={"url": url})
        assert r.status_code == 201, (url, r.text)


def test_injected_resolver_is_what_the_check_reads():
    answers = {
        "a.example": ["64:ff9b::c0a8:101"],
        "b.example": ["2002:c0a8:101::1"],
        "c.example": ["::ffff:192.168.1.1"],
        "d.example": ["fe80::1%3"],
        "e.example": ["64:ff9b::808:808", "2002:808:808::"],
    }

    def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    for host in "abcd":
        assert outbox.destination_problem(f"https://{host}.example/", allow_private=False, resolver=resolver)
    assert outbox.destination_problem("https://e.example/", allow_private=False, resolver=resolver) is None
    assert outbox.destination_problem("https://a.example/", allow_private=True, resolver=resolver) is None


def test_department_webhooks_are_https_only(client, market, db, settings, network):
    _, connects = network
    dept = market["dept"].headers()
    # Allowed on a private network (the setting), as before.
    r = client.post("/v1/sharing/webhooks", headers=dept, json={"url": "http://dept.example/old"})
    assert r.status_code == 201, r.text

    settings.sharing_webhook_allow_private = False
    r = client.post("/v1/sharing/webhooks", headers=dept, json={"url": "http://dept.example/hook"})
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "url" and "https://" in error["message"]
    r = client.post("/v1/sharing/webhooks", headers=dept, json={"url": "https://dept.example/hook"})
    assert r.status_code == 201, r.text
    # An enterprise receives tags only: plain http stays allowed for it.
    r = client.post(
        "/v1/sharing/webhooks",
        headers=market["shop"].headers(Role.enterprise_operator),
        json={"url": "http://shop.example/hook"},
    )
    assert r.status_code == 201, r.text

    # The old http:// subscription gets nothing in plain text: refused before any connection.
    publish(db, market["ride"].org.id, judicial())
    outbox.deliver_due(db, settings=settings)
    with db.session() as s:
        items = {i.webhook.url: i for i in s.scalars(select(OutboxItem))}
        assert items["http://dept.example/old"].status == "pending"
        assert "https://" in (items["http://dept.example/old"].last_error or "")
    assert (PUBLIC, 80) in connects and (PUBLIC, 443) in connects  # the shop's and the new https hook
    assert len(connects) == 2
