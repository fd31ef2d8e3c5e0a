"""#22: the console's instruction pages follow the API — an enterprise whose agreement is suspended
cannot open its workbench or report on instructions there, and is told why in Chinese; it can still
see its own organisation's page, which shows the suspension."""

from __future__ import annotations

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation

from .console_helpers import csrf_of
from .test_console import make_user, sign_in


def test_a_suspended_enterprise_cannot_open_its_workbench_and_is_told_why(client, world, db):
    shop = world.enterprise("示例网店")
    make_user(db, shop, Role.enterprise_operator, "shop")
    sign_in(client, "shop")
    assert client.get("/console/workbench").status_code == 200
    with db.session() as s:
        agreements.suspend(s, Actor("test:admin"), s.get(Organisation, shop.org.id), "数据泄露")
    page = client.get("/console/workbench")
    assert page.status_code == 403
    assert "数据泄露" in page.text and "agreement.suspended" not in page.text
    own = client.get("/console/org")
    assert own.status_code == 200 and "数据泄露" in own.text
    r = client.post(
        "/console/workbench/ack",
        data={"csrf_token": csrf_of(own.text), "ids": "00000000-0000-0000-0000-000000000000"},
    )
    assert r.status_code == 403
    with db.session() as s:
        agreements.reinstate(s, Actor("test:admin"), s.get(Organisation, shop.org.id))
    assert client.get("/console/workbench").status_code == 200
