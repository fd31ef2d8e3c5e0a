"""Review and after-sales logs of a marketplace with planted 删除不利评价 (``fcx simulate review-events``).

Getting negative reviews removed (删除不利评价, DESIGN.md §1) leaves its traces in two logs a platform
keeps anyway: the reviews with who deleted them and when, and the after-sales events between merchants
and users (messages, refunds, compensation, payments). The generator writes those logs for one month,
deterministic for a seed, with planted 删差评 and hard negatives, and records what it planted.

Files (UTF-8 CSV with a header; times are local ``YYYY-MM-DD HH:MM:SS``):

``reviews.csv`` — ``review_id, merchant, author, rating, created_at, deleted_at, deleted_by, delete_reason``
    ``deleted_at`` / ``deleted_by`` / ``delete_reason`` are empty for a review still online at the end of
    the month. ``deleted_by`` is ``author`` (the reviewer removed it) or ``platform`` (moderation, with a
    reason: ``abusive``, ``advertising``, ``privacy``).
``after_sales.csv`` — ``event_id, merchant, user, kind, amount, event_time, operator``
    ``kind`` is ``message``, ``call``, ``refund``, ``compensation`` (money to the customer), ``complaint``
    (the customer complains; not an action of the merchant) or ``payment`` (the merchant pays an account
    that is not a customer: an agency, a service). ``operator`` is the account that acted for the merchant
    (a customer-service agent, an outsourced agent); empty when the merchant account acted itself.
``merchants.csv`` — ``merchant, category``

Normal traffic: review volume per merchant is log-normal (a few big merchants, a long tail); each
category has its own share of negative reviews (rating 1–2), share of negative reviews the merchant
follows up (message, call or refund after the review), chance that a followed-up customer removes the
review after the fix, and chance that a customer removes a negative review unprompted. Each merchant
draws its own rates around its category's (beta-distributed), so honest merchants differ from one another.
About 3 % of negative reviews are abusive and removed by the platform.

Planted (``truth.json``, ``truth_merchants.csv``, ``truth_services.csv``, ``truth_reviews.csv``):

- **Induced deletion** (``induced``): the merchant contacts, refunds or pays (红包 compensation) 80–97 %
  of its negative reviewers, and 75–97 % of them delete the review within hours.
- **Off-log deletion** (``off_log``): 50–80 % of the merchant's negative reviews are deleted by their
  authors within three days, with no after-sales event at all (the merchant called them from another
  phone, paid them on WeChat).
- **Deletion services** (删差评 services, ``service_client`` merchants): an account that many unrelated
  merchants pay (``payment``); after each payment it contacts a negative reviewer of that merchant as the
  event's ``operator`` (a message or compensation), and the review is deleted by its author soon after.

Hard negatives (``truth.json`` → ``hard_negatives``; a detector must not flag them):

- ``genuine_fix`` merchants who follow up nearly every negative review with a refund: customers then
  delete the review at the ordinary rate of a genuine fix, so more deletions after contact, but not more
  per contact.
- ``food_delivery``: a category where customers delete complaints far more often (the rider apologised,
  the order was remade): a high deletion rate that is normal for the category.
- ``trolled`` merchants: targets of an abusive-review wave, all removed by the platform.
- ``big`` merchants: many deletions in absolute terms at an ordinary rate.
- ``cs_staff``: customer-service accounts of one big merchant each, contacting hundreds of its customers.
- ``outsourced_cs``: outsourced customer-service agents (客服外包) working for several merchants at
  ordinary conversion rates.
- ``agency``: marketing agencies paid by many merchants, with no link to deletions.

Scale 1 is about 120,000 reviews and 1,500 merchants; ``scale`` multiplies volumes and planted counts
(group sizes do not scale). Reviews are generated and written in blocks of merchants, so any scale runs
in bounded memory (10,000,000 reviews is scale ≈ 84). Each block draws from its own child of
``numpy.random.SeedSequence(seed)``: the output is byte-identical for a seed and scale.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from fanchaoxin.simulate.marketplace import DAY, DAYS, HOUR, START, fmt_time

__all__ = ["CATEGORIES", "REVIEWS_PER_SCALE", "generate"]

REVIEWS_PER_SCALE = 120_000
MERCHANTS_PER_SCALE = 1_500
BLOCK_REVIEWS = 500_000  # reviews generated and written at a time: bounds memory at any scale
_EPOCH = int(START.astype("datetime64[s]").astype(np.int64))
_END = DAYS * DAY

# category, share of merchants, share of negative reviews, share of negatives followed up,
# P(delete | genuine follow-up), P(delete unprompted). Food delivery: customers delete complaints far
# more often once the order is remade or the rider apologises — a high rate that is normal there.
CATEGORIES: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("food_delivery", 0.22, 0.14, 0.35, 0.28, 0.10),
    ("apparel", 0.16, 0.12, 0.30, 0.15, 0.02),
    ("electronics", 0.12, 0.10, 0.30, 0.12, 0.02),
    ("beauty", 0.10, 0.11, 0.30, 0.15, 0.02),
    ("home", 0.10, 0.10, 0.25, 0.12, 0.02),
    ("grocery", 0.10, 0.12, 0.30, 0.18, 0.03),
    ("hotel_travel", 0.08, 0.09, 0.35, 0.20, 0.03),
    ("local_services", 0.12, 0.13, 0.35, 0.22, 0.04),
)

# Share of reviews per hour of day: quiet nights, a late-morning and a strong evening peak.
_NIGHT = [2.0, 1.2, 0.7, 0.4, 0.3, 0.3, 0.5, 1.2]
_DAYTIME = [2.5, 3.5, 4.5, 4.8, 4.6, 4.2, 4.2, 4.3, 4.2, 4.0, 4.2, 5.0, 6.0, 6.6, 6.2, 4.0]
_DIURNAL = np.array([*_NIGHT, *_DAYTIME])
_DIURNAL = _DIURNAL / _DIURNAL.sum()

REVIEW_COLUMNS = (
    "review_id",
    "merchant",
    "author",
    "rating",
    "created_at",
    "deleted_at",
    "deleted_by",
    "delete_reason",
)
EVENT_COLUMNS = ("event_id", "merchant", "user", "kind", "amount", "event_time", "operator")

ProgressFn = Callable[[str], None]


def _account_ids(index: np.ndarray) -> np.ndarray:
    """User-side account ids: a bijection of the index onto 32-bit numbers, so ids say nothing of roles."""
    return (index.astype(np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)


def _merchant_ids(index: np.ndarray) -> np.ndarray:
    # a separate range from user accounts: a merchant account never shares an id with a customer's
    return 5_000_000_000 + ((index.astype(np.int64) * 40503) % (1 << 20))


def _beta(rng: np.random.Generator, mean: np.ndarray | float, kappa: float, size: int) -> np.ndarray:
    mean = np.clip(np.broadcast_to(np.asarray(mean, dtype=float), (size,)), 1e-3, 1 - 1e-3)
    return rng.beta(mean * kappa, (1 - mean) * kappa)


def _n(base: float, scale: float, minimum: int) -> int:
    return max(minimum, round(base * scale))


@dataclass
class _Service:
    account: int  # index in the special-account range
    clients: list[int]  # merchant indexes
    jobs: dict[int, int]  # merchant index → negative reviews to remove


@dataclass
class _Plan:
    n_users: int
    n_merchants: int
    category: np.ndarray  # merchant → category index
    volume: np.ndarray  # merchant → expected reviews
    neg_share: np.ndarray
    follow_up: np.ndarray  # share of negatives followed up
    fix_delete: np.ndarray  # P(delete | genuine follow-up)
    unprompted: np.ndarray  # P(delete unprompted)
    role: np.ndarray  # merchant → role code (see _ROLES)
    induced_contact: np.ndarray  # planted: share of negatives contacted
    induced_delete: np.ndarray  # planted: P(delete | contacted)
    off_log_delete: np.ndarray
    trolled_extra: np.ndarray  # abusive reviews added to trolled merchants
    staff_first: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # -1: no staff
    staff_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    outsourced: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # agent or -1
    services: list[_Service] = field(default_factory=list)
    agencies: dict[int, list[int]] = field(default_factory=dict)  # agency account → merchants paying it
    special: dict[str, list[int]] = field(default_factory=dict)  # kind → special account indexes


_ROLES = ("normal", "induced", "off_log", "genuine_fix", "trolled")


def _plan(rng: np.random.Generator, scale: float) -> _Plan:
    n_m = _n(MERCHANTS_PER_SCALE, scale, 60)
    n_reviews = REVIEWS_PER_SCALE * scale
    weights = np.array([c[1] for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), n_m, p=weights / weights.sum())
    volume = rng.lognormal(0.0, 1.3, n_m)
    volume = volume / volume.sum() * n_reviews
    cat = np.array([c[2:] for c in CATEGORIES])[category]
    neg_share = _beta(rng, cat[:, 0], 40, n_m)
    follow_up = _beta(rng, cat[:, 1], 10, n_m)
    fix_delete = _beta(rng, cat[:, 2], 40, n_m)
    unprompted = _beta(rng, cat[:, 3], 60, n_m)
    role = np.zeros(n_m, dtype=np.int8)
    exp_neg = volume * neg_share

    def pick(k: int, eligible: np.ndarray) -> np.ndarray:
        pool = np.flatnonzero(eligible & (role == 0))
        return rng.choice(pool, min(k, len(pool)), replace=False)

    big = np.argsort(-volume)[: max(5, n_m // 100)]
    not_big = np.ones(n_m, dtype=bool)
    not_big[big] = False
    # Planted merchants have enough negative reviews to be told from chance (about 25 or more: with a
    # dozen, half of them deleted is within what honest merchants show).
    enough = min(25.0, float(np.quantile(exp_neg[not_big], 0.9)))  # tiny scales have no such merchants
    induced = pick(_n(12, scale, 4), (exp_neg >= enough) & not_big)
    role[induced] = 1
    off_log = pick(_n(10, scale, 4), (exp_neg >= enough) & not_big)
    role[off_log] = 2
    genuine = pick(_n(10, scale, 4), exp_neg >= 15)
    role[genuine] = 3
    trolled = pick(_n(5, scale, 2), exp_neg >= 5)
    role[trolled] = 4
    induced_contact = np.zeros(n_m)
    induced_delete = np.zeros(n_m)
    off_log_delete = np.zeros(n_m)
    induced_contact[induced] = rng.uniform(0.8, 0.97, len(induced))
    induced_delete[induced] = rng.uniform(0.75, 0.97, len(induced))
    off_log_delete[off_log] = rng.uniform(0.5, 0.8, len(off_log))
    follow_up[genuine] = rng.uniform(0.85, 0.97, len(genuine))
    # a genuine fix convinces customers at the ordinary rate of the category
    fix_delete[genuine] = cat[genuine, 2] * rng.uniform(0.8, 1.2, len(genuine))
    trolled_extra = np.zeros(n_m, dtype=np.int64)
    trolled_extra[trolled] = rng.integers(30, 90, len(trolled))

    n_users = max(5_000, int(n_reviews * 0.45))
    special_next = n_users  # special accounts (staff, services, agencies) follow the customers
    plan = _Plan(
        n_users,
        n_m,
        category,
        volume,
        neg_share,
        follow_up,
        fix_delete,
        unprompted,
        role,
        induced_contact,
        induced_delete,
        off_log_delete,
        trolled_extra,
    )
    plan.special = {"cs_staff": [], "outsourced_cs": [], "service": [], "agency": []}
    plan.staff_first = np.full(n_m, -1, dtype=np.int64)
    plan.staff_count = np.zeros(n_m, dtype=np.int64)
    for m in np.sort(big):
        k = int(rng.integers(2, 6))
        plan.staff_first[m] = special_next
        plan.staff_count[m] = k
        plan.special["cs_staff"] += list(range(special_next, special_next + k))
        special_next += k
    plan.outsourced = np.full(n_m, -1, dtype=np.int64)
    for _ in range(_n(3, scale, 2)):
        ordinary = np.flatnonzero((role == 0) & not_big & (exp_neg >= 3) & (plan.outsourced < 0))
        served = rng.choice(ordinary, min(len(ordinary), int(rng.integers(5, 13))), replace=False)
        plan.outsourced[served] = special_next
        plan.special["outsourced_cs"].append(special_next)
        special_next += 1
    # Deletion services serve unrelated merchants: any category, any size with a few negative reviews.
    free = (role == 0) & not_big & (exp_neg >= 4)
    for _ in range(_n(4, scale, 3)):
        pool = np.flatnonzero(free)
        k = min(len(pool), int(rng.integers(8, 26)))
        clients = [int(m) for m in rng.choice(pool, k, replace=False)]
        free[clients] = False
        jobs = {m: int(min(rng.integers(2, 7), max(1, exp_neg[m] // 2))) for m in clients}
        plan.services.append(_Service(special_next, clients, jobs))
        plan.special["service"].append(special_next)
        special_next += 1
    for _ in range(_n(3, scale, 2)):
        payers = [int(m) for m in rng.choice(n_m, min(n_m, int(rng.integers(10, 31))), replace=False)]
        plan.agencies[special_next] = payers
        plan.special["agency"].append(special_next)
        special_next += 1
    return plan


def _diurnal(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, DAYS, n) * DAY + rng.choice(24, n, p=_DIURNAL) * HOUR + rng.integers(0, HOUR, n)


class _Events:
    """After-sales events of one block, appended as column arrays."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []

    def add(
        self,
        merchant: np.ndarray,
        user: np.ndarray,
        kind: np.ndarray,
        amount: np.ndarray,
        time: np.ndarray,
        operator: np.ndarray,
    ) -> None:
        if len(merchant):
            self.parts.append((merchant, user, kind, amount, time, operator))

    def columns(self) -> tuple[np.ndarray, ...]:
        if not self.parts:
            return tuple(np.zeros(0, dtype=t) for t in (np.int64, np.int64, "U12", float, np.int64, np.int64))
        cols = tuple(np.concatenate([p[i] for p in self.parts]) for i in range(6))
        order = np.argsort(cols[4], kind="stable")
        return tuple(c[order] for c in cols)


def _block(
    rng: np.random.Generator, plan: _Plan, merchants: np.ndarray, chats: float
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, ...], dict[str, list[Any]]]:
    """Reviews and events of a block of merchants (indexes), plus the truth rows planted in it."""
    counts = rng.poisson(plan.volume[merchants]) + plan.trolled_extra[merchants]
    m = np.repeat(merchants, counts)
    n = len(m)
    extra_abusive = np.zeros(n, dtype=bool)
    if plan.trolled_extra[merchants].any():
        ends = np.cumsum(counts)
        for j, mi in enumerate(merchants):
            k = int(plan.trolled_extra[mi])
            if k:
                extra_abusive[ends[j] - k : ends[j]] = True
    author = (plan.n_users * rng.random(n) ** 2).astype(np.int64)
    created = _diurnal(rng, n)
    negative = (rng.random(n) < plan.neg_share[m]) | extra_abusive
    rating = np.where(
        negative,
        rng.choice([1, 2], n, p=[0.6, 0.4]),
        rng.choice([3, 4, 5], n, p=[0.15, 0.3, 0.55]),
    ).astype(np.int64)
    deleted = np.full(n, -1, dtype=np.int64)
    by = np.full(n, "", dtype="U8")
    reason = np.full(n, "", dtype="U12")
    cause = np.full(n, "", dtype="U16")  # truth: why a review was removed, for planted removals
    events = _Events()
    role = plan.role[m]

    def operator_of(idx: np.ndarray) -> np.ndarray:
        """Who acts for the merchant: a staff agent of a big merchant, an outsourced agent, or itself (-1)."""
        mi = m[idx]
        op = np.where(rng.random(len(idx)) < 0.7, plan.outsourced[mi], -1)
        staffed = plan.staff_first[mi] >= 0
        pick = plan.staff_first[mi] + (rng.random(len(idx)) * plan.staff_count[mi]).astype(np.int64)
        return np.where(staffed, pick, op)

    # Platform moderation: abusive reviews (and the trolling waves) are removed within two days.
    abusive = negative & ((rng.random(n) < 0.03) | extra_abusive)
    ab = np.flatnonzero(abusive)
    deleted[ab] = created[ab] + 600 + rng.exponential(10 * HOUR, len(ab)).astype(np.int64)
    by[ab] = "platform"
    reason[ab] = rng.choice(["abusive", "advertising", "privacy"], len(ab), p=[0.7, 0.2, 0.1])
    # Customers complain through after-sales before or after some negative reviews: not a merchant action.
    comp = np.flatnonzero(negative & (rng.random(n) < 0.2))
    events.add(
        m[comp],
        author[comp],
        np.full(len(comp), "complaint"),
        np.zeros(len(comp)),
        created[comp] + rng.integers(-2 * DAY, 6 * HOUR, len(comp)),
        np.full(len(comp), -1),
    )

    open_neg = negative & ~abusive
    # Planted induced deletion: contact / refund / pay most negative reviewers, then they delete.
    ind = np.flatnonzero(open_neg & (role == 1) & (rng.random(n) < plan.induced_contact[m]))
    t_ind = created[ind] + 900 + rng.exponential(6 * HOUR, len(ind)).astype(np.int64)
    k_ind = rng.choice(["compensation", "refund", "message", "call"], len(ind), p=[0.45, 0.25, 0.2, 0.1])
    amt = np.where(
        k_ind == "compensation",
        rng.integers(5, 51, len(ind)),
        np.where(k_ind == "refund", np.round(rng.lognormal(3.5, 0.6, len(ind)), 2), 0.0),
    )
    events.add(m[ind], author[ind], k_ind, amt.astype(float), t_ind, operator_of(ind))
    gone = rng.random(len(ind)) < plan.induced_delete[m[ind]]
    g = ind[gone]
    deleted[g] = t_ind[gone] + 300 + rng.exponential(5 * HOUR, len(g)).astype(np.int64)
    by[g] = "author"
    cause[g] = "induced"
    handled = np.zeros(n, dtype=bool)
    handled[ind] = True

    # Planted off-log deletion: no event, the reviewer just removes the review within three days.
    off = np.flatnonzero(open_neg & (role == 2) & (rng.random(n) < plan.off_log_delete[m]))
    deleted[off] = created[off] + rng.integers(2 * HOUR, 3 * DAY, len(off))
    by[off] = "author"
    cause[off] = "off_log"
    handled[off] = True

    # Deletion services: the merchant pays, the service contacts a negative reviewer, the review goes.
    svc_rows: list[tuple[int, int, int]] = []  # (service account, merchant index, review row)
    ends = np.cumsum(counts)
    starts = ends - counts
    local = {int(mi): j for j, mi in enumerate(merchants)}
    for svc in plan.services:
        for mi in svc.clients:
            j = local.get(mi)
            if j is None:
                continue
            rows = np.arange(starts[j], ends[j])
            cand = rows[open_neg[rows] & ~handled[rows] & (created[rows] < _END - 3 * DAY)]
            if not len(cand):
                continue
            jobs = rng.choice(cand, min(len(cand), svc.jobs[mi]), replace=False)
            for r in jobs:
                t_pay = created[r] + int(rng.integers(HOUR, 12 * HOUR))
                t_touch = t_pay + int(rng.integers(HOUR // 2, 10 * HOUR))
                kind = "compensation" if rng.random() < 0.5 else "message"
                events.add(
                    np.array([mi, mi]),
                    np.array([svc.account, author[r]]),
                    np.array(["payment", kind]),
                    np.array(
                        [
                            float(rng.integers(30, 201)),
                            float(rng.integers(5, 31)) if kind == "compensation" else 0.0,
                        ]
                    ),
                    np.array([t_pay, t_touch]),
                    np.array([-1, svc.account]),
                )
                handled[r] = True
                if rng.random() < 0.85:
                    deleted[r] = t_touch + 300 + int(rng.exponential(6 * HOUR))
                    by[r] = "author"
                    cause[r] = "service"
                svc_rows.append((svc.account, mi, int(r)))

    # Ordinary follow-up (every merchant, genuine-fix ones nearly always): a message, call or refund;
    # some customers then delete the review after the genuine fix, at their merchant's ordinary rate.
    rest = np.flatnonzero(open_neg & ~handled)
    fu = rest[rng.random(len(rest)) < plan.follow_up[m[rest]]]
    genuine = role[fu] == 3
    k_fu = np.where(
        genuine,
        "refund",
        rng.choice(["message", "refund", "call", "compensation"], len(fu), p=[0.5, 0.35, 0.1, 0.05]),
    )
    t_fu = created[fu] + 1200 + rng.exponential(10 * HOUR, len(fu)).astype(np.int64)
    amt = np.where(
        k_fu == "refund",
        np.round(rng.lognormal(3.8, 0.7, len(fu)), 2),
        np.where(k_fu == "compensation", rng.integers(5, 21, len(fu)), 0.0),
    )
    events.add(m[fu], author[fu], k_fu, amt.astype(float), t_fu, operator_of(fu))
    fixed = rng.random(len(fu)) < plan.fix_delete[m[fu]]
    f = fu[fixed]
    deleted[f] = t_fu[fixed] + 600 + rng.exponential(24 * HOUR, len(f)).astype(np.int64)
    by[f] = "author"
    handled[f] = True
    # Unprompted deletions of negative reviews, and the odd positive review removed by its author.
    rest = np.flatnonzero(open_neg & ~handled & (deleted < 0))
    u = rest[rng.random(len(rest)) < plan.unprompted[m[rest]]]
    deleted[u] = created[u] + rng.integers(HOUR, 12 * DAY, len(u))
    by[u] = "author"
    pos = np.flatnonzero(~negative & (rng.random(n) < 0.004))
    deleted[pos] = created[pos] + rng.integers(HOUR, 20 * DAY, len(pos))
    by[pos] = "author"

    # After-sales with other customers (questions, returns): volume that joins no negative review.
    happy = np.repeat(np.arange(n), rng.poisson(chats, n) * ~negative)
    k_h = rng.choice(["message", "refund", "call"], len(happy), p=[0.7, 0.2, 0.1])
    events.add(
        m[happy],
        author[happy],
        k_h,
        np.where(k_h == "refund", np.round(rng.lognormal(3.8, 0.7, len(happy)), 2), 0.0),
        created[happy] + rng.integers(-3 * DAY, 3 * DAY, len(happy)),
        operator_of(happy),
    )
    # Agencies are paid by many merchants (advertising, photography), unrelated to reviews.
    for agency, payers in plan.agencies.items():
        for mi in payers:
            if mi in local:
                k = int(rng.integers(1, 4))
                events.add(
                    np.full(k, mi),
                    np.full(k, agency),
                    np.full(k, "payment"),
                    rng.integers(200, 3001, k).astype(float),
                    _diurnal(rng, k),
                    np.full(k, -1),
                )

    # What the platform's log shows at the end of the month: later deletions have not happened yet.
    late = deleted >= _END
    deleted[late] = -1
    by[late] = ""
    reason[late] = ""
    cause[late] = ""
    reason[(by == "author")] = ""
    order = np.lexsort((m, created))
    reviews = {
        "merchant": m[order],
        "author": author[order],
        "rating": rating[order],
        "created_at": created[order],
        "deleted_at": deleted[order],
        "deleted_by": by[order],
        "delete_reason": reason[order],
        "cause": cause[order],
    }
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    truth = {"service_jobs": [(a, mi, int(position[r])) for a, mi, r in svc_rows]}
    ev = events.columns()
    keep = (ev[4] >= 0) & (ev[4] < _END)
    return reviews, tuple(c[keep] for c in ev), truth


def _times(seconds: np.ndarray) -> pa.Array:
    valid = seconds >= 0
    return pa.array(np.where(valid, seconds, 0) + _EPOCH, type=pa.timestamp("s"), mask=~valid)


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values.tolist(), type=pa.string(), mask=(values == ""))


def _ids(values: np.ndarray, *, missing: bool = False) -> pa.Array:
    if missing:
        valid = values >= 0
        return pa.array(np.where(valid, values, 0), type=pa.int64(), mask=~valid)
    return pa.array(values, type=pa.int64())


class _CsvOut:
    """A CSV file written table by table, never quoted: the values are ids, numbers, times and codes
    (pyarrow refuses one that would need quotes)."""

    def __init__(self, path: Path, header: tuple[str, ...], schema: pa.Schema) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.fh = self.part.open("wb")
        self.fh.write((",".join(header) + "\n").encode())
        self.writer = pacsv.CSVWriter(
            self.fh, schema, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> int:
        self.writer.close()
        self.fh.close()
        self.part.replace(self.path)  # never a half-written file under the real name
        return self.rows


_REVIEW_SCHEMA = pa.schema(
    [
        ("review_id", pa.int64()),
        ("merchant", pa.int64()),
        ("author", pa.int64()),
        ("rating", pa.int64()),
        ("created_at", pa.timestamp("s")),
        ("deleted_at", pa.timestamp("s")),
        ("deleted_by", pa.string()),
        ("delete_reason", pa.string()),
    ]
)
_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("merchant", pa.int64()),
        ("user", pa.int64()),
        ("kind", pa.string()),
        ("amount", pa.float64()),
        ("event_time", pa.timestamp("s")),
        ("operator", pa.int64()),
    ]
)


def generate(
    out_dir: str | Path,
    *,
    seed: int = 7,
    scale: float = 1.0,
    progress: ProgressFn | None = None,
    block_reviews: int = BLOCK_REVIEWS,
    after_sales_per_review: float = 0.05,
) -> dict[str, Any]:
    """Write reviews.csv, after_sales.csv, merchants.csv and the ground truth to `out_dir`; return the truth.

    `progress` (optional) is called with a short description as each block starts. `block_reviews`
    bounds memory; it changes how merchants are split into blocks, hence the random draws: keep the
    default for byte-identical output. `after_sales_per_review` is the mean number of after-sales
    events (questions, returns) of customers who left a review of 3 stars or more: they join no negative
    review, and only make the after-sales log as long as a real one.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    if not (0 <= after_sales_per_review <= 100):
        raise ValueError("after_sales_per_review must be in [0, 100]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _d: None)
    ss = np.random.SeedSequence(seed)
    r_plan, r_blocks = ss.spawn(2)
    step("planning")
    plan = _plan(np.random.default_rng(r_plan), scale)
    mids = _merchant_ids(np.arange(plan.n_merchants))

    # Blocks of consecutive merchants holding about `block_reviews` expected reviews each.
    cum = np.cumsum(plan.volume + plan.trolled_extra)
    cut = np.searchsorted(cum, np.arange(block_reviews, cum[-1], block_reviews))
    bounds = np.unique(np.concatenate([[0], cut + 1, [plan.n_merchants]]))
    bounds = bounds[bounds <= plan.n_merchants]
    block_seeds = r_blocks.spawn(len(bounds) - 1)

    reviews_out = _CsvOut(out / "reviews.csv", REVIEW_COLUMNS, _REVIEW_SCHEMA)
    events_out = _CsvOut(out / "after_sales.csv", EVENT_COLUMNS, _EVENT_SCHEMA)
    truth_schema = pa.schema([("review_id", pa.int64()), ("merchant", pa.int64()), ("cause", pa.string())])
    truth_reviews = _CsvOut(out / "truth_reviews.csv", ("review_id", "merchant", "cause"), truth_schema)
    jobs: list[tuple[int, int, int]] = []
    deleted_by_cause: dict[str, int] = {}
    next_review = 1
    next_event = 1
    try:
        for b in range(len(bounds) - 1):
            step(f"block {b + 1}/{len(bounds) - 1}")
            block = np.arange(bounds[b], bounds[b + 1])
            rev, ev, t = _block(np.random.default_rng(block_seeds[b]), plan, block, after_sales_per_review)
            n = len(rev["merchant"])
            rid = np.arange(next_review, next_review + n, dtype=np.int64)
            reviews_out.write(
                pa.table(
                    [
                        pa.array(rid),
                        _ids(mids[rev["merchant"]]),
                        _ids(_account_ids(rev["author"]).astype(np.int64)),
                        pa.array(rev["rating"]),
                        _times(rev["created_at"]),
                        _times(rev["deleted_at"]),
                        _text(rev["deleted_by"]),
                        _text(rev["delete_reason"]),
                    ],
                    schema=_REVIEW_SCHEMA,
                )
            )
            planted = np.flatnonzero(rev["cause"] != "")
            for c in np.unique(rev["cause"][planted]):
                deleted_by_cause[str(c)] = deleted_by_cause.get(str(c), 0) + int((rev["cause"] == c).sum())
            truth_reviews.write(
                pa.table(
                    [
                        pa.array(rid[planted]),
                        _ids(mids[rev["merchant"][planted]]),
                        _text(rev["cause"][planted]),
                    ],
                    schema=truth_schema,
                )
            )
            jobs += [(a, mi, int(rid[r])) for a, mi, r in t["service_jobs"]]
            next_review += n
            em, eu, ek, ea, et, eo = ev
            k = len(em)
            op = np.where(eo >= 0, _account_ids(np.maximum(eo, 0)).astype(np.int64), -1)
            events_out.write(
                pa.table(
                    [
                        pa.array(np.arange(next_event, next_event + k, dtype=np.int64)),
                        _ids(mids[em]),
                        _ids(_account_ids(eu).astype(np.int64)),
                        _text(ek.astype(str)),
                        pa.array(ea.astype(float), mask=~np.isin(ek, ["refund", "compensation", "payment"])),
                        _times(et),
                        _ids(op, missing=True),
                    ],
                    schema=_EVENT_SCHEMA,
                )
            )
            next_event += k
    finally:
        files = {
            "reviews.csv": reviews_out.close(),
            "after_sales.csv": events_out.close(),
        }
        truth_reviews.close()

    step("truth")
    acct = lambda i: int(_account_ids(np.array([i]))[0])  # noqa: E731
    mid = lambda i: int(mids[i])  # noqa: E731
    cat_names = [c[0] for c in CATEGORIES]
    _write_rows(
        out / "merchants.csv",
        ("merchant", "category"),
        [(mid(i), cat_names[c]) for i, c in enumerate(plan.category)],
    )
    files["merchants.csv"] = plan.n_merchants

    served: dict[int, dict[int, int]] = {}
    for a, mi, _ in jobs:
        served.setdefault(a, {}).setdefault(mi, 0)
        served[a][mi] += 1
    merchants_truth = [
        (mid(i), _ROLES[plan.role[i]]) for i in np.flatnonzero((plan.role == 1) | (plan.role == 2))
    ]
    clients = sorted({mi for s in served.values() for mi in s})
    merchants_truth += [(mid(i), "service_client") for i in clients]
    _write_rows(out / "truth_merchants.csv", ("merchant", "kind"), merchants_truth)
    services_truth = [(acct(a), mid(mi), k) for a, s in served.items() for mi, k in s.items()]
    _write_rows(out / "truth_services.csv", ("account", "merchant", "jobs"), services_truth)

    hard = {
        "genuine_fix": [mid(i) for i in np.flatnonzero(plan.role == 3)],
        "trolled": [mid(i) for i in np.flatnonzero(plan.role == 4)],
        "big": [mid(i) for i in np.flatnonzero(plan.staff_first >= 0)],
        "food_delivery": [
            mid(i) for i in np.flatnonzero((plan.category == 0) & (plan.role == 0)) if i not in set(clients)
        ],
        "cs_staff": [acct(a) for a in plan.special["cs_staff"]],
        "outsourced_cs": [acct(a) for a in plan.special["outsourced_cs"]],
        "agency": [acct(a) for a in plan.special["agency"]],
    }
    truth: dict[str, Any] = {
        "generator": "fanchaoxin.simulate.review_events",
        "version": 1,
        "seed": seed,
        "scale": scale,
        "after_sales_per_review": after_sales_per_review,
        "start": fmt_time(0),
        "days": DAYS,
        "files": files,
        "categories": {
            c[0]: dict(
                zip(
                    ("merchant_share", "negative_share", "follow_up", "fix_delete", "unprompted_delete"),
                    c[1:],
                    strict=True,
                )
            )
            for c in CATEGORIES
        },
        "merchants": {
            "induced": [m for m, k in merchants_truth if k == "induced"],
            "off_log": [m for m, k in merchants_truth if k == "off_log"],
            "service_client": [mid(i) for i in clients],
        },
        "services": [
            {"account": acct(a), "merchants": [mid(mi) for mi in sorted(s)], "jobs": sum(s.values())}
            for a, s in sorted(served.items())
        ],
        "planted_deletions": deleted_by_cause,
        "hard_negatives": hard,
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def _write_rows(path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    part = path.with_name(path.name + ".part")
    with part.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(header) + "\n")
        for r in rows:
            fh.write(",".join(str(x) for x in r) + "\n")
    part.replace(path)
