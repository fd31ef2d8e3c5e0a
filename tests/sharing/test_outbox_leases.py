"""Two delivery workers and a slow receiver: each event is delivered once (#13).

The clock is the outbox's ``utcnow``, advanced by the receiver: every attempt of worker A takes 20
"seconds" (well within the 60 s lease); the second worker runs while A's fourth attempt is in progress.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import httpx

from fanchaoxin.core.db import utcnow
from fanchaoxin.core.roles import Role
from fanchaoxin.sharing import outbox
from tests.blacklist.registry_helpers import person_entry
from tests.sharing import test_sharing
from tests.sharing.test_sharing import publish

settings = test_sharing.settings
market = test_sharing.market

EVENTS = 5
ATTEMPT = timedelta(seconds=20)


def test_a_slow_receiver_does_not_make_a_second_worker_deliver_again(
    client, market, db, settings, monkeypatch
):
    r = client.post(
        "/v1/sharing/webhooks",
        headers=market["shop"].headers(Role.enterprise_node),
        json={"url": "http://127.0.0.1:9/hook"},  # never contacted: the transports below answer
    )
    assert r.status_code == 201, r.text
    for i in range(EVENTS):
        body = person_entry(
            subject={
                "kind": "individual",
                "name": f"用户{i}",
                "identifiers": [{"type": "phone", "value": f"1380013810{i}"}],
            }
        )
        publish(db, market["ride"].org.id, body)

    clock = [utcnow()]
    monkeypatch.setattr(outbox, "utcnow", lambda: clock[0])
    received: list[tuple[str, str]] = []

    def worker_b(request: httpx.Request) -> httpx.Response:
        received.append(("B", request.headers["X-FCX-Event-Id"]))
        return httpx.Response(204)

    b = httpx.Client(transport=httpx.MockTransport(worker_b))

    def worker_a(request: httpx.Request) -> httpx.Response:
        received.append(("A", request.headers["X-FCX-Event-Id"]))
        clock[0] += ATTEMPT  # a slow receiver
        if sum(1 for w, _ in received if w == "A") == 4:
            outbox.deliver_due(db, settings=settings, client=b)
        return httpx.Response(204)

    with httpx.Client(transport=httpx.MockTransport(worker_a)) as a, b:
        outbox.deliver_due(db, settings=settings, client=a)

    counts = Counter(event for _, event in received)
    assert len(counts) == EVENTS
    assert {e: n for e, n in counts.items() if n > 1} == {}, received
    assert {w for w, _ in received} == {"A", "B"}  # both worked
