"""Numbers beyond 64 bits in a request are bad input: a 422 naming the parameter, never a 500."""

from __future__ import annotations

import pytest

from fanchaoxin.core.roles import Role

HUGE = str(2**64)

# (method, path, role, the parameter the 422 must name)
CASES = [
    ("GET", f"/v1/audit/events?after={HUGE}", Role.auditor, "after"),
    ("GET", f"/v1/feed?after={HUGE}", Role.platform_admin, "after"),
    ("GET", f"/v1/instructions?after={HUGE}", Role.platform_admin, "after"),
    ("GET", f"/v1/sharing/deltas?after={HUGE}", Role.platform_admin, "after"),
    ("GET", f"/v1/sharing/snapshots/{HUGE}", Role.platform_admin, "seq"),
    ("POST", f"/v1/sharing/dead-letters/{HUGE}/replay", Role.platform_admin, "item_id"),
    ("GET", f"/v1/objections?offset={HUGE}", Role.platform_reviewer, "offset"),
    ("GET", f"/v1/repairs?offset={HUGE}", Role.platform_reviewer, "offset"),
    ("GET", f"/v1/reports?offset={HUGE}", Role.platform_reviewer, "offset"),
]


@pytest.mark.parametrize(("method", "path", "role", "field"), CASES)
def test_a_number_beyond_64_bits_is_a_422_naming_the_field(client, world, method, path, role, field):  # type: ignore[no-untyped-def]
    platform = world.platform()
    r = client.request(method, path, headers=platform.headers(role))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e.get("field") for e in r.json()["errors"]}, r.json()
