"""A synthetic ride-hailing city with planted 刷单骗补 and the exact ground truth (``fcx simulate rides``).

One month (2024-03-01 … 2024-03-30, local time) of an imaginary ride-hailing platform in a city of
36 × 36 km, deterministic for a seed. The platform pays subsidies by published rules (the campaign
windows in ``subsidies.csv``), the same for every trip: a rider coupon (立减 up to 8 yuan, the rider
pays at least 1 yuan) at weekends and on Wednesday nights, a 3-yuan per-trip reward to drivers at
weekday peaks, and a daily-threshold bonus to a driver on his 15th (30 yuan) and 25th (50 yuan)
trip of a calendar day. Subsidy brushing is profitable where the subsidy of a trip exceeds what the
fake trip costs — short trips in coupon windows, or padding a day to a bonus threshold — and that
is what is planted.

Files (UTF-8 CSV with a header; times are local ``YYYY-MM-DD HH:MM:SS``):

``trips.csv`` — one completed trip per row, as a platform's order log has them:
    ``trip_id`` (integer), ``driver`` (driver account, ``D…``), ``rider`` (passenger account,
    ``R…``), ``start_time`` (pick-up), ``end_time`` (drop-off), ``origin_lat``, ``origin_lon``,
    ``dest_lat``, ``dest_lon`` (WGS-84 degrees, 5 decimals), ``distance_km`` (route length),
    ``fare`` (yuan, before subsidy), ``subsidy`` (yuan the platform paid on the trip: coupon plus
    driver rewards), ``rider_device`` (device the trip was booked from), ``driver_device`` (device
    running the driver app), ``payment_account`` (what the rider paid with), ``payout_account``
    (where the driver's earnings go).
``subsidies.csv`` — ``campaign_id, kind, start_time, end_time, amount, threshold_trips``: windows of
    ``rider_coupon`` and ``driver_peak`` campaigns, and the ``driver_daily_threshold`` bonuses (one
    row each for the month, ``threshold_trips`` set).
``truth.json``, ``truth_accounts.csv`` (``account, role, ring, kind``), ``truth_trips.csv``
    (``trip_id, ring``): every planted ring, its accounts and fake trips, and the hard negatives.

Planted **刷单骗补** groups ("rings"; at scale 1 about 40, of these kinds):
``pair_device`` one person with a driver and a rider account, booking from the driver's phone;
``pair_payment`` the same, paying with the driver's payout account; ``pair_accomplice`` a driver
and one or two friends, nothing shared; ``cross`` two people, each with a driver and a rider account
(one phone, one wallet each), driving each other (交叉刷单); ``ring`` 2–4 drivers and 3–8 rider
accounts run from one or two phones; ``threshold`` a driver with 9–13 real trips a day pads it to
the 15-trip bonus with trips of one or two accomplices late at night. Fake trips are short
(0.5–2.2 km), mostly A→B→A loops minutes apart, mostly inside subsidy windows; a third of the
groups are careful (no loops). Fraud riders also take a few real trips.

Hard negatives (legitimate; recorded in truth.json under ``hard_negatives``): commuters (home→work
and back on weekdays, various drivers; 15 % with a regular driver who takes most of their commutes;
a quarter of commutes are short, 1.8–3.5 km), campus shuttles (hundreds of students making short
trips between dorms, canteens and teaching buildings with a few campus drivers), airport runs
(airport-queue drivers; frequent flyers with a regular 专车 driver), families (two to four rider
accounts sharing a payment account and a tablet; in a quarter of them a member is a driver whose
payout account and phone the family uses, and who drives them a few times a month), and busy
drivers (5 % of drivers with many trips a day, reaching the daily bonuses at peak hours).

Scale 1 is about 150,000 trips, 2,500 drivers and 30,000 riders; volumes and the number of planted
groups grow with the scale, group sizes do not. Trips are generated and written one day at a time,
so memory does not grow with the number of trips (scale 67 ≈ 10,000,000 trips). Each part draws
from its own child of ``numpy.random.SeedSequence(seed)``, so the output is byte-identical for a seed.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

START = np.datetime64("2024-03-01T00:00:00", "s")  # a Friday
START_WEEKDAY = 4  # Monday = 0
DAYS = 30
DAY = 86_400
HOUR = 3_600
MINUTE = 60

LAT0, LON0 = 30.66, 104.06  # the city centre
KM_LAT = 111.2
KM_LON = 111.2 * math.cos(math.radians(LAT0))
CITY_KM = 18.0  # the city spans ±18 km around its centre
ZONES = 3  # drivers work in one of 3 × 3 zones

BASE_FARE, BASE_KM, PER_KM, PER_MIN = 8.0, 2.0, 1.9, 0.3
COUPON_MAX, COUPON_MIN_PAY = 8.0, 1.0
PEAK_REWARD = 3.0
THRESHOLDS = ((15, 30.0), (25, 50.0))  # (Nth trip of a driver's day, bonus in yuan)

TRIP_HEADER = [
    "trip_id",
    "driver",
    "rider",
    "start_time",
    "end_time",
    "origin_lat",
    "origin_lon",
    "dest_lat",
    "dest_lon",
    "distance_km",
    "fare",
    "subsidy",
    "rider_device",
    "driver_device",
    "payment_account",
    "payout_account",
]
SUBSIDY_HEADER = ["campaign_id", "kind", "start_time", "end_time", "amount", "threshold_trips"]

# Share of trips per hour of day: commuting peaks at 8 and 18, a late-evening tail.
_DIURNAL = np.array(
    [
        1.2,
        0.6,
        0.4,
        0.3,
        0.3,
        0.6,
        1.8,
        4.5,
        7.0,
        5.5,
        4.2,
        4.2,
        4.8,
        4.3,
        4.0,
        4.2,
        4.8,
        6.5,
        7.5,
        6.0,
        4.8,
        4.0,
        3.0,
        2.0,
    ]
)
_DIURNAL = _DIURNAL / _DIURNAL.sum()

GROUP_KINDS = ("pair_device", "pair_payment", "pair_accomplice", "cross", "ring", "threshold")
_KIND_P = np.array([0.18, 0.16, 0.18, 0.14, 0.2, 0.14])

ProgressFn = Callable[[str], None]


def _n(base: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def fmt_times(seconds: np.ndarray) -> list[str]:
    ts = START + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")
    out: list[str] = np.char.replace(np.datetime_as_string(ts, unit="s"), "T", " ").tolist()
    return out


def _token(prefix: str, codes: np.ndarray) -> list[str]:
    """Distinct, random-looking ids for integer codes (a bijective multiplicative hash on 32 bits)."""
    salt = np.uint64(sum(map(ord, prefix)) * 0x9E3779B1 % (1 << 32))
    h = (np.asarray(codes, dtype=np.uint64) * np.uint64(2654435761) + salt) % np.uint64(1 << 32)
    return [f"{prefix}{v:08x}" for v in h.tolist()]


def weekday(day: int) -> int:
    return (START_WEEKDAY + day) % 7


# ------------------------------------------------------------------------------------- campaigns


def campaign_windows(days: int = DAYS) -> list[tuple[str, int, int, float]]:
    """Per-trip subsidy windows (kind, start second, end second, amount), in time order."""
    out: list[tuple[str, int, int, float]] = []
    for day in range(days):
        base = day * DAY
        wd = weekday(day)
        if wd < 5:
            out.append(("driver_peak", base + 7 * HOUR, base + 9 * HOUR + 30 * MINUTE, PEAK_REWARD))
            out.append(("driver_peak", base + 17 * HOUR, base + 20 * HOUR, PEAK_REWARD))
        if wd == 2:
            out.append(("rider_coupon", base + 18 * HOUR, base + 22 * HOUR, COUPON_MAX))
        if wd >= 5:
            out.append(("rider_coupon", base + 10 * HOUR, base + 22 * HOUR, COUPON_MAX))
    return sorted(out, key=lambda w: (w[1], w[0]))


def _in_windows(starts: np.ndarray, windows: list[tuple[str, int, int, float]], kind: str) -> np.ndarray:
    ws = np.array([w[1] for w in windows if w[0] == kind], dtype=np.int64)
    we = np.array([w[2] for w in windows if w[0] == kind], dtype=np.int64)
    if len(ws) == 0:
        return np.zeros(len(starts), dtype=bool)
    i = np.searchsorted(ws, starts, side="right") - 1
    ok = i >= 0
    return ok & (starts < np.where(ok, we[np.clip(i, 0, None)], 0))


def _sessions_start(rng: np.random.Generator, day: int, windows: list[tuple[str, int, int, float]]) -> int:
    """When a fake-trip session starts: inside one of the day's subsidy windows (80 %), else late evening."""
    todays = [w for w in windows if day * DAY <= w[1] < (day + 1) * DAY]
    if todays and rng.random() < 0.8:
        w = todays[int(rng.integers(len(todays)))]
        return int(rng.integers(w[1], max(w[1] + 1, w[2] - 50 * MINUTE)))
    return day * DAY + int(rng.integers(20 * HOUR, 22 * HOUR + 30 * MINUTE))


# ----------------------------------------------------------------------------------------- the city


@dataclass
class _City:
    n_drivers: int
    n_riders: int
    driver_zone: np.ndarray
    driver_w: np.ndarray
    rider_x: np.ndarray
    rider_y: np.ndarray
    rider_w: np.ndarray
    rider_device: np.ndarray  # device codes
    rider_alt_device: np.ndarray  # a second device used on 30 % of trips (family tablet), −1: none
    rider_payment: np.ndarray  # payment-account codes
    driver_device: np.ndarray
    driver_payout: np.ndarray
    hotspots: np.ndarray
    zone_drivers: list[np.ndarray] = field(default_factory=list)
    zone_cum: list[np.ndarray] = field(default_factory=list)
    rider_cum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    next_device: int = 0
    next_payment: int = 0

    def finish(self) -> None:
        self.zone_drivers, self.zone_cum = [], []
        for z in range(ZONES * ZONES):
            idx = np.flatnonzero((self.driver_zone == z) & (self.driver_w > 0))
            if len(idx) == 0:  # a tiny city may leave a zone empty: anyone comes
                idx = np.flatnonzero(self.driver_w > 0)
            w = self.driver_w[idx]
            self.zone_drivers.append(idx)
            self.zone_cum.append(np.cumsum(w) / w.sum())
        self.rider_cum = np.cumsum(self.rider_w) / self.rider_w.sum()

    def new_device(self) -> int:
        self.next_device += 1
        return self.next_device - 1

    def new_payment(self) -> int:
        self.next_payment += 1
        return self.next_payment - 1

    def pick_drivers(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        zone = zone_of(x, y)
        out = np.empty(len(x), dtype=np.int64)
        u = rng.random(len(x))
        for z in np.unique(zone):
            m = zone == z
            out[m] = self.zone_drivers[z][np.searchsorted(self.zone_cum[z], u[m])]
        return out

    def pick_riders(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.minimum(np.searchsorted(self.rider_cum, rng.random(n)), self.n_riders - 1)


def zone_of(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    cell = 2 * CITY_KM / ZONES
    zx = np.clip(((np.asarray(x) + CITY_KM) // cell).astype(np.int64), 0, ZONES - 1)
    zy = np.clip(((np.asarray(y) + CITY_KM) // cell).astype(np.int64), 0, ZONES - 1)
    return zy * ZONES + zx


def zone_centre(z: int) -> tuple[float, float]:
    cell = 2 * CITY_KM / ZONES
    return -CITY_KM + (z % ZONES + 0.5) * cell, -CITY_KM + (z // ZONES + 0.5) * cell


def _build_city(rng: np.random.Generator, scale: float) -> _City:
    nd, nr = _n(2500, scale, 60), _n(30000, scale, 600)
    # Riders live where people live: denser towards the centre.
    rx = np.clip(rng.normal(0, 6.5, nr), -CITY_KM + 0.5, CITY_KM - 0.5)
    ry = np.clip(rng.normal(0, 6.5, nr), -CITY_KM + 0.5, CITY_KM - 0.5)
    rw = rng.lognormal(0, 0.9, nr)
    dz = zone_of(rng.normal(0, 7.0, nd), rng.normal(0, 7.0, nd))
    dw = rng.lognormal(0, 0.5, nd)
    city = _City(
        n_drivers=nd,
        n_riders=nr,
        driver_zone=dz,
        driver_w=dw,
        rider_x=rx,
        rider_y=ry,
        rider_w=rw,
        rider_device=np.arange(nr, dtype=np.int64),
        rider_alt_device=np.full(nr, -1, dtype=np.int64),
        rider_payment=np.arange(nr, dtype=np.int64),
        driver_device=np.arange(nr, nr + nd, dtype=np.int64),
        driver_payout=np.arange(nr, nr + nd, dtype=np.int64),
        hotspots=np.column_stack([rng.normal(0, 5, 25), rng.normal(0, 5, 25)]),
        next_device=nr + nd,
        next_payment=nr + nd,
    )
    return city


# ------------------------------------------------------------------------------------------- trips


@dataclass
class _Trips:
    """Trips of one day as columns (driver/rider indices, device and payment codes, km coordinates)."""

    driver: list[np.ndarray] = field(default_factory=list)
    rider: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    x0: list[np.ndarray] = field(default_factory=list)
    y0: list[np.ndarray] = field(default_factory=list)
    x1: list[np.ndarray] = field(default_factory=list)
    y1: list[np.ndarray] = field(default_factory=list)
    speed: list[np.ndarray] = field(default_factory=list)
    rider_device: list[np.ndarray] = field(default_factory=list)
    ring: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        rng: np.random.Generator,
        city: _City,
        driver: Any,
        rider: Any,
        start: Any,
        x0: Any,
        y0: Any,
        x1: Any,
        y1: Any,
        *,
        ring: int = -1,
        rider_device: Any = None,
        slow: bool = False,
    ) -> None:
        start = np.asarray(start, dtype=np.int64)
        n = len(start)
        if n == 0:
            return
        rider = np.broadcast_to(np.asarray(rider, dtype=np.int64), (n,)).copy()
        self.driver.append(np.broadcast_to(np.asarray(driver, dtype=np.int64), (n,)).copy())
        self.rider.append(rider)
        self.start.append(start)
        for lst, v in ((self.x0, x0), (self.y0, y0), (self.x1, x1), (self.y1, y1)):
            lst.append(np.clip(np.broadcast_to(np.asarray(v, dtype=float), (n,)), -CITY_KM, CITY_KM))
        self.speed.append(rng.uniform(14, 24, n) if slow else rng.uniform(17, 33, n))
        if rider_device is None:
            dev = city.rider_device[rider].copy()
            alt = city.rider_alt_device[rider]
            use_alt = (alt >= 0) & (rng.random(n) < 0.3)
            dev[use_alt] = alt[use_alt]
        else:
            dev = np.broadcast_to(np.asarray(rider_device, dtype=np.int64), (n,)).copy()
        self.rider_device.append(dev)
        self.ring.append(np.full(n, ring, dtype=np.int64))

    def columns(self) -> dict[str, np.ndarray]:
        return {
            k: np.concatenate(getattr(self, k))
            for k in ("driver", "rider", "start", "x0", "y0", "x1", "y1", "speed", "rider_device", "ring")
        }


def _normal_trips(rng: np.random.Generator, city: _City, day: int, trips: _Trips, scale: float) -> None:
    wd = weekday(day)
    n = int(rng.poisson(5000 * scale * (1.1 if wd >= 5 else 1.0)))
    rider = city.pick_riders(rng, n)
    near_home = rng.random(n) < 0.55
    spot = city.hotspots[rng.integers(0, len(city.hotspots), n)]
    x0 = np.where(near_home, city.rider_x[rider] + rng.normal(0, 1.5, n), spot[:, 0] + rng.normal(0, 1.2, n))
    y0 = np.where(near_home, city.rider_y[rider] + rng.normal(0, 1.5, n), spot[:, 1] + rng.normal(0, 1.2, n))
    x0, y0 = np.clip(x0, -CITY_KM, CITY_KM), np.clip(y0, -CITY_KM, CITY_KM)
    length = np.clip(rng.lognormal(math.log(4.5), 0.75, n), 0.4, 30)
    angle = rng.uniform(0, 2 * math.pi, n)
    x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
    start = day * DAY + rng.choice(24, n, p=_DIURNAL) * HOUR + rng.integers(0, HOUR, n)
    trips.add(rng, city, city.pick_drivers(rng, x0, y0), rider, start, x0, y0, x1, y1)


# ---------------------------------------------------------------------------------- hard negatives


@dataclass
class _Negatives:
    commuters: np.ndarray
    work_x: np.ndarray
    work_y: np.ndarray
    regular_driver: np.ndarray  # −1: none
    campuses: list[dict[str, Any]]
    airport_drivers: np.ndarray
    flyers: np.ndarray
    flyer_driver: np.ndarray  # −1: none
    flyer_days: list[list[tuple[int, bool]]]
    families: list[dict[str, Any]]
    family_rides: list[tuple[int, int, int]]  # (day, driver, rider)
    busy_drivers: np.ndarray


AIRPORT = (-13.0, -11.0)


def _plan_negatives(
    rng: np.random.Generator, city: _City, scale: float, taken: np.ndarray, taken_riders: np.ndarray
) -> _Negatives:
    """Pick the accounts of the hard negatives; `taken*` mark accounts already used (never reused)."""
    free_drivers = rng.permutation(np.flatnonzero(~taken))
    pos = 0

    def drivers(k: int) -> np.ndarray:
        nonlocal pos
        out = free_drivers[pos : pos + k]
        pos += k
        taken[out] = True
        return out

    riders = rng.permutation(np.flatnonzero(~taken_riders))
    rpos = 0

    def rider_block(k: int) -> np.ndarray:
        nonlocal rpos
        out = riders[rpos : rpos + k]
        rpos += k
        return out

    # busy drivers: many trips a day, at peak hours as well as everyone else's
    busy = drivers(_n(125, scale, 3))
    city.driver_w[busy] *= 12.0

    n_comm = _n(400, scale, 10)
    commuters = rider_block(n_comm)
    short = rng.random(n_comm) < 0.25
    dist = np.where(short, rng.uniform(1.8, 3.5, n_comm), rng.uniform(4, 15, n_comm))
    ang = rng.uniform(0, 2 * math.pi, n_comm)
    wx = np.clip(city.rider_x[commuters] + dist * np.cos(ang), -CITY_KM, CITY_KM)
    wy = np.clip(city.rider_y[commuters] + dist * np.sin(ang), -CITY_KM, CITY_KM)
    has_regular = rng.random(n_comm) < 0.15
    regular = np.full(n_comm, -1, dtype=np.int64)
    regular[has_regular] = drivers(int(has_regular.sum()))

    campuses = []
    for _ in range(_n(2, scale, 1)):
        cx, cy = rng.uniform(-10, 10, 2)
        spots = np.column_stack([cx + rng.uniform(-0.9, 0.9, 5), cy + rng.uniform(-0.9, 0.9, 5)])
        campuses.append({"spots": spots, "drivers": drivers(20), "students": rider_block(250)})

    airport_drivers = drivers(_n(80, scale, 4))
    flyers = rider_block(_n(30, scale, 3))
    flyer_driver = np.full(len(flyers), -1, dtype=np.int64)
    reg = rng.random(len(flyers)) < 0.5
    flyer_driver[reg] = drivers(int(reg.sum()))
    flyer_days = []  # (day, to the airport?) per flyer: out on a day, back two to four days later
    for _ in flyers:
        trips_out = sorted(int(d) for d in rng.choice(DAYS - 4, int(rng.integers(3, 6)), replace=False))
        flyer_days.append(
            sorted([(d, True) for d in trips_out] + [(d + int(rng.integers(2, 5)), False) for d in trips_out])
        )

    families, family_rides = [], []
    for _ in range(_n(150, scale, 4)):
        members = rider_block(int(rng.integers(2, 5)))
        pay = city.new_payment()
        tablet = city.new_device()
        city.rider_payment[members] = pay
        city.rider_alt_device[members] = tablet
        fam: dict[str, Any] = {"riders": members, "payment": pay, "driver": None}
        if rng.random() < 0.25:
            d = int(drivers(1)[0])
            city.driver_payout[d] = pay
            city.rider_alt_device[members[0]] = city.driver_device[d]  # books on the driver's phone
            fam["driver"] = d
            for day in rng.choice(DAYS, int(rng.integers(1, 5)), replace=False):
                family_rides.append((int(day), d, int(rng.choice(members))))
        families.append(fam)
    return _Negatives(
        commuters=commuters,
        work_x=wx,
        work_y=wy,
        regular_driver=regular,
        campuses=campuses,
        airport_drivers=airport_drivers,
        flyers=flyers,
        flyer_driver=flyer_driver,
        flyer_days=flyer_days,
        families=families,
        family_rides=sorted(family_rides),
        busy_drivers=busy,
    )


def _negative_trips(rng: np.random.Generator, city: _City, neg: _Negatives, day: int, trips: _Trips) -> None:
    base = day * DAY
    if weekday(day) < 5:
        active = rng.random(len(neg.commuters)) < 0.88
        c = np.flatnonzero(active)
        r = neg.commuters[c]
        hx, hy = city.rider_x[r], city.rider_y[r]
        wx, wy = neg.work_x[c], neg.work_y[c]
        for leg, (ox, oy, dx, dy, t0, t1) in enumerate(
            ((hx, hy, wx, wy, 7.5 * HOUR, 9 * HOUR), (wx, wy, hx, hy, 17.5 * HOUR, 19.75 * HOUR))
        ):
            keep = rng.random(len(c)) < (1.0 if leg == 0 else 0.9)
            jx, jy = rng.normal(0, 0.08, (2, len(c)))
            start = base + rng.integers(int(t0), int(t1), len(c))
            drv = city.pick_drivers(rng, ox, oy)
            reg = neg.regular_driver[c]
            use_reg = (reg >= 0) & (rng.random(len(c)) < 0.85)
            drv = np.where(use_reg, reg, drv)
            k = keep
            trips.add(rng, city, drv[k], r[k], start[k], (ox + jx)[k], (oy + jy)[k], dx[k], dy[k])
    for camp in neg.campuses:
        st = camp["students"]
        act = st[rng.random(len(st)) < 0.5]
        spots = camp["spots"]
        t = base + rng.integers(8 * HOUR, 12 * HOUR, len(act))
        here = rng.integers(0, len(spots), len(act))
        for _ in range(int(rng.integers(2, 4))):
            go = rng.random(len(act)) < 0.75
            there = (here + rng.integers(1, len(spots), len(act))) % len(spots)
            a, h, th, tt = act[go], here[go], there[go], t[go]
            jit = rng.normal(0, 0.05, (4, len(a)))
            drv = camp["drivers"][rng.integers(0, len(camp["drivers"]), len(a))]
            trips.add(
                rng,
                city,
                drv,
                a,
                tt,
                spots[h, 0] + jit[0],
                spots[h, 1] + jit[1],
                spots[th, 0] + jit[2],
                spots[th, 1] + jit[3],
                slow=True,
            )
            here = np.where(go, there, here)
            t = t + rng.integers(90 * MINUTE, 5 * HOUR, len(act))
    # airport runs: to or from the airport, mostly with airport-queue drivers
    n = int(rng.poisson(100 * len(neg.airport_drivers) / 80))
    r = city.pick_riders(rng, n)
    to_airport = rng.random(n) < 0.5
    ax, ay = AIRPORT[0] + rng.normal(0, 0.1, n), AIRPORT[1] + rng.normal(0, 0.1, n)
    hx, hy = city.rider_x[r], city.rider_y[r]
    drv = np.where(
        rng.random(n) < 0.7,
        neg.airport_drivers[rng.integers(0, len(neg.airport_drivers), n)],
        city.pick_drivers(rng, hx, hy),
    )
    start = base + rng.integers(6 * HOUR, 23 * HOUR, n)
    trips.add(
        rng,
        city,
        drv,
        r,
        start,
        np.where(to_airport, hx, ax),
        np.where(to_airport, hy, ay),
        np.where(to_airport, ax, hx),
        np.where(to_airport, ay, hy),
    )
    for i, f in enumerate(neg.flyers):
        for d_day, to_air in neg.flyer_days[i]:
            if d_day != day:
                continue
            fx, fy = float(city.rider_x[f]), float(city.rider_y[f])
            regular = int(neg.flyer_driver[i])
            flyer_driver = (
                regular
                if regular >= 0 and rng.random() < 0.8
                else int(city.pick_drivers(rng, np.array([fx]), np.array([fy]))[0])
            )
            o, dst = ((fx, fy), AIRPORT) if to_air else (AIRPORT, (fx, fy))
            trips.add(rng, city, flyer_driver, f, [base + int(rng.integers(6 * HOUR, 22 * HOUR))], *o, *dst)
    for d_day, family_driver, rider in neg.family_rides:
        if d_day == day:
            fx, fy = float(city.rider_x[rider]), float(city.rider_y[rider])
            ang = rng.uniform(0, 2 * math.pi)
            dist = rng.uniform(3, 12)
            trips.add(
                rng,
                city,
                family_driver,
                rider,
                [base + int(rng.integers(9 * HOUR, 20 * HOUR))],
                fx,
                fy,
                fx + dist * math.cos(ang),
                fy + dist * math.sin(ang),
            )


# ----------------------------------------------------------------------------------- planted groups


@dataclass
class _Group:
    ring: int
    kind: str
    drivers: np.ndarray
    riders: np.ndarray
    days: np.ndarray
    careful: bool
    anchor: tuple[float, float]
    shared_devices: list[int] = field(default_factory=list)
    shared_payments: list[int] = field(default_factory=list)
    # pair_device: the rider books from the driver's phone; cross: who is whose other account
    person_of: dict[int, int] = field(default_factory=dict)


def _plan_groups(
    rng: np.random.Generator, city: _City, scale: float, taken: np.ndarray, taken_riders: np.ndarray
) -> list[_Group]:
    n_groups = _n(40, scale, 6)
    kinds = [GROUP_KINDS[i % len(GROUP_KINDS)] for i in range(len(GROUP_KINDS))]
    kinds += list(rng.choice(GROUP_KINDS, n_groups - len(kinds), p=_KIND_P))
    free_drivers = rng.permutation(city.n_drivers)
    dpos = 0
    riders = rng.permutation(city.n_riders)
    rpos = 0
    groups = []
    for ring, kind in enumerate(kinds):
        nd, nr = {
            "pair_device": (1, 1),
            "pair_payment": (1, 1),
            "pair_accomplice": (1, int(rng.integers(1, 3))),
            "cross": (2, 2),
            "ring": (int(rng.integers(2, 5)), int(rng.integers(3, 9))),
            "threshold": (1, int(rng.integers(1, 3))),
        }[kind]
        drv = free_drivers[dpos : dpos + nd]
        dpos += nd
        taken[drv] = True
        rid = riders[rpos : rpos + nr]
        rpos += nr
        taken_riders[rid] = True
        city.rider_w[rid] *= 0.3  # a few real trips as cover
        if kind == "threshold":
            city.driver_w[drv] = 0.0  # its real trips are generated with the padding
        n_days = int(rng.integers(18, 27)) if kind == "threshold" else int(rng.integers(8, 21))
        z = int(city.driver_zone[drv[0]])
        cx, cy = zone_centre(z)
        g = _Group(
            ring=ring,
            kind=kind,
            drivers=drv,
            riders=rid,
            days=np.sort(rng.choice(DAYS, n_days, replace=False)),
            careful=kind != "threshold" and rng.random() < 0.3,
            anchor=(cx + rng.uniform(-3, 3), cy + rng.uniform(-3, 3)),
        )
        if kind == "pair_device":
            g.shared_devices.append(int(city.driver_device[drv[0]]))
        elif kind == "pair_payment":
            city.rider_payment[rid[0]] = city.driver_payout[drv[0]]
            g.shared_payments.append(int(city.driver_payout[drv[0]]))
        elif kind == "cross":
            for d, r in zip(drv, rid, strict=True):  # one person: one phone, one wallet
                city.rider_device[r] = city.driver_device[d]
                city.rider_payment[r] = city.driver_payout[d]
                g.shared_devices.append(int(city.driver_device[d]))
                g.shared_payments.append(int(city.driver_payout[d]))
                g.person_of[int(r)] = int(d)
        elif kind == "ring":
            phones = [city.new_device() for _ in range(int(rng.integers(1, 3)))]
            city.rider_device[rid] = np.array(phones)[rng.integers(0, len(phones), nr)]
            g.shared_devices.extend(sorted(set(city.rider_device[rid].tolist())))
        groups.append(g)
    return groups


def _fake_session(
    rng: np.random.Generator,
    city: _City,
    g: _Group,
    trips: _Trips,
    start: int,
    drivers: np.ndarray,
    riders: np.ndarray,
    m: int,
) -> int:
    """m short fake trips from `start`: A→B→A… loops (or short hops when careful); the last end."""
    ax, ay = g.anchor[0] + rng.normal(0, 0.6), g.anchor[1] + rng.normal(0, 0.6)
    ang = rng.uniform(0, 2 * math.pi)
    d = rng.uniform(0.5, 2.0)
    bx, by = ax + d * math.cos(ang), ay + d * math.sin(ang)
    t = start
    x0, y0, x1, y1, ts = [], [], [], [], []
    cur = (ax, ay)
    for k in range(m):
        if g.careful:
            ang = rng.uniform(0, 2 * math.pi)
            d = rng.uniform(0.5, 2.0)
            nxt = (cur[0] + d * math.cos(ang), cur[1] + d * math.sin(ang))
        else:
            nxt = (bx, by) if k % 2 == 0 else (ax, ay)
        j = rng.normal(0, 0.06, 4)
        x0.append(cur[0] + j[0])
        y0.append(cur[1] + j[1])
        x1.append(nxt[0] + j[2])
        y1.append(nxt[1] + j[3])
        ts.append(t)
        t += int(d * 1.2 / rng.uniform(15, 25) * HOUR) + int(rng.integers(60, 600))
        cur = nxt
    drv = drivers[rng.integers(0, len(drivers), m)] if len(drivers) > 1 else np.full(m, drivers[0])
    rid = riders[rng.integers(0, len(riders), m)] if len(riders) > 1 else np.full(m, riders[0])
    dev = city.rider_device[rid].copy()
    if g.kind == "pair_device":
        own = rng.random(m) >= 0.85
        dev = np.where(own, dev, city.driver_device[drv])
    trips.add(rng, city, drv, rid, ts, x0, y0, x1, y1, ring=g.ring, rider_device=dev, slow=True)
    return t


def _group_trips(
    rng: np.random.Generator,
    city: _City,
    g: _Group,
    day: int,
    trips: _Trips,
    windows: list[tuple[str, int, int, float]],
) -> None:
    active = day in g.days
    if g.kind == "threshold":
        d = g.drivers[0]
        k = int(rng.integers(9, 14)) if active else int(rng.integers(5, 13))
        riders = city.pick_riders(rng, k)
        hx, hy = city.rider_x[riders], city.rider_y[riders]
        length = np.clip(rng.lognormal(math.log(4.5), 0.7, k), 0.6, 25)
        ang = rng.uniform(0, 2 * math.pi, k)
        start = day * DAY + np.sort(rng.integers(7 * HOUR, 20 * HOUR, k))
        trips.add(rng, city, d, riders, start, hx, hy, hx + length * np.cos(ang), hy + length * np.sin(ang))
        if active:
            pad = THRESHOLDS[0][0] - k
            t0 = day * DAY + int(rng.integers(20 * HOUR + 30 * MINUTE, 22 * HOUR))
            _fake_session(rng, city, g, trips, t0, g.drivers, g.riders, pad)
        return
    if not active:
        return
    for _ in range(int(rng.integers(1, 3))):
        t0 = _sessions_start(rng, day, windows)
        m = int(rng.integers(2, 7))
        if g.kind == "cross":
            i = int(rng.integers(0, 2))  # X's driver account drives Y's rider account, or the reverse
            _fake_session(rng, city, g, trips, t0, g.drivers[i : i + 1], g.riders[1 - i : 2 - i], m)
        elif g.kind == "ring":
            # every rider account is brushed most days (to use its coupons), each time in one car
            for r in g.riders[rng.random(len(g.riders)) < 0.7]:
                t0 = _sessions_start(rng, day, windows)
                d = g.drivers[int(rng.integers(0, len(g.drivers)))]
                _fake_session(rng, city, g, trips, t0, np.array([d]), np.array([r]), int(rng.integers(2, 7)))
            return
        else:
            _fake_session(rng, city, g, trips, t0, g.drivers, g.riders, m)


# ------------------------------------------------------------------------------------------ money


def _price(rng: np.random.Generator, km: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    fare = BASE_FARE + PER_KM * np.maximum(km - BASE_KM, 0) + PER_MIN * minutes
    return np.round(fare, 1)


def _subsidies(
    start: np.ndarray, driver: np.ndarray, fare: np.ndarray, windows: list[tuple[str, int, int, float]]
) -> np.ndarray:
    coupon = np.where(
        _in_windows(start, windows, "rider_coupon"), np.minimum(COUPON_MAX, fare - COUPON_MIN_PAY), 0.0
    )
    peak = np.where(_in_windows(start, windows, "driver_peak"), PEAK_REWARD, 0.0)
    # the Nth trip of a driver's calendar day earns the bonus (trips of one day are in one chunk)
    order = np.lexsort((start, driver))
    d_sorted = driver[order]
    first = np.r_[True, d_sorted[1:] != d_sorted[:-1]]
    grp_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - grp_start + 1
    bonus = np.zeros(len(start))
    for n, amount in THRESHOLDS:
        bonus[rank == n] += amount
    return np.round(coupon + peak + bonus, 1)


# ------------------------------------------------------------------------------------------ writing


def _write_day(
    w: Any,
    rng: np.random.Generator,
    city: _City,
    cols: dict[str, np.ndarray],
    day: int,
    next_id: int,
    windows: list[tuple[str, int, int, float]],
) -> tuple[int, np.ndarray, np.ndarray]:
    """Write one day's trips in time order; (rows written, trip ids, ring of each row)."""
    keep = cols["start"] < (day + 1) * DAY
    cols = {k: v[keep] for k, v in cols.items()}
    order = np.lexsort((rng.random(len(cols["start"])), cols["start"]))
    c = {k: v[order] for k, v in cols.items()}
    n = len(order)
    straight = np.hypot(c["x1"] - c["x0"], c["y1"] - c["y0"])
    km = np.maximum(np.round(straight * rng.uniform(1.15, 1.4, n), 1), 0.3)
    dur = (km / c["speed"] * HOUR).astype(np.int64) + rng.integers(30, 120, n)
    fare = _price(rng, km, dur / 60)
    subsidy = _subsidies(c["start"], c["driver"], fare, windows)
    ids = np.arange(next_id, next_id + n)
    lat0 = np.round(LAT0 + c["y0"] / KM_LAT, 5)
    lon0 = np.round(LON0 + c["x0"] / KM_LON, 5)
    lat1 = np.round(LAT0 + c["y1"] / KM_LAT, 5)
    lon1 = np.round(LON0 + c["x1"] / KM_LON, 5)
    w.writerows(
        zip(
            ids.tolist(),
            [f"D{v:06d}" for v in c["driver"].tolist()],
            [f"R{v:07d}" for v in c["rider"].tolist()],
            fmt_times(c["start"]),
            fmt_times(c["start"] + dur),
            lat0.tolist(),
            lon0.tolist(),
            lat1.tolist(),
            lon1.tolist(),
            km.tolist(),
            fare.tolist(),
            subsidy.tolist(),
            _token("dv", c["rider_device"]),
            _token("dv", city.driver_device[c["driver"]]),
            _token("pa", city.rider_payment[c["rider"]]),
            _token("pa", city.driver_payout[c["driver"]]),
            strict=True,
        )
    )
    return n, ids, c["ring"]


def driver_id(i: int) -> str:
    return f"D{int(i):06d}"


def rider_id(i: int) -> str:
    return f"R{int(i):07d}"


def generate(
    out_dir: str | Path, *, seed: int = 7, scale: float = 1.0, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Write trips.csv, subsidies.csv and the ground truth to `out_dir`; return the truth dict.

    Every file is written as ``<name>.part`` and renamed when complete.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _name: None)
    ss = np.random.SeedSequence(seed)
    children = [np.random.default_rng(c) for c in ss.spawn(3 + DAYS)]
    r_city, r_neg, r_groups = children[:3]
    day_rngs = children[3:]  # one per day: a day's trips do not depend on how many the others had

    step("city")
    city = _build_city(r_city, scale)
    taken = np.zeros(city.n_drivers, dtype=bool)
    taken_riders = np.zeros(city.n_riders, dtype=bool)
    groups = _plan_groups(r_groups, city, scale, taken, taken_riders)
    neg = _plan_negatives(r_neg, city, scale, taken, taken_riders)
    city.finish()
    windows = campaign_windows()

    parts: list[Path] = []

    def part(name: str) -> Path:
        p = out / f"{name}.part"
        parts.append(p)
        return p

    ring_trips: dict[int, list[int]] = {g.ring: [] for g in groups}
    n_trips = 0
    try:
        with part("trips.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(TRIP_HEADER)
            for day in range(DAYS):
                step(f"day {day + 1}/{DAYS}")
                rng = day_rngs[day]
                trips = _Trips()
                _normal_trips(rng, city, day, trips, scale)
                _negative_trips(rng, city, neg, day, trips)
                for g in groups:
                    _group_trips(rng, city, g, day, trips, windows)
                n, ids, ring = _write_day(w, rng, city, trips.columns(), day, n_trips + 1, windows)
                n_trips += n
                for i in np.flatnonzero(ring >= 0).tolist():
                    ring_trips[int(ring[i])].append(int(ids[i]))
        with part("subsidies.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(SUBSIDY_HEADER)
            for i, (kind, s, e, amount) in enumerate(windows, 1):
                w.writerow([f"C{i:04d}", kind, *fmt_times(np.array([s, e])), amount, ""])
            end = fmt_times(np.array([DAYS * DAY]))[0]
            for j, (n_th, amount) in enumerate(THRESHOLDS, len(windows) + 1):
                w.writerow(
                    [f"C{j:04d}", "driver_daily_threshold", fmt_times(np.array([0]))[0], end, amount, n_th]
                )
        truth_rings: list[dict[str, Any]] = []
        with part("truth_accounts.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["account", "role", "ring", "kind"])
            for g in groups:
                for d in g.drivers.tolist():
                    w.writerow([driver_id(d), "driver", g.ring, g.kind])
                for r in g.riders.tolist():
                    w.writerow([rider_id(r), "rider", g.ring, g.kind])
                truth_rings.append(
                    {
                        "ring": g.ring,
                        "kind": g.kind,
                        "careful": g.careful,
                        "drivers": [driver_id(d) for d in g.drivers.tolist()],
                        "riders": [rider_id(r) for r in g.riders.tolist()],
                        "shared_devices": _token("dv", np.array(g.shared_devices, dtype=np.int64)),
                        "shared_payment_accounts": _token("pa", np.array(g.shared_payments, dtype=np.int64)),
                        "active_days": len(g.days),
                        "fake_trips": len(ring_trips[g.ring]),
                    }
                )
        with part("truth_trips.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["trip_id", "ring"])
            rows = sorted((t, r) for r, ts in ring_trips.items() for t in ts)
            w.writerows(rows)
        step("truth")
        truth: dict[str, Any] = {
            "generator": "fanchaoxin.simulate.rides",
            "version": 1,
            "seed": seed,
            "scale": scale,
            "start": fmt_times(np.array([0]))[0],
            "days": DAYS,
            "files": {"trips.csv": n_trips, "subsidies.csv": len(windows) + len(THRESHOLDS)},
            "rings": truth_rings,
            "fraud_accounts": sum(len(r["drivers"]) + len(r["riders"]) for r in truth_rings),
            "fake_trips": sum(r["fake_trips"] for r in truth_rings),
            "hard_negatives": {
                "commuters": [rider_id(r) for r in neg.commuters.tolist()],
                "regular_driver_commuters": [
                    [driver_id(d), rider_id(r)]
                    for d, r in zip(neg.regular_driver.tolist(), neg.commuters.tolist(), strict=True)
                    if d >= 0
                ],
                "campus": [
                    {
                        "drivers": [driver_id(d) for d in c["drivers"].tolist()],
                        "riders": [rider_id(r) for r in c["students"].tolist()],
                    }
                    for c in neg.campuses
                ],
                "airport_drivers": [driver_id(d) for d in neg.airport_drivers.tolist()],
                "frequent_flyers": [
                    [driver_id(d) if d >= 0 else None, rider_id(r)]
                    for d, r in zip(neg.flyer_driver.tolist(), neg.flyers.tolist(), strict=True)
                ],
                "families": [
                    {
                        "riders": [rider_id(r) for r in f["riders"].tolist()],
                        "driver": driver_id(f["driver"]) if f["driver"] is not None else None,
                        "payment_account": _token("pa", np.array([f["payment"]]))[0],
                    }
                    for f in neg.families
                ],
                "busy_drivers": [driver_id(d) for d in neg.busy_drivers.tolist()],
            },
        }
        part("truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
        for p in parts:
            os.replace(p, p.with_suffix(""))
    except BaseException:
        for p in parts:
            p.unlink(missing_ok=True)
        raise
    return truth
