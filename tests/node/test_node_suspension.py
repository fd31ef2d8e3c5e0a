"""Issue #22: suspending an enterprise stops its node's next sync (one log line naming the reason); the
node keeps its last verified copy and its status says why; after reinstatement it syncs again."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.cli import app as cli
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.roles import Role
from fanchaoxin.core.settings import get_settings
from fanchaoxin.node.client import PlatformClient
from fanchaoxin.node.store import Store
from fanchaoxin.node.sync import PlatformSuspended, initialise, suspension, sync
from fanchaoxin.orgs import agreements
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sharing import translog
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import person_entry

ADMIN = Actor("test:admin")


@pytest.fixture
def settings(settings, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FCX_SHARING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    translog.forget_trees()
    yield get_settings()
    get_settings.cache_clear()
    translog.forget_trees()


def _publish(db, org_id) -> None:  # type: ignore[no-untyped-def]
    with db.session() as s:
        e = registry.submit(s, ADMIN, org_id, EntryIn.model_validate(person_entry()))
        take_step(s, ADMIN, e, Action.start_review)
        take_step(s, ADMIN, e, Action.open_notice)
        e.notice_ends_on = date.today() - timedelta(days=1)
        take_step(s, ADMIN, e, Action.publish)


def test_suspension_stops_the_next_sync_and_the_status_says_why(app, db, world, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    shop = world.enterprise("电商")
    key = shop.keys[Role.enterprise_node]
    client = PlatformClient("http://testserver", key)
    client.http.close()
    client.http = TestClient(app, base_url="http://testserver", headers={"X-API-Key": key})
    path = str(tmp_path / "node.db")
    initialise(path, "http://testserver", key, client=client)
    store = Store(path)
    _publish(db, shop.org.id)
    head = sync(store, client).head_after
    assert head > 0 and suspension(store) is None

    with db.session() as s:
        agreements.suspend(s, ADMIN, s.get(Organisation, shop.org.id), "数据泄露")
    _publish(db, shop.org.id)
    caplog.set_level(logging.ERROR, logger="fanchaoxin.node.sync")
    for _ in range(3):  # tried again at every interval: one log line, not one per try
        with pytest.raises(PlatformSuspended) as refused:
            sync(store, client)
    assert refused.value.reason == "数据泄露"
    lines = [r.getMessage() for r in caplog.records if "suspended by the platform" in r.getMessage()]
    assert len(lines) == 1 and "数据泄露" in lines[0], lines
    assert store.state()["head"] == head  # the last verified copy is kept
    assert suspension(store) == "suspended by the platform: 数据泄露"
    out = CliRunner().invoke(cli, ["node", "status", "--store", path])
    assert out.exit_code == 0, out.output
    assert "suspended by the platform: 数据泄露" in out.output

    with db.session() as s:
        agreements.reinstate(s, ADMIN, s.get(Organisation, shop.org.id))
    assert sync(store, client).head_after > head
    assert suspension(store) is None
    client.close()
    store.dispose()
