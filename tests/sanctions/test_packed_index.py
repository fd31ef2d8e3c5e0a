"""The packed decision index (issue #23, part 5): one file per host, mapped by every worker, plus each
worker's changes since — the same verdicts as the dictionary index, whatever the entries, keys, scenes
and dates; after publications, objections, revocations and expiry; across a rebuild and the switch to
it; a damaged file is rebuilt, never trusted; a second process maps the file the first one built; and
decisions go on from it while the database is away."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fanchaoxin.app import create_app
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import vault
from fanchaoxin.core.roles import BusinessType as B
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions import index as decision_index
from fanchaoxin.sanctions.decide import DecisionIndex, decide, index_entry
from fanchaoxin.sanctions.index import IndexHolder, holder_for
from fanchaoxin.sanctions.packed import BaseRow, IndexStore, PackedBase, PackedIndex, matches, write_base
from fanchaoxin.sanctions.policy import default_policy, grade, measure_catalogue
from fanchaoxin.sharing.changes import head
from fanchaoxin.workflows.entries import take_step
from tests.blacklist.registry_helpers import RID_B, USCC_A, USCC_B, judicial, person_entry
from tests.core.faults import Outage
from tests.sanctions.test_sanctions import REVIEWER, publish

TODAY = date(2026, 3, 1)
SCENES = sorted(measure_catalogue().scenes)
KINDS = ["unit", "individual", "platform_account", "courier_staff"]
BEHAVIOURS = ["order_brushing", "fake_review", "subsidy_brushing", "malicious_registration"]
KEYS = [f"k{n}" for n in range(12)]


@st.composite
def rows(draw: st.DrawFn) -> BaseRow:
    kind = draw(st.sampled_from(KINDS))
    severity = draw(st.sampled_from(["minor", "general", "serious"]))
    behaviours = draw(st.lists(st.sampled_from(BEHAVIOURS), min_size=1, max_size=2, unique=True))
    liable = draw(st.booleans()) and kind == "individual"
    measures = [
        g.record()
        for g in grade(
            default_policy(),
            severity=severity,
            behaviours=behaviours,
            subject_kind=kind,
            role=draw(st.sampled_from(["organizer", "participant"])),
            liable=liable,
        )
    ]
    return BaseRow(
        entry_id=str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
        keys=draw(st.lists(st.sampled_from(KEYS), min_size=0, max_size=3)),
        subject_kind=kind,
        severity=severity,
        behaviours=behaviours,
        disputed=draw(st.booleans()),
        max_end_on=draw(st.none() | st.dates(TODAY - timedelta(days=30), TODAY + timedelta(days=30))),
        liable_role="legal_representative" if liable else None,
        measures=measures,
    )


def _indexed(row: BaseRow):
    return index_entry(
        entry_id=row.entry_id, subject_kind=row.subject_kind, severity=row.severity,
        behaviours=row.behaviours, disputed=row.disputed, max_end_on=row.max_end_on,
        liable_role=row.liable_role, measures=row.measures,
    )  # fmt: skip


def _packed(tmp: Path, base_rows: list[BaseRow], seq: int = 7) -> PackedIndex:
    path = tmp / f"{uuid.uuid4().hex}.fcxidx"
    write_base(path, base_rows, seq=seq, fingerprint={"seq": seq})
    return PackedIndex(PackedBase(path))


# Changes after the base: a row (put, again maybe with other keys) or an entry id (removed).
changes = st.lists(st.one_of(rows(), st.integers(0, 30)), max_size=8)
questions = st.lists(
    st.tuples(
        st.lists(st.sampled_from([*KEYS, "never"]), min_size=1, max_size=3),
        st.sampled_from(SCENES),
        st.dates(TODAY - timedelta(days=40), TODAY + timedelta(days=40)),
        st.dictionaries(st.sampled_from(sorted(measure_catalogue().measures)), st.just("第五条"), max_size=2),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base_rows=st.lists(rows(), max_size=30, unique_by=lambda r: r.entry_id), later=changes, asked=questions
)
def test_the_packed_index_decides_as_the_dictionary_index(base_rows, later, asked):
    memory = DecisionIndex()
    for r in base_rows:
        memory.put(r.keys, _indexed(r))
    with tempfile.TemporaryDirectory() as tmp:
        packed = _packed(Path(tmp), base_rows)
        for change in later:
            if isinstance(change, BaseRow):
                # half of them change an entry of the base (same id, new state), the others add one
                if base_rows and change.keys and len(change.keys) % 2:
                    old = base_rows[len(change.keys) % len(base_rows)]
                    change = BaseRow(**{**change.__dict__, "entry_id": old.entry_id})
                for index in (memory, packed):
                    index.put(change.keys, _indexed(change))
            elif base_rows:
                gone = base_rows[change % len(base_rows)].entry_id
                for index in (memory, packed):
                    index.remove(gone)
        for keys, scene, today, excluded in asked:
            want = decide(memory, keys, scene, today=today, excluded=excluded).to_dict()
            got = decide(packed, keys, scene, today=today, excluded=excluded).to_dict()
            assert got == want, (keys, scene, today)
            for k in keys:
                assert bool(packed.entries_for(k)) == (k in memory.by_key)


def test_a_damaged_file_is_never_used(tmp_path):
    row = BaseRow(str(uuid.uuid4()), ["k"], "unit", "serious", ["order_brushing"], False, None, None, [])
    path = tmp_path / "x.fcxidx"
    write_base(path, [row], seq=3, fingerprint={"seq": 3})
    whole = path.read_bytes()
    assert PackedBase(path).entry_count == 1
    store = IndexStore(tmp_path, "db")
    for damaged in (whole[:-5], whole[:40], whole[:-1] + bytes([whole[-1] ^ 1]), b""):
        store.path.write_bytes(damaged)
        assert store.current() is None


# --- from the database ---------------------------------------------------------------------------------


@pytest.fixture
def market(world):
    return {
        "shop": world.enterprise("电商", business_types=[B.ecommerce]),
        "bank": world.enterprise("金融", business_types=[B.internet_finance]),
        "ride": world.enterprise("出行", business_types=[B.sharing_economy]),
    }


KEY_A = lambda: vault.identifier_index("uscc", USCC_A)  # noqa: E731
KEY_B = lambda: vault.identifier_index("uscc", USCC_B)  # noqa: E731
KEY_P = lambda: vault.identifier_index("resident_id", RID_B)  # noqa: E731


def _same_verdicts(db, index, today=None):
    with db.session() as s:
        memory = decision_index.build(s)
    for key in (KEY_A(), KEY_B(), KEY_P()):
        for scene in SCENES:
            for day in (today or date.today(), date.today() + timedelta(days=9000)):
                got = decide(index, [key], scene, today=day).to_dict()
                assert got == decide(memory, [key], scene, today=day).to_dict(), (scene, day)


def test_built_from_the_database_and_kept_current_from_the_feed(db, market, tmp_path):
    shop = market["shop"].org.id
    first = publish(db, shop, judicial())
    store = IndexStore(tmp_path, "db")
    with db.session() as s:
        index = PackedIndex(store.open_or_build(s))
    assert (
        index.base.entry_count == 1
        and decide(index, [KEY_A()], "account_registration", today=TODAY).verdict == "deny"
    )
    _same_verdicts(db, index)

    second = publish(db, shop, judicial(subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}))  # fmt: skip
    publish(db, shop, person_entry(subject={"kind": "individual", "name": "李四", "identifiers": [{"type": "resident_id", "value": RID_B}]}))  # fmt: skip
    with db.session() as s:
        decision_index.refresh(s, index)
    assert decide(index, [KEY_B()], "account_registration", today=TODAY).verdict == "deny"
    _same_verdicts(db, index)

    with db.session() as s:
        take_step(s, REVIEWER, s.get(Entry, first), Action.dispute, reason="异议")
        take_step(s, REVIEWER, s.get(Entry, second), Action.revoke, reason="撤销")
    with db.session() as s:
        decision_index.refresh(s, index)
    assert decide(index, [KEY_A()], "account_registration", today=TODAY).verdict == "restrict"
    assert decide(index, [KEY_B()], "account_registration", today=TODAY).verdict == "allow"
    assert index.changed_since_base == 3  # two published after the base, one of them revoked, one disputed
    _same_verdicts(db, index)
    with db.session() as s:
        assert matches(s, index.base)
        assert store.open_or_build(s).identity == index.base.identity  # mapped again, not rebuilt


def test_a_file_of_another_database_or_a_damaged_one_is_rebuilt(db, market, tmp_path):
    publish(db, market["shop"].org.id, judicial())
    store = IndexStore(tmp_path, "db")
    # Same seq, another database's event: the fingerprint does not match.
    with db.session() as s:
        seq = head(s)
    write_base(store.path, [], seq=seq, fingerprint={"seq": seq, "entry_id": str(uuid.uuid4()), "at": "x"})
    with db.session() as s:
        base = store.open_or_build(s)
    assert base.entry_count == 1
    store.path.write_bytes(store.path.read_bytes()[:-3])
    with db.session() as s:
        base = store.open_or_build(s)
    assert base.entry_count == 1
    assert decide(PackedIndex(base), [KEY_A()], "account_registration", today=TODAY).verdict == "deny"


def test_rebuild_and_switch_between_workers(db, market, tmp_path):
    shop = market["shop"].org.id
    publish(db, shop, judicial())
    one = IndexHolder(db, store=IndexStore(tmp_path, "db"), rebuild_entries=1)
    two = IndexHolder(db, store=IndexStore(tmp_path, "db"), rebuild_entries=1_000)
    before = one.get()
    assert isinstance(before, PackedIndex)
    assert two.get().base.identity == before.base.identity  # the second maps the file the first built

    publish(db, shop, judicial(subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}))  # fmt: skip
    one.invalidate()
    one.get()  # the feed moved one entry: past its threshold, it packs a new file in the background
    one._maintaining.join(timeout=60)
    after = one.get()
    assert after is not before and after.base.identity != before.base.identity
    assert after.changed_since_base == 0 and after.base.entry_count == 2
    assert decide(after, [KEY_B()], "account_registration", today=TODAY).verdict == "deny"
    # a request that still holds the old index keeps deciding from it
    assert decide(before, [KEY_A()], "account_registration", today=TODAY).verdict == "deny"

    two.invalidate()
    two.get()  # it sees the new file and switches to it
    two._maintaining.join(timeout=60)
    assert two.get().base.identity == after.base.identity
    _same_verdicts(db, two.get())


SECOND_PROCESS = """
import sys
from pathlib import Path
from fanchaoxin.core.db import Database
from fanchaoxin.sanctions.packed import IndexStore
db = Database(sys.argv[1])
with db.session() as s:
    base = IndexStore(Path(sys.argv[2]), "db").open_or_build(s)
print(base.identity[1], base.entry_count)
"""


def _waits_on(pid: int, lock: Path) -> bool:
    """The process has the lock file open: it has reached the host lock and waits on it (Linux /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(lock) for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


def _built_while_another_process_waits(db, backend, tmp_path):
    """This process holds the host's build lock and builds once a second process, finding no file, waits
    on the lock; returns what was built and what the second process mapped (inode, entry count)."""
    store = IndexStore(tmp_path, "db")
    env = {**os.environ, "FCX_DATABASE_URL": backend.url}
    with store._locked(wait=True):
        other = subprocess.Popen(
            [sys.executable, "-c", SECOND_PROCESS, backend.url, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(600):  # until it waits on the lock, at most a minute
            if _waits_on(other.pid, store.lock_path) or other.poll() is not None:
                break
            time.sleep(0.1)
        with db.session() as s:
            built = store._build(s)
    out, _ = other.communicate(timeout=120)
    assert other.returncode == 0
    return built, out.split()


def test_two_processes_share_one_file_built_once(db, backend, market, tmp_path):
    publish(db, market["shop"].org.id, judicial())
    built, mapped = _built_while_another_process_waits(db, backend, tmp_path)
    assert mapped == [str(built.identity[1]), "1"]


def test_an_empty_feed_does_not_make_every_worker_build_its_own(db, backend, tmp_path):
    """A database whose feed is empty (new, or bulk-loaded) proves nothing about a file found there; but one
    published while a worker waited on the lock was built from it a moment ago: that one is taken."""
    built, mapped = _built_while_another_process_waits(db, backend, tmp_path)
    assert built.seq == 0
    assert mapped == [str(built.identity[1]), "0"]


# --- in the API, and while the database is away ---------------------------------------------------------


ASK = {"scene": "account_registration", "identifiers": [{"type": "uscc", "value": USCC_A}]}


def test_fcx_serve_packs_and_the_embedded_app_keeps_memory(db, settings, tmp_path):
    assert holder_for(db, settings, served=False).store is None
    packed = settings.model_copy(update={"decision_index_dir": str(tmp_path)})
    assert holder_for(db, packed, served=True).store is not None
    memory = settings.model_copy(update={"decision_index": "memory"})
    assert holder_for(db, memory, served=True).store is None


def test_decisions_from_the_packed_index_while_the_database_is_away(db, backend, market, settings, tmp_path):
    publish(db, market["shop"].org.id, judicial())
    outage = Outage(backend.url, tmp_path / "nowhere")
    packed = settings.model_copy(
        update={
            "decision_index": "packed",
            "decision_index_dir": str(tmp_path / "index"),
            "database_retry_after_seconds": 6,
            "auth_revocation_check_seconds": 3600,
        }
    )
    try:
        app = create_app(packed, db=outage.db)
        assert app.state.decision_index.store is not None
        node = market["bank"].headers(Role.enterprise_node)
        with TestClient(app, raise_server_exceptions=False) as c:
            before = c.post("/v1/decisions", json=ASK, headers=node)
            assert before.status_code == 200, before.text
            assert (before.json()["verdict"], before.json()["degraded"]) == ("deny", False)
            assert isinstance(app.state.decision_index.get(), PackedIndex)
            outage.cut()
            app.state.decision_index.invalidate()
            during = c.post("/v1/decisions", json=ASK, headers=node)
            assert during.status_code == 200, during.text
            assert (during.json()["verdict"], during.json()["degraded"]) == ("deny", True)
            assert during.json()["feed_seq"] == before.json()["feed_seq"]
            outage.restore()
    finally:
        outage.close()


def test_an_old_file_is_rebuilt_only_when_something_changed(db, market, tmp_path):
    shop = market["shop"].org.id
    publish(db, shop, judicial())
    wall = [1_000_000.0]
    holder = IndexHolder(
        db, store=IndexStore(tmp_path, "db"), rebuild_entries=1_000, rebuild_seconds=60, wall=lambda: wall[0]
    )
    first = holder.get()
    wall[0] = first.base.built_at + 3600
    assert holder.maintain() is False  # old, but it still matches the database: kept
    publish(db, shop, judicial(subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}))  # fmt: skip
    holder.invalidate()
    holder.get()
    if holder._maintaining is not None:
        holder._maintaining.join(timeout=60)
    now = holder.get()
    assert now.base.identity != first.base.identity and now.base.entry_count == 2


def test_a_directory_that_cannot_take_the_file_leaves_an_index_in_memory(db, market, tmp_path):
    publish(db, market["shop"].org.id, judicial())
    (tmp_path / "not-a-directory").write_text("")
    holder = IndexHolder(db, store=IndexStore(tmp_path / "not-a-directory", "db"))
    index = holder.get()
    assert isinstance(index, DecisionIndex)
    assert decide(index, [KEY_A()], "account_registration", today=TODAY).verdict == "deny"


def test_the_served_holder_builds_the_file_in_a_child_process(db, market, settings, tmp_path):
    publish(db, market["shop"].org.id, judicial())
    holder = holder_for(db, settings.model_copy(update={"decision_index_dir": str(tmp_path)}), served=True)
    index = holder.get()
    assert isinstance(index, PackedIndex) and index.base.entry_count == 1
    assert decide(index, [KEY_A()], "account_registration", today=TODAY).verdict == "deny"
    # a child that cannot build it leaves the worker an index of its own, in memory
    broken = IndexStore(
        tmp_path / "other", "db", database=type(db)("sqlite:///" + str(tmp_path / "none" / "x.db"))
    )
    fallback = IndexHolder(db, store=broken)
    assert isinstance(fallback.get(), DecisionIndex)


class FailingStore(IndexStore):
    builds = 0

    def rebuild(self, session, *, unless_replaced=None):
        self.builds += 1
        raise OSError(28, "No space left on device")


def test_a_failed_rebuild_is_not_tried_again_at_every_feed_read(db, market, tmp_path):
    shop = market["shop"].org.id
    publish(db, shop, judicial())
    store = FailingStore(tmp_path, "db")
    clock = [1_000.0]
    holder = IndexHolder(db, store=store, rebuild_entries=1, clock=lambda: clock[0])
    first = holder.get()
    publish(db, shop, judicial(subject={"kind": "unit", "name": "乙公司", "identifiers": [{"type": "uscc", "value": USCC_B}]}))  # fmt: skip
    for _ in range(3):
        clock[0] += 2  # a feed read is due
        assert holder.get() is first  # decisions go on from the file and the changes since
        if holder._maintaining is not None:
            holder._maintaining.join(timeout=60)
    assert store.builds == 1
    assert decide(first, [KEY_B()], "account_registration", today=TODAY).verdict == "deny"
    clock[0] += 61
    holder.get()
    holder._maintaining.join(timeout=60)
    assert store.builds == 2
