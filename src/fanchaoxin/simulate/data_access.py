"""Customer data and staff access to it, with planted 泄露倒卖个人信息 (``fcx simulate data-access``).

One month (2024-11-01 … 2024-11-30, local time, Double 11 included) of an imaginary e-commerce
enterprise, deterministic for a seed: its account registrations, orders, the data-access log of its
staff and the staff directory. Into it the generator plants the two faces of personal-data trade —
personal data *leaving* (staff pulling customer records far beyond their role, bulk exports, a data
broker selling the customers they serve) and personal data *being used* (phones and resident IDs
registered or shipped to by many unrelated accounts) — plus hard negatives, and records what it
planted in ``truth.json``, ``truth_staff.csv`` and ``truth_accounts.csv``.

Files (UTF-8 CSV with a header; times are local ``YYYY-MM-DD HH:MM:SS``):

``registrations.csv`` — ``account, registered_at, phone, id_hash, name_hash, device_id, ip``
    Every account: the customer base registered over the two years before the month, new customers
    during it. ``id_hash`` and ``name_hash`` stand for the hashed resident ID and name the enterprise
    keeps. **Leaked identities**: each is used by 4–10 fraud registrations in the month, every one
    with its own device, IP and name (bought data, not a household): the phone always, the resident
    ID hash 70 % of the time; 30 % of leaks are resident-ID lists (the ID is reused, the phone is
    fresh). Leaks come from the brokers below (victims: customers the broker served, misused from
    day 13 on), from other customers of the base (a breach elsewhere), and from outside lists (the
    owner is no customer). Hard negative: **families** of 2–5 accounts registered on one phone, linked
    by the home IP or a shared device.
``orders.csv`` — ``orderid, buyer, receiver_phone, receiver_address_hash, order_time``
    Customers ship to their own phone at home (and office, campus) addresses. **Leaked receivers**:
    brushing rings of 8–15 accounts ship to phones from a bought list, 4–8 ring accounts per phone,
    each at an address of its own. Hard negatives: family members shipping to a parent's phone at the
    family address; office buildings and campuses that hundreds of receivers share; gifts.
``access_log.csv`` — ``event_id, staff, role, customer, action, rows, ticket_id, event_time``
    ``action`` is ``view``, ``search`` or ``export``; ``customer`` is the record opened (empty for an
    export, whose ``rows`` is the number of records exported); ``ticket_id`` the service ticket or
    order the access was made under (empty when none). **Planted staff**: *grabbers* (500–2,000 records
    without a ticket on one to three days), *slow* pullers (25–50 a working day, all month), *night*
    pullers (30–80 records between 00:00 and 05:00 on 8–15 nights), *exporters* beyond their role
    (1–4 exports of 300–5,000 rows by customer service, sales or logistics), an *over-exporter* in an
    exporting role (15–30 × the role's monthly median), and *brokers* whose access looks normal but
    whose customers (40–80 of those they served with a ticket on days 0–12) are then registered by
    fraud accounts. Hard negatives: customer-service agents at 1.6–2.5 × the usual volume, a night
    shift team, the Double 11 surge (one team in six works at 3–5 × on days 10–12, tickets as usual),
    nightly ETL service accounts exporting 40,000–60,000 rows each, analysts searching without tickets
    (their role does), agents exporting a small report (≤ 50 rows) once.
``staff.csv`` — ``staff, role, team``

Scale 1 is about 47,000 registrations, 60,000 orders, 228 staff and 300,000 access events; volumes
and the number of planted subjects grow linearly with the scale (at least two of each planted kind,
never fewer than 20,000 customers); group sizes do not. The access log is written one day at a time,
so scale 34 (≈ 10⁷ events) needs no more memory than one day of it. Each part draws from its own
child of ``numpy.random.SeedSequence(seed)``: the same seed and scale give byte-identical files.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

START = np.datetime64("2024-11-01T00:00:00", "s")
DAYS = 30
DAY = 86_400
HOUR = 3_600
DOUBLE_11 = 10  # day index of 11 November
BROKER_LAST_VIEW_DAY = 12  # brokers serve their victims up to this day; the misuse starts after it

ProgressFn = Callable[[str], None]

# role → (teams per scale unit, fewest teams, members per team, events per working day, ticket share,
# working days a month)
_ROLES: dict[str, tuple[float, int, int, float, float, int]] = {
    "customer_service": (12, 3, 10, 70.0, 0.95, 22),
    "sales": (6, 2, 8, 25.0, 0.70, 24),
    "logistics": (4, 1, 8, 40.0, 0.90, 24),
    "analyst": (2, 1, 6, 15.0, 0.0, 21),
    "marketing": (2, 1, 5, 4.0, 0.0, 21),
    "etl_service": (1, 1, 6, 0.0, 0.0, 30),
}
_NON_EXPORTING = ("customer_service", "sales", "logistics")


def _n(base: float, scale: float, minimum: int = 2) -> int:
    return max(minimum, round(base * scale))


def _times(seconds: np.ndarray) -> pa.Array:
    return pa.array(START + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]"))


def _hex(values: np.ndarray) -> list[str]:
    return [f"{int(v):016x}" for v in values]


def _unique_ints(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n distinct integers in [lo, hi), in random order (accidental repeats would plant false sharing)."""
    out = np.unique(rng.integers(lo, hi, int(n * 1.05) + 16))
    while len(out) < n:
        out = np.unique(np.concatenate([out, rng.integers(lo, hi, n)]))
    rng.shuffle(out)
    return out[:n]


def _phones(rng: np.random.Generator, n: int) -> np.ndarray:
    # mainland mobile numbers 13x–19x: 1 + [3-9] + 9 digits
    return _unique_ints(rng, n, 13_000_000_000, 20_000_000_000)


def _ips(rng: np.random.Generator, n: int) -> list[str]:
    v = rng.integers(0x0B000000, 0xDF000000, n)  # public unicast-ish
    return [f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}" for x in v.tolist()]


class _Csv:
    """A CSV written in chunks through Arrow (fast, flat memory), into ``NAME.part`` then renamed."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.fh = self.part.open("wb")
        self.fh.write((",".join(header) + "\n").encode())
        self.header = list(header)
        self.rows = 0
        self.opts = pacsv.WriteOptions(
            include_header=False, quoting_style="none"
        )  # no value holds a comma or quote

    def write(self, columns: Sequence[Any]) -> None:
        table = pa.table(
            {
                h: (c if isinstance(c, pa.Array) else pa.array(c))
                for h, c in zip(self.header, columns, strict=True)
            }
        )
        pacsv.write_csv(table, self.fh, write_options=self.opts)
        self.rows += table.num_rows

    def close(self) -> int:
        self.fh.close()
        self.part.replace(self.path)
        return self.rows


# ------------------------------------------------------------------------------------------ customers


@dataclass
class _People:
    """The customer base, families and new customers (before the fraud registrations are added)."""

    phone: np.ndarray
    id_key: np.ndarray
    name_key: np.ndarray
    device: np.ndarray
    ip: np.ndarray  # int index into an ip list
    t: np.ndarray
    home: np.ndarray  # address key
    office: np.ndarray  # address key or -1
    family: np.ndarray  # family index or -1
    base: np.ndarray  # bool: registered before the month


def _people(rng: np.random.Generator, scale: float) -> tuple[_People, dict[str, Any]]:
    # never fewer than 20,000 customers: with fewer, every agent would see most of them in a month
    n_base = _n(40_000, scale, 20_000)
    n_new = _n(5_000, scale)
    n = n_base + n_new
    t = np.concatenate(
        [-rng.integers(45 * DAY, 730 * DAY, n_base), rng.integers(0, DAYS * DAY, n_new)]
    ).astype(np.int64)
    phone = _phones(rng, n)
    id_key = rng.integers(1, 2**62, n)
    name_key = rng.integers(1, 2**62, n)
    device = rng.integers(1, 2**62, n)
    ip = np.arange(n, dtype=np.int64)  # own residential / mobile IP
    home = rng.integers(1, 2**62, n)
    # offices and campuses: shared by many receivers
    n_offices = _n(300, scale)
    n_campus = _n(4, scale)
    office = np.full(n, -1, dtype=np.int64)
    office_keys = rng.integers(1, 2**62, n_offices + n_campus)
    at_office = rng.random(n) < 0.30
    office[at_office] = office_keys[rng.integers(0, n_offices, int(at_office.sum()))]
    at_campus = (~at_office) & (rng.random(n) < 0.05)
    office[at_campus] = office_keys[n_offices + rng.integers(0, n_campus, int(at_campus.sum()))]
    family = np.full(n, -1, dtype=np.int64)

    # families: 2–5 base customers on one phone (the first member's), linked by the home IP or a device
    n_fam = _n(1_500, scale)
    sizes = rng.integers(2, 6, n_fam)
    members = rng.permutation(n_base)[: int(sizes.sum())]
    families = []
    pos = 0
    for f, size in enumerate(sizes.tolist()):
        ms = members[pos : pos + size]
        pos += size
        if len(ms) < 2:
            continue
        head = ms[0]
        family[ms] = f
        home[ms] = home[head]
        for k, m in enumerate(ms[1:], 1):
            phone[m] = phone[head]
            if rng.random() < 0.4:
                device[m] = device[ms[rng.integers(0, k)]]  # a shared tablet or handed-down phone
            if rng.random() < 0.85 or device[m] not in device[ms[:k]]:
                ip[m] = ip[head]  # home broadband
        families.append({"phone": int(phone[head]), "accounts_idx": ms.tolist()})
    ppl = _People(phone, id_key, name_key, device, ip, t, home, office, family, np.arange(n) < n_base)
    return ppl, {"families": families, "n_base": n_base, "n_new": n_new}


# ------------------------------------------------------------------------------------------ staff


@dataclass
class _Staff:
    name: list[str]
    role: np.ndarray  # str
    team: list[str]
    team_idx: np.ndarray
    rate: np.ndarray  # events per working day
    works: np.ndarray  # staff × day bool
    night: np.ndarray  # bool: night shift (00–06 and 22–24)
    kind: list[str]  # planted kind or "" (normal), or a hard-negative label
    surge_team: np.ndarray  # team indices with the Double 11 surge


def _staff(rng: np.random.Generator, scale: float) -> tuple[_Staff, dict[str, Any]]:
    names: list[str] = []
    roles: list[str] = []
    teams: list[str] = []
    team_idx: list[int] = []
    rate: list[float] = []
    works_days: list[int] = []
    team_role: list[str] = []
    for role, (teams_per_unit, fewest, size, per_day, _, days) in _ROLES.items():
        for _ in range(_n(teams_per_unit, scale, fewest)):
            ti = len(team_role)
            team_role.append(role)
            for _ in range(size):
                names.append(f"st{len(names) + 1:06d}")
                roles.append(role)
                teams.append(f"{role[:2].upper()}{ti + 1:04d}")
                team_idx.append(ti)
                rate.append(per_day * rng.lognormal(0, 0.15))
                works_days.append(days)
    n = len(names)
    role_arr = np.array(roles)
    tidx = np.array(team_idx)
    works = np.zeros((n, DAYS), dtype=bool)
    for i, d in enumerate(works_days):
        works[i, rng.choice(DAYS, d, replace=False)] = True
    kind = [""] * n
    rate_arr = np.array(rate)
    cs_teams = [t for t, r in enumerate(team_role) if r == "customer_service"]
    night_team = cs_teams[-1]
    night = tidx == night_team
    # the Double 11 surge: one team in six of customer service and sales, everybody on duty
    surge_pool = [
        t for t, r in enumerate(team_role) if r in ("customer_service", "sales") and t != night_team
    ]
    surge_team = rng.choice(surge_pool, max(1, len(surge_pool) // 6), replace=False)
    for t in surge_team:
        works[tidx == t, DOUBLE_11 : DOUBLE_11 + 3] = True
    # busy but normal agents
    cs = np.flatnonzero((role_arr == "customer_service") & ~night)
    busy = rng.choice(cs, max(2, len(cs) // 10), replace=False)
    rate_arr[busy] *= rng.uniform(1.6, 2.5, len(busy))
    for i in busy:
        kind[i] = "hn_busy_agent"

    # planted: disjoint picks among the roles that do not export
    pool = [i for i in np.flatnonzero(np.isin(role_arr, _NON_EXPORTING) & ~night) if not kind[i]]
    pool = rng.permutation(pool).tolist()
    for k in ("grabber", "slow", "night", "exporter", "broker"):
        for _ in range(_n(3, scale)):
            kind[pool.pop()] = k
    exporting = [i for i in np.flatnonzero(np.isin(role_arr, ("analyst", "marketing"))) if not kind[i]]
    for i in rng.choice(exporting, _n(1, scale, 1), replace=False):
        kind[i] = "over_exporter"
    staff = _Staff(names, role_arr, teams, tidx, rate_arr, works, night, kind, np.asarray(surge_team))
    return staff, {"team_role": team_role, "night_team": night_team}


def _day_events(
    rng: np.random.Generator, st: _Staff, day: int, customers: np.ndarray, plans: dict[int, dict[str, Any]]
) -> dict[str, np.ndarray]:
    """Every access event of one day, in time order."""
    on = st.works[:, day]
    surge = np.ones(len(st.name))
    if DOUBLE_11 <= day < DOUBLE_11 + 3:
        surge[np.isin(st.team_idx, st.surge_team)] = rng.uniform(3.0, 5.0)
    lam = np.where(on, st.rate * surge, 0.0)
    counts = rng.poisson(lam)
    who = np.repeat(np.arange(len(st.name)), counts)
    m = len(who)
    night = st.night[who]
    # day shifts 08:00–22:00 (two shifts overlap), night shift 22:00–06:00 on the same calendar day
    t_day = 8 * HOUR + rng.integers(0, 14 * HOUR, m)
    t_night = rng.integers(0, 8 * HOUR, m)
    t_night = np.where(t_night < 6 * HOUR, t_night, t_night + 16 * HOUR)
    t = day * DAY + np.where(night, t_night, t_day)
    role = st.role[who]
    ticket_share = np.array([_ROLES[str(r)][4] for r in st.role])[who]
    search = rng.random(m) < np.where(role == "analyst", 0.8, 0.3)
    cols = {
        "staff": who,
        "customer": customers[rng.integers(0, len(customers), m)],
        "action": np.where(search, 1, 0),
        "rows": np.where(search, rng.poisson(8, m) + 1, 1),
        "ticket": np.where(rng.random(m) < ticket_share, rng.integers(10**9, 10**10, m), -1),
        "t": t,
    }
    extra: list[dict[str, np.ndarray]] = []

    def add(
        staff: int,
        cust: np.ndarray,
        times: np.ndarray,
        *,
        ticket: bool = False,
        action: int = 0,
        rows: np.ndarray | None = None,
    ) -> None:
        k = len(times)
        extra.append(
            {
                "staff": np.full(k, staff),
                "customer": cust,
                "action": np.full(k, action),
                "rows": rows if rows is not None else np.ones(k, dtype=np.int64),
                "ticket": rng.integers(10**9, 10**10, k) if ticket else np.full(k, -1),
                "t": times,
            }
        )

    def rand_customers(k: int) -> np.ndarray:
        return customers[rng.integers(0, len(customers), k)]

    for i, plan in plans.items():
        kind = plan["kind"]
        if kind == "grabber" and day in plan["days"]:
            k = plan["per_day"]
            add(i, rand_customers(k), day * DAY + 9 * HOUR + np.sort(rng.integers(0, 12 * HOUR, k)), action=1)
        elif kind == "slow" and on[i]:
            k = int(rng.integers(25, 51))
            add(i, rand_customers(k), day * DAY + 8 * HOUR + rng.integers(0, 14 * HOUR, k))
        elif kind == "night" and day in plan["days"]:
            k = int(rng.integers(30, 81))
            add(i, rand_customers(k), day * DAY + rng.integers(0, 5 * HOUR, k))
        elif kind == "exporter" and day in plan["days"]:
            add(
                i,
                np.full(1, -1),
                np.array([day * DAY + int(rng.integers(9 * HOUR, 21 * HOUR))]),
                action=2,
                rows=rng.integers(300, 5001, 1),
            )
        elif kind == "broker" and day in plan["view_days"]:
            vict = plan["victims_by_day"][day]
            add(i, vict, day * DAY + 8 * HOUR + rng.integers(0, 14 * HOUR, len(vict)), ticket=True)
        elif kind == "small_report" and day in plan["days"]:
            add(i, np.full(1, -1), np.array([day * DAY + 16 * HOUR]), action=2, rows=rng.integers(5, 51, 1))
        elif kind in ("analyst_export", "over_exporter") and day in plan["days"]:
            k = len(plan["days"][day])
            add(
                i,
                np.full(k, -1),
                day * DAY + 10 * HOUR + rng.integers(0, 8 * HOUR, k),
                action=2,
                rows=np.array(plan["days"][day]),
            )
        elif kind == "etl":
            add(
                i,
                np.full(1, -1),
                np.array([day * DAY + int(rng.integers(1 * HOUR, 3 * HOUR))]),
                action=2,
                rows=rng.integers(40_000, 60_001, 1),
            )
    if extra:
        for key in cols:
            cols[key] = np.concatenate([cols[key], *(e[key] for e in extra)])
    order = np.argsort(cols["t"], kind="stable")
    return {k: v[order] for k, v in cols.items()}


def _staff_plans(
    rng: np.random.Generator, st: _Staff, victims: dict[int, np.ndarray]
) -> dict[int, dict[str, Any]]:
    plans: dict[int, dict[str, Any]] = {}
    for i, kind in enumerate(st.kind):
        if kind == "grabber":
            days = rng.choice(DAYS, int(rng.integers(1, 4)), replace=False).tolist()
            plans[i] = {
                "kind": kind,
                "days": days,
                "per_day": int(rng.integers(500, 2001)) // len(days) + 200,
            }
        elif kind == "slow":
            plans[i] = {"kind": kind}
        elif kind == "night":
            plans[i] = {
                "kind": kind,
                "days": rng.choice(DAYS, int(rng.integers(8, 16)), replace=False).tolist(),
            }
        elif kind == "exporter":
            plans[i] = {
                "kind": kind,
                "days": rng.choice(DAYS, int(rng.integers(1, 5)), replace=False).tolist(),
            }
        elif kind == "broker":
            v = victims[i]
            day_of = rng.integers(0, BROKER_LAST_VIEW_DAY + 1, len(v))
            by_day = {d: v[day_of == d] for d in range(BROKER_LAST_VIEW_DAY + 1) if (day_of == d).any()}
            plans[i] = {"kind": kind, "view_days": set(by_day), "victims_by_day": by_day}
    role_exports: dict[str, list[int]] = {}
    for i, role in enumerate(st.role.tolist()):
        if role == "etl_service":
            plans[i] = {"kind": "etl"}
        elif role in ("analyst", "marketing") and st.kind[i] != "over_exporter":
            # an exporting role: 2–6 exports a month of 100–2,000 (analyst) or 1,000–5,000 rows (marketing)
            lo, hi = (100, 2_001) if role == "analyst" else (1_000, 5_001)
            days = rng.choice(DAYS, int(rng.integers(2, 7)), replace=False).tolist()
            per = {d: [int(rng.integers(lo, hi))] for d in days}
            plans[i] = {"kind": "analyst_export", "days": per}
            role_exports.setdefault(role, []).append(sum(x[0] for x in per.values()))
        elif role in _NON_EXPORTING and not st.kind[i] and rng.random() < 0.10:
            plans[i] = {"kind": "small_report", "days": [int(rng.integers(0, DAYS))]}
            st.kind[i] = "hn_small_report"
    for i, kind in enumerate(st.kind):
        if kind == "over_exporter":
            median = float(np.median(role_exports[str(st.role[i])]))
            total = median * rng.uniform(15, 30)
            days = rng.choice(DAYS, int(rng.integers(2, 5)), replace=False).tolist()
            plans[i] = {"kind": kind, "days": {d: [int(total / len(days))] for d in days}}
    return plans


# ------------------------------------------------------------------------------------------ generate


def generate(
    out_dir: str | Path, *, seed: int = 7, scale: float = 1.0, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Write the files and their ground truth to ``out_dir``; return the truth dict."""
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _name: None)
    r_people, r_staff, r_leak, r_orders, r_access = (
        np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(5)
    )

    step("customers")
    ppl, t_people = _people(r_people, scale)
    st, t_staff = _staff(r_staff, scale)
    base_idx = np.flatnonzero(ppl.base)

    # --- leaks: who is misused, by how many fraud registrations -------------------------------
    step("registrations")
    rng = r_leak
    free = np.setdiff1d(base_idx, np.flatnonzero(ppl.family >= 0))  # victims are not family phones
    free = rng.permutation(free)
    victims: dict[int, np.ndarray] = {}
    leaks: list[dict[str, Any]] = []  # person index (or -1: outside list) + misuse window
    pos = 0
    for i, kind in enumerate(st.kind):
        if kind == "broker":
            k = int(rng.integers(40, 81))
            victims[i] = free[pos : pos + k]
            pos += k
            for p in victims[i].tolist():
                leaks.append({"person": p, "source": st.name[i], "from_day": BROKER_LAST_VIEW_DAY + 1})
    for p in free[pos : pos + _n(20, scale)].tolist():
        leaks.append({"person": p, "source": "breach_elsewhere", "from_day": 0})
    pos += _n(20, scale)
    n_outside = _n(40, scale)
    out_phone = _phones(rng, n_outside + 10)
    out_phone = out_phone[~np.isin(out_phone, ppl.phone)][:n_outside]
    for j in range(len(out_phone)):
        leaks.append({"person": -1 - j, "source": "outside_list", "from_day": 0})

    fr_phone: list[int] = []
    fr_id: list[int] = []
    fr_t: list[int] = []
    fr_leak: list[int] = []
    out_id = rng.integers(1, 2**62, len(out_phone))
    for li, lk in enumerate(leaks):
        p = lk["person"]
        leaked_phone = int(ppl.phone[p]) if p >= 0 else int(out_phone[-1 - p])
        idk = int(ppl.id_key[p]) if p >= 0 else int(out_id[-1 - p])
        id_only = rng.random() < 0.30
        lk.update(phone=leaked_phone, id_key=idk, kind="resident_id" if id_only else "phone")
        for _ in range(int(rng.integers(4, 11))):
            fr_leak.append(li)
            fr_phone.append(-1 if id_only else leaked_phone)  # -1: a fresh phone, drawn below
            fr_id.append(idk if id_only or rng.random() < 0.7 else -1)
            fr_t.append(int(rng.integers(lk["from_day"] * DAY, DAYS * DAY)))
    n_fr = len(fr_leak)
    # brushing rings that ship to phones from a bought list: fresh accounts, fresh identities
    n_rings = _n(4, scale)
    ring_sizes = rng.integers(8, 16, n_rings)
    n_ring_acc = int(ring_sizes.sum())
    fresh_phone = _phones(rng, n_fr + n_ring_acc + 10)
    fresh_phone = fresh_phone[~np.isin(fresh_phone, np.concatenate([ppl.phone, out_phone]))]
    fph = np.array(fr_phone, dtype=np.int64)
    used = int((fph < 0).sum())  # the ID-only leaks register with fresh phones
    fph[fph < 0] = fresh_phone[:used]
    fid = np.array(fr_id, dtype=np.int64)
    fid[fid < 0] = rng.integers(1, 2**62, int((fid < 0).sum()))
    ring_phone = fresh_phone[used : used + n_ring_acc]
    n_ppl = len(ppl.phone)
    phone = np.concatenate([ppl.phone, fph, ring_phone])
    id_key = np.concatenate([ppl.id_key, fid, rng.integers(1, 2**62, n_ring_acc)])
    name_key = np.concatenate([ppl.name_key, rng.integers(1, 2**62, n_fr + n_ring_acc)])
    device = np.concatenate([ppl.device, rng.integers(1, 2**62, n_fr + n_ring_acc)])
    ip_idx = np.concatenate([ppl.ip, np.arange(n_ppl, n_ppl + n_fr + n_ring_acc)])
    t = np.concatenate([ppl.t, np.array(fr_t, dtype=np.int64), rng.integers(0, 5 * DAY, n_ring_acc)])
    order = np.argsort(t, kind="stable")
    account = np.empty(len(t), dtype=np.int64)
    account[order] = 10_000_001 + np.arange(len(t))
    ip_text = _ips(rng, n_ppl + n_fr + n_ring_acc)
    reg = _Csv(
        out / "registrations.csv",
        ["account", "registered_at", "phone", "id_hash", "name_hash", "device_id", "ip"],
    )
    reg.write(
        [
            account[order],
            _times(t[order]),
            phone[order],
            _hex(id_key[order]),
            _hex(name_key[order]),
            _hex(device[order]),
            [ip_text[k] for k in ip_idx[order].tolist()],
        ]
    )
    files = {"registrations.csv": reg.close()}
    fr_accounts = account[n_ppl : n_ppl + n_fr]
    ring_accounts = account[n_ppl + n_fr :]

    # --- orders ----------------------------------------------------------------------------------
    step("orders")
    rng = r_orders
    n_orders = _n(60_000, scale)
    buyers_idx = rng.integers(0, n_ppl, n_orders)
    ot = rng.integers(0, DAYS * DAY, n_orders)
    ot = np.maximum(ot, ppl.t[buyers_idx])  # nobody orders before registering
    rcv_phone = ppl.phone[buyers_idx].copy()
    addr = ppl.home[buyers_idx].copy()
    has_office = ppl.office[buyers_idx] >= 0
    to_office = has_office & (rng.random(n_orders) < 0.4)
    addr[to_office] = ppl.office[buyers_idx][to_office]
    # family members ship to the family phone at home (their phone already is it when registered on it)
    fam_members = ppl.family[buyers_idx] >= 0
    # gifts: to another customer's phone at their home
    gift = (~fam_members) & (rng.random(n_orders) < 0.03)
    g_to = rng.integers(0, n_ppl, int(gift.sum()))
    rcv_phone[gift] = ppl.phone[g_to]
    addr[gift] = ppl.home[g_to]
    o_buyer = [account[buyers_idx]]
    o_phone = [rcv_phone]
    o_addr = [addr]
    o_t = [ot]
    ring_truth = []
    rpos = 0
    receiver_leaks = []
    for r, size in enumerate(ring_sizes.tolist()):
        members = ring_accounts[rpos : rpos + size]
        rpos += size
        n_ph = int(rng.integers(5, 11))
        # bought receiver phones: customers of the base (their owner keeps ordering) or outside numbers
        from_base = rng.random(n_ph) < 0.5
        phones = np.where(from_base, ppl.phone[free[pos : pos + n_ph]], _phones(rng, n_ph))
        pos += n_ph
        for ph, fb in zip(phones.tolist(), from_base.tolist(), strict=True):
            users = rng.choice(members, int(rng.integers(4, 9)), replace=False)
            k = len(users)
            o_buyer.append(users)
            o_phone.append(np.full(k, ph))
            o_addr.append(rng.integers(1, 2**62, k))
            o_t.append(rng.integers(5 * DAY, DAYS * DAY, k))
            receiver_leaks.append(
                {"phone": ph, "owner_is_customer": fb, "accounts": users.tolist(), "ring": r}
            )
        ring_truth.append({"ring": r, "accounts": members.tolist()})
    buyer = np.concatenate(o_buyer)
    otime = np.concatenate(o_t)
    oorder = np.argsort(otime, kind="stable")
    orders = _Csv(
        out / "orders.csv", ["orderid", "buyer", "receiver_phone", "receiver_address_hash", "order_time"]
    )
    orders.write(
        [
            np.arange(1, len(buyer) + 1) + 5_000_000_000,
            buyer[oorder],
            np.concatenate(o_phone)[oorder],
            _hex(np.concatenate(o_addr)[oorder]),
            _times(otime[oorder]),
        ]
    )
    files["orders.csv"] = orders.close()

    # --- staff and access log ----------------------------------------------------------------------
    step("access log")
    staff_csv = _Csv(out / "staff.csv", ["staff", "role", "team"])
    staff_csv.write([st.name, st.role.tolist(), st.team])
    files["staff.csv"] = staff_csv.close()
    customers = account[base_idx]
    victim_accounts = {i: account[v] for i, v in victims.items()}
    plans = _staff_plans(r_access, st, victim_accounts)
    log = _Csv(
        out / "access_log.csv",
        ["event_id", "staff", "role", "customer", "action", "rows", "ticket_id", "event_time"],
    )
    names = np.array(st.name)
    actions = np.array(["view", "search", "export"])
    next_id = 1
    for day in range(DAYS):
        ev = _day_events(r_access, st, day, customers, plans)
        m = len(ev["t"])
        cust = pa.array(ev["customer"], mask=ev["customer"] < 0)
        ticket = pa.array(ev["ticket"], mask=ev["ticket"] < 0)
        log.write(
            [
                np.arange(next_id, next_id + m),
                names[ev["staff"]],
                st.role[ev["staff"]],
                cust,
                actions[ev["action"]],
                ev["rows"],
                ticket,
                _times(ev["t"]),
            ]
        )
        next_id += m
    files["access_log.csv"] = log.close()

    # --- truth -----------------------------------------------------------------------------------
    step("truth")
    planted_staff = [
        {"staff": st.name[i], "kind": k, "role": str(st.role[i]), "team": st.team[i]}
        for i, k in enumerate(st.kind)
        if k and not k.startswith("hn_")
    ]
    leak_rows = []
    for li, lk in enumerate(leaks):
        accs = fr_accounts[np.array(fr_leak) == li].tolist()
        owner = int(account[lk["person"]]) if lk["person"] >= 0 else None
        leak_rows.append(
            {
                "leak": li,
                "identifier_kind": lk["kind"],
                "phone": lk["phone"],
                "id_hash": f"{lk['id_key']:016x}",
                "source": lk["source"],
                "owner_account": owner,
                "accounts": accs,
            }
        )
    truth_accounts = [(a, "registered_with_leaked", lr["leak"]) for lr in leak_rows for a in lr["accounts"]]
    seen = set()
    for j, rl in enumerate(receiver_leaks):
        for a in rl["accounts"]:
            if a not in seen:
                seen.add(a)
                truth_accounts.append((a, "shipped_to_leaked", len(leak_rows) + j))
    with (out / "truth_staff.csv").open("w", encoding="utf-8") as fh:
        fh.write("staff,kind,role,team\n")
        fh.writelines(f"{s['staff']},{s['kind']},{s['role']},{s['team']}\n" for s in planted_staff)
    with (out / "truth_accounts.csv").open("w", encoding="utf-8") as fh:
        fh.write("account,kind,leak\n")
        fh.writelines(f"{a},{k},{li}\n" for a, k, li in truth_accounts)
    fam_accounts = [[int(account[m]) for m in f["accounts_idx"]] for f in t_people["families"]]
    truth: dict[str, Any] = {
        "generator": "fanchaoxin.simulate.data_access",
        "version": 1,
        "seed": seed,
        "scale": scale,
        "start": "2024-11-01 00:00:00",
        "days": DAYS,
        "files": files,
        "staff": planted_staff,
        "leaked_identities": leak_rows,
        "leaked_receivers": receiver_leaks,
        "rings": ring_truth,
        "hard_negatives": {
            "family_accounts": fam_accounts,
            "busy_agents": [st.name[i] for i, k in enumerate(st.kind) if k == "hn_busy_agent"],
            "small_report_agents": [st.name[i] for i, k in enumerate(st.kind) if k == "hn_small_report"],
            "night_shift_team": st.team[int(np.flatnonzero(st.team_idx == t_staff["night_team"])[0])],
            "double11_surge_teams": sorted(
                {st.team[int(np.flatnonzero(st.team_idx == t)[0])] for t in st.surge_team.tolist()}
            ),
            "etl_accounts": [st.name[i] for i in np.flatnonzero(st.role == "etl_service").tolist()],
            "analysts": [st.name[i] for i in np.flatnonzero(st.role == "analyst").tolist()],
        },
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth
