"""orgs.budget: per-organisation minute and day quotas, reconciled across processes, and the enumeration
detector's families."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

import pytest

from fanchaoxin.core.calendar import SHANGHAI
from fanchaoxin.core.settings import Settings
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs.budget import Budget, Limits, MatchingSuspended, QuotaExceeded

ORG = uuid.uuid4()
NOON = datetime(2026, 12, 7, 12, 0, tzinfo=SHANGHAI).timestamp()


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(per_minute: int = 10, per_day: int = 1000, **kw: object) -> tuple[Budget, Clock]:
    clock = Clock()
    b = Budget(Settings(**kw), clock=clock)  # type: ignore[arg-type]
    b.learn(ORG, Limits(per_minute, per_day, 100), day=b.today(), day_total=0, alert_id=None)
    return b, clock


def test_the_minute_slides_and_retry_after_says_when_enough_is_back():
    b, clock = make(per_minute=10)
    b.charge_plain(ORG, 6)
    clock.now += 30
    b.charge_plain(ORG, 4)
    clock.now += 1
    with pytest.raises(QuotaExceeded) as exc:
        b.charge_plain(ORG, 3)
    # The 6 taken at 0 s leave the window at 60 s: 29 s from now.
    assert exc.value.headers["Retry-After"] == "29" and exc.value.status == 429
    assert exc.value.title_zh == "标识匹配配额已用完"
    clock.now += 29
    b.charge_plain(ORG, 3)  # nothing was taken by the refusal
    assert b.status(ORG)["this_minute"] == 7


def test_the_day_quota_waits_for_midnight_china_time():
    b, clock = make(per_minute=1000, per_day=5)
    b.charge_plain(ORG, 5)
    with pytest.raises(QuotaExceeded) as exc:
        b.charge_plain(ORG, 1)
    assert exc.value.headers["Retry-After"] == str(12 * 3600)
    assert "midnight" in exc.value.detail
    clock.now += 12 * 3600
    b.charge_plain(ORG, 5)  # a new day


def test_a_batch_bigger_than_the_minute_is_refused_with_a_minute_to_wait():
    b, _ = make(per_minute=10)
    with pytest.raises(QuotaExceeded) as exc:
        b.charge_plain(ORG, 11)
    assert exc.value.headers["Retry-After"] == "60"


def test_evaluations_have_their_own_minute():
    b, clock = make(per_minute=1)
    b.charge_evaluations(ORG, 100, 100)
    with pytest.raises(QuotaExceeded):
        b.charge_evaluations(ORG, 1, 100)
    b.charge_plain(ORG, 1)  # the plain budget is another
    clock.now += 60
    b.charge_evaluations(ORG, 100, 100)


def test_the_day_is_reconciled_across_processes_through_the_database(db, world):
    shop = world.enterprise()
    settings = Settings(quota_plain_per_day=10, quota_plain_per_minute=100)
    clock = Clock()
    one, two = Budget(settings, clock=clock), Budget(settings, clock=clock)
    for b in (one, two):
        with db.session() as s:
            budgets.load(s, b, shop.org.id, settings)
    one.charge_plain(shop.org.id, 4)
    two.charge_plain(shop.org.id, 5)
    for b in (one, two):  # each flushes: adds its count, reads every process's back
        with db.session() as s:
            taken = budgets.sync(s, b)
        budgets.written(b, taken)
    for b in (one, two):
        with db.session() as s:
            budgets.read_back(s, b, settings)
    assert one.status(shop.org.id)["today"] == two.status(shop.org.id)["today"] == 9
    with pytest.raises(QuotaExceeded):
        one.charge_plain(shop.org.id, 2)
    one.charge_plain(shop.org.id, 1)
    # A flush whose commit fails keeps the count for the next one.
    with pytest.raises(RuntimeError), db.session() as s:
        taken = budgets.sync(s, one)
        raise RuntimeError("commit lost")
    budgets.failed(one, taken)
    assert one.status(shop.org.id)["today"] == 10
    with db.session() as s:
        taken = budgets.sync(s, one)
    budgets.written(one, taken)
    with db.session() as s:
        budgets.read_back(s, two, settings)
    assert two.status(shop.org.id)["today"] == 10


def sweep(head: str = "110101", tail: str = "1233") -> list[str]:
    day = datetime(1960, 1, 1)
    out = []
    for _ in range(200):
        out.append(head + day.strftime("%Y%m%d") + tail)
        day += timedelta(days=1)
    return out


def test_a_sweep_over_birth_dates_trips_the_alarm_and_suspends_matching():
    b, _ = make(per_minute=10_000, enumeration_threshold=25)
    misses = [("resident_id", v) for v in sweep()]
    with pytest.raises(MatchingSuspended) as exc:
        for m in misses:
            b.observe_misses(ORG, [m], key_prefix="abc")
    alarms = b.take_alarms()
    assert len(alarms) == 1 and exc.value.extra["alert_id"] == str(alarms[0].alert_id)
    d = alarms[0].detail
    assert d["count"] == 25 and set(d["shape"]) == {"#", "*"} and len(d["shape"]) == 18
    assert d["identifier_type"] == "resident_id" and d["key_prefix"] == "abc"
    with pytest.raises(MatchingSuspended):
        b.charge_plain(ORG, 1)
    b.alarms_written(alarms)
    b.cleared(ORG, alarms[0].alert_id)
    b.charge_plain(ORG, 1)


@pytest.mark.parametrize(
    "values",
    [
        [f"+86138{10_000_000 + i:08d}" for i in range(100)],  # consecutive phone numbers
        [f"+8613912{i:02d}5678" for i in range(100)],  # the middle digits
    ],
)
def test_consecutive_phone_numbers_are_one_family(values):
    b, _ = make(enumeration_threshold=25)
    with pytest.raises(MatchingSuspended):
        for v in values:
            b.observe_misses(ORG, [("phone", v)])


def test_unrelated_misses_and_other_types_raise_nothing_and_memory_stays_bounded():
    b, _ = make(enumeration_threshold=3)
    rng = random.Random(7)
    for _ in range(3000):
        b.observe_misses(ORG, [("resident_id", "".join(rng.choice("0123456789") for _ in range(18)))])
        b.observe_misses(ORG, [("email", f"user{rng.randrange(10**9)}@example.com")])
    assert not b.take_alarms()
    single, multi = b.detector._single[ORG], b.detector._multi[ORG]
    assert len(single) <= budgets.MAX_SINGLE_FAMILIES and len(multi) <= budgets.MAX_MULTI_FAMILIES


def test_misses_outside_the_window_do_not_count():
    b, clock = make(enumeration_threshold=5, enumeration_window_seconds=60)
    for v in sweep()[:4]:
        b.observe_misses(ORG, [("resident_id", v)])
    clock.now += 61
    for v in sweep()[4:8]:
        b.observe_misses(ORG, [("resident_id", v)])
    assert not b.take_alarms()


def test_honest_customers_of_one_district_and_birth_year_are_no_sweep():
    # Many customers share an address code and a birth year: wildcarding everything after them (month,
    # day, sequence, check digit) would make one family of them all; only the birth date is a run of 8.
    b, _ = make(enumeration_threshold=25)
    rng = random.Random(3)
    for _ in range(2000):
        born = datetime(1990, 1, 1) + timedelta(days=rng.randrange(365))
        value = "110101" + born.strftime("%Y%m%d") + f"{rng.randrange(1000):03d}" + rng.choice("0123456789X")
        b.observe_misses(ORG, [("resident_id", value)])
    assert not b.take_alarms()
