"""A synthetic marketplace with planted 炒信 and the exact ground truth (``fcx simulate marketplace``).

The generator writes one month of activity of an imaginary e-commerce platform and the logistics
data of its couriers, deterministic for a seed. Normal traffic is heavy-tailed (Zipf shop and item
popularity, log-normal buyer activity, a day/night rhythm) and contains *hard negatives*: things
that look unusual but are legitimate, so that a detector which fires on "busy" instead of
"fabricated" is caught out. Into it the generator plants the behaviours of DESIGN.md §1 and records
exactly what it planted in ``truth.json`` and one ``truth_<kind>.csv`` per file.

Files (all UTF-8 CSV with a header; times are local ``YYYY-MM-DD HH:MM:SS``):

``orders.csv`` — ``orderid, shopid, userid, event_time, amount, itemid``
    Normal orders plus **刷单 order brushing**: in a small shop, 1–3 buyers place 3–7 orders each
    within one hour (concentration = orders / distinct buyers ≥ 3, the Shopee rule). The burst is put
    in an hour where the shop has no other orders, so the planted concentration is exact.
    Hard negatives: flash sales in popular shops (a hundred orders in an hour, but from a hundred
    buyers) and split carts (one buyer, two orders a few minutes apart).
``reviews.csv`` — ``review_id, author, product, text, rating, review_time``
    Chinese and English reviews composed from phrase pools. **虚假评价**: templated 5-star reviews
    written by the dense block below and by a sparse "水军" campaign (one review per hired author).
``edges.csv`` — ``userid, productid, event_time, rating``
    The reviewer × product graph of ``reviews.csv`` (one edge per review). Planted **dense block**:
    a group of accounts reviews a set of tail products with density ≈ 0.6, and camouflages itself
    with about as many reviews of other (partly popular) products.
``actions.csv`` — ``userid, itemid, event_time, action``
    Likes / favourites / add-to-cart. Planted **lockstep groups** (CopyCatch): 8–40 accounts act on
    the same 5–15 items, each within ±25 minutes of a per-item centre time; each member takes part in
    each item with probability 0.75–0.95 (per group).
    Hard negative: live-stream sessions where hundreds of viewers act on a few promoted items in
    minutes (synchronised, but each viewer only on one or two of them).
``registrations.csv`` — ``account, registered_at, device_id, ip, phone, nickname``
    One row per account in the other files. **恶意注册** clusters of 8–60 accounts registered in a burst (or
    slowly over a day) sharing two to four of: an emulator device pool, a proxy IP pool, a sequential
    run of phone numbers (卡商 SIM batches), a nickname pattern (shop8801, shop8802, …); 15 % are careful
    farms sharing only a device pool or only a proxy IP pool (the latter look like a campus event). Hard
    negatives: family devices (2–3 accounts), carrier-grade NAT IPs shared by many accounts at unrelated
    times, birth-year nicknames (lihua1990, lihua1991), platform default nicknames (用户 + random digits),
    campus sign-up events (15–25 accounts on one IP in two hours with distinct devices, phones and
    names), phones written in several formats.
``waybills.csv`` — ``waybill, courier, sender, weight_kg, pickup_time, sign_time, origin_city,
dest_city, distance_km, transit_scans``
    One waybill per order (the courier's view of the marketplace) plus waybills of "空包网" customers.
    **合谋寄递空包裹**: every brushing order ships an empty parcel (≤ 0.05 kg, or a 0.1–0.3 kg
    "礼品单" gift), mostly without transit scans and often signed a few hours after pick-up whatever the
    distance, handled 80 % of the time by a few colluding courier staff. Hard negatives: documents
    (0.06–0.2 kg), scanner outages (0 scans on a normal parcel), same-city parcels delivered in hours,
    air express over 1,000 km in a day.

Scale 1 is about 40,000 normal orders, 20,000 accounts, 25,000 reviews, 60,000 actions; ``scale``
multiplies volumes and the number of planted groups (at least two of each are always planted, so
tiny scales still have something to find); group sizes do not scale. Each sub-generator draws from
its own child of ``numpy.random.SeedSequence(seed)``, so the output is byte-identical for a seed.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

START = np.datetime64("2024-03-01T00:00:00", "s")
DAYS = 30
DAY = 86_400
HOUR = 3_600

# Share of activity per hour of day (Asia/Shanghai): quiet nights, a late-morning and a strong
# evening peak, as in public e-commerce traffic curves.
_DIURNAL = np.array(
    [
        2.0,
        1.2,
        0.7,
        0.4,
        0.3,
        0.3,
        0.5,
        1.2,
        2.5,
        3.5,
        4.5,
        4.8,
        4.6,
        4.2,
        4.2,
        4.3,
        4.2,
        4.0,
        4.2,
        5.0,
        6.0,
        6.6,
        6.2,
        4.0,
    ]
)
_DIURNAL = _DIURNAL / _DIURNAL.sum()

# name, code, latitude, longitude, weight as a buyer city, weight as a seller city
_CITIES = [
    ("上海", "SH", 31.23, 121.47, 8, 8),
    ("北京", "BJ", 39.90, 116.40, 8, 3),
    ("广州", "GZ", 23.13, 113.26, 6, 9),
    ("深圳", "SZ", 22.54, 114.06, 6, 8),
    ("杭州", "HZ", 30.27, 120.15, 5, 10),
    ("义乌", "YW", 29.31, 120.08, 1, 9),
    ("成都", "CD", 30.57, 104.07, 5, 2),
    ("重庆", "CQ", 29.56, 106.55, 5, 1),
    ("武汉", "WH", 30.59, 114.31, 4, 2),
    ("西安", "XA", 34.34, 108.94, 4, 1),
    ("南京", "NJ", 32.06, 118.80, 4, 2),
    ("苏州", "SU", 31.30, 120.58, 4, 4),
    ("天津", "TJ", 39.34, 117.36, 3, 1),
    ("长沙", "CS", 28.23, 112.94, 3, 1),
    ("郑州", "ZZ", 34.75, 113.63, 3, 1),
    ("沈阳", "SY", 41.81, 123.43, 3, 1),
    ("哈尔滨", "HB", 45.80, 126.53, 2, 0.5),
    ("昆明", "KM", 25.04, 102.71, 2, 0.5),
    ("乌鲁木齐", "UR", 43.83, 87.62, 1, 0.2),
    ("福州", "FZ", 26.07, 119.30, 2, 2),
    ("泉州", "QZ", 24.87, 118.68, 1, 4),
    ("青岛", "QD", 36.07, 120.38, 2, 1),
    ("厦门", "XM", 24.48, 118.09, 2, 1),
    ("合肥", "HF", 31.82, 117.23, 2, 1),
    ("南宁", "NN", 22.82, 108.32, 2, 0.5),
    ("兰州", "LZ", 36.06, 103.83, 1, 0.2),
    ("拉萨", "LS", 29.65, 91.14, 0.3, 0.1),
    ("海口", "HK", 20.04, 110.20, 1, 0.2),
    ("石家庄", "SJ", 38.04, 114.51, 2, 0.5),
    ("温州", "WZ", 28.00, 120.67, 1, 3),
]
_COURIERS = ["ZTO", "YTO", "STO", "YUNDA", "SF", "JD", "EMS", "JTEX"]
_COURIER_P = np.array([20, 17, 13, 14, 10, 6, 5, 15], dtype=float)
_COURIER_P /= _COURIER_P.sum()

ProgressFn = Callable[[str], None]


# --------------------------------------------------------------------------------------------- helpers


def fmt_times(seconds: np.ndarray | Sequence[int]) -> np.ndarray:
    """Seconds after START → ``YYYY-MM-DD HH:MM:SS`` strings (vectorised)."""
    ts = START + np.asarray(seconds, dtype=np.int64).astype("timedelta64[s]")
    return np.char.replace(np.datetime_as_string(ts, unit="s"), "T", " ")


def fmt_time(second: int) -> str:
    return str(fmt_times([int(second)])[0])


def _diurnal_times(rng: np.random.Generator, n: int, days: int = DAYS, first_day: int = 0) -> np.ndarray:
    day = rng.integers(first_day, first_day + days, n)
    hour = rng.choice(24, n, p=_DIURNAL)
    return day * DAY + hour * HOUR + rng.integers(0, HOUR, n)


def _zipf_weights(n: int, a: float, rng: np.random.Generator) -> np.ndarray:
    # Popularity rank is shuffled so that id order says nothing about popularity.
    w = 1.0 / np.arange(1, n + 1) ** a
    rng.shuffle(w)
    return w / w.sum()


def _n(base: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def _write_csv(path: Path, header: Sequence[str], columns: Sequence[Iterable[Any]]) -> int:
    cols = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
    rows = list(zip(*cols, strict=True))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return len(rows)


def _haversine(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 6371.0 * 2 * np.arcsin(np.sqrt(a))


@dataclass
class _World:
    """Shared catalogue and id spaces so that the files describe one marketplace."""

    scale: float
    n_normal_users: int
    shop_ids: np.ndarray
    shop_pop: np.ndarray
    shop_city: np.ndarray
    item_ids: np.ndarray
    item_shop: np.ndarray  # index into shop_ids
    item_price: np.ndarray
    item_pop: np.ndarray  # global popularity, sums to 1
    user_city: dict[int, int] = field(default_factory=dict)
    bulk_accounts: list[int] = field(default_factory=list)
    hired_accounts: list[int] = field(default_factory=list)
    next_user: int = 0
    _fraud_cursor: int = 0

    def fraud_accounts(self, n: int) -> list[int]:
        """Hand out accounts for a fraud role: bulk-registered ones first, then hired "刷手" accounts.

        Roles get disjoint accounts so each truth file is unambiguous; hired accounts are ordinary
        registrations, which is what makes them hard to link to the bulk clusters.
        """
        pool = self.bulk_accounts
        out: list[int] = []
        while len(out) < n and self._fraud_cursor < len(pool):
            out.append(pool[self._fraud_cursor])
            self._fraud_cursor += 1
        while len(out) < n:
            uid = self.next_user
            self.next_user += 1
            self.hired_accounts.append(uid)
            out.append(uid)
        return out


def _build_world(rng: np.random.Generator, scale: float) -> _World:
    n_shops = _n(1500, scale, 40)
    shop_ids = np.arange(10_001, 10_001 + n_shops)
    shop_pop = _zipf_weights(n_shops, 1.1, rng)
    seller_w = np.array([c[5] for c in _CITIES], dtype=float)
    shop_city = rng.choice(len(_CITIES), n_shops, p=seller_w / seller_w.sum())
    items_per_shop = 1 + rng.geometric(0.3, n_shops)
    item_shop = np.repeat(np.arange(n_shops), items_per_shop)
    n_items = len(item_shop)
    item_ids = np.arange(500_001, 500_001 + n_items)
    within = rng.pareto(1.5, n_items) + 1.0
    item_pop = shop_pop[item_shop] * within / np.bincount(item_shop, weights=within)[item_shop]
    item_pop /= item_pop.sum()
    item_price = np.round(np.exp(rng.normal(np.log(60), 0.9, n_items)), 1) + 0.9
    n_users = _n(20_000, scale, 300)
    return _World(
        scale=scale,
        n_normal_users=n_users,
        shop_ids=shop_ids,
        shop_pop=shop_pop,
        shop_city=shop_city,
        item_ids=item_ids,
        item_shop=item_shop,
        item_price=item_price,
        item_pop=item_pop,
        next_user=n_users + 1,
    )


# ----------------------------------------------------------------------------------- registrations


_PINYIN = [
    "lihua",
    "wangfang",
    "zhangwei",
    "liuyang",
    "chenjie",
    "yangli",
    "huangmin",
    "zhaolei",
    "wujing",
    "zhoutao",
    "xuming",
    "sunli",
    "maqiang",
    "zhulin",
    "huyan",
    "guojun",
    "heping",
    "gaofeng",
    "linna",
    "luoyi",
    "xiaoming",
    "xiaohong",
    "dandan",
    "tiantian",
    "lele",
    "beibei",
    "yuyu",
    "nannan",
]
_CN_NICK_A = [
    "快乐的",
    "爱吃鱼的",
    "不会飞的",
    "安静的",
    "努力的",
    "迷路的",
    "会唱歌的",
    "晒太阳的",
    "熬夜的",
    "佛系的",
]
_CN_NICK_B = ["小猪", "猫", "兔子", "大叔", "少女", "小熊", "咸鱼", "柠檬", "程序员", "宝妈", "吃货"]
_EN_NICK = ["sunny", "coolcat", "bluesky", "happyday", "tiger", "lucky", "moon", "candy", "panda", "river"]
_BULK_PREFIX = ["shop", "hao", "vip", "mm", "店铺", "小店", "好物", "buy", "tbxq", "qq"]
_PHONE_PREFIX = [
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "157",
    "158",
    "159",
    "166",
    "170",
    "176",
    "177",
    "178",
    "180",
    "181",
    "182",
    "183",
    "185",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]


def _normal_nickname(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.2:  # platform default nickname: 用户 + random digits
        return f"用户{rng.integers(10_000_000, 99_999_999)}"
    if r < 0.35:
        return f"tb{rng.integers(100_000_000, 999_999_999)}"
    if r < 0.55:  # pinyin + birth year: many lihua1990, lihua1991… legitimately
        return f"{_PINYIN[rng.integers(len(_PINYIN))]}{rng.integers(1970, 2006)}"
    if r < 0.65:
        return f"{_PINYIN[rng.integers(len(_PINYIN))]}{rng.integers(1, 1000)}"
    if r < 0.85:
        return f"{_CN_NICK_A[rng.integers(len(_CN_NICK_A))]}{_CN_NICK_B[rng.integers(len(_CN_NICK_B))]}"
    return f"{_EN_NICK[rng.integers(len(_EN_NICK))]}_{rng.integers(10, 100)}"


def _random_phone(rng: np.random.Generator) -> int:
    return int(_PHONE_PREFIX[rng.integers(len(_PHONE_PREFIX))]) * 100_000_000 + int(
        rng.integers(0, 100_000_000)
    )


def _fmt_phone(rng: np.random.Generator, p: int) -> str:
    # Several spellings of the same kind of number, as exported by different systems.
    s = f"{p:011d}"
    r = rng.random()
    if r < 0.7:
        return s
    if r < 0.8:
        return f"+86{s}"
    if r < 0.9:
        return f"+86 {s[:3]} {s[3:7]} {s[7:]}"
    return f"{s[:3]}-{s[3:7]}-{s[7:]}"


def _device(rng: np.random.Generator) -> str:
    return f"{rng.integers(0, 2**63):016x}"


def _residential_ip(rng: np.random.Generator) -> str:
    a = [
        36,
        39,
        58,
        59,
        60,
        61,
        101,
        106,
        111,
        112,
        113,
        114,
        115,
        116,
        117,
        118,
        119,
        120,
        121,
        122,
        123,
        124,
        125,
        180,
        182,
        183,
        202,
        210,
        211,
        218,
        219,
        220,
        221,
        222,
        223,
    ][rng.integers(0, 35)]
    return f"{a}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"


@dataclass
class _RegPlan:
    clusters: list[dict[str, Any]]


def _plan_bulk_clusters(rng: np.random.Generator, world: _World) -> _RegPlan:
    """Decide bulk-registration clusters first: their accounts are the fraud pool of the other files."""
    n_clusters = _n(25, world.scale, 2)
    clusters = []
    for c in range(n_clusters):
        size = int(np.clip(np.round(np.exp(rng.normal(np.log(22), 0.5))), 8, 60))
        accounts = list(range(world.next_user, world.next_user + size))
        world.next_user += size
        slow = rng.random() < 0.2
        # 15 % are careful farms leaving a single kind of link: an emulator pool, or a proxy pool
        # only (the latter looks like a campus event and is expected to be missed)
        k = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15]))
        kinds = ["device", "ip", "phone", "nickname"]
        if k == 1:
            slow = False
            chosen = [["device", "ip"][rng.integers(2)]]
        elif slow:  # a slow farm keeps at least one link that does not depend on time
            first = ["device", "phone", "nickname"][rng.integers(3)]
            rest = [x for x in kinds if x != first]
            chosen = [first, *list(rng.choice(rest, k - 1, replace=False))]
        else:
            chosen = list(rng.choice(kinds, k, replace=False))
        clusters.append(
            {
                "cluster": c,
                "accounts": accounts,
                "link_types": sorted(chosen),
                "speed": "slow" if slow else "fast",
            }
        )
        world.bulk_accounts.extend(accounts)
    # Fraud roles draw from a shuffled pool so that one role does not get whole clusters only.
    order = rng.permutation(len(world.bulk_accounts))
    world.bulk_accounts = [world.bulk_accounts[i] for i in order]
    return _RegPlan(clusters=clusters)


def _gen_registrations(rng: np.random.Generator, world: _World, plan: _RegPlan) -> tuple[dict, dict]:
    rows: dict[str, list] = {k: [] for k in ("account", "t", "device_id", "ip", "phone", "nickname")}

    def add(acct: int, t: int, dev: str, ip: str, phone: str, nick: str) -> None:
        rows["account"].append(acct)
        rows["t"].append(int(t))
        rows["device_id"].append(dev)
        rows["ip"].append(ip)
        rows["phone"].append(phone)
        rows["nickname"].append(nick)

    # Normal accounts register over the 180 days before the month, more on promotion days.
    normal = list(range(1, world.n_normal_users + 1)) + list(world.hired_accounts)
    n = len(normal)
    day_w = np.ones(180)
    day_w[rng.choice(180, 6, replace=False)] = 5.0
    day = rng.choice(180, n, p=day_w / day_w.sum()) - 180
    t = day * DAY + rng.choice(24, n, p=_DIURNAL) * HOUR + rng.integers(0, HOUR, n)
    cgnat = [f"117.136.{rng.integers(0, 256)}.{rng.integers(1, 255)}" for _ in range(_n(20, world.scale, 3))]
    family_device: str | None = None
    family_left = 0
    for i, acct in enumerate(normal):
        if family_left > 0:  # family members share the phone they registered on
            dev, family_left = family_device or _device(rng), family_left - 1
        else:
            dev = _device(rng)
            if rng.random() < 0.04:
                family_device, family_left = dev, int(rng.integers(1, 3))
        ip = cgnat[rng.integers(len(cgnat))] if rng.random() < 0.3 else _residential_ip(rng)
        add(acct, t[i], dev, ip, _fmt_phone(rng, _random_phone(rng)), _normal_nickname(rng))

    # Hard negative: campus sign-up events, many distinct people behind one IP in two hours.
    campus = []
    for _ in range(_n(3, world.scale, 1)):
        size = int(rng.integers(15, 26))
        ip = f"202.120.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
        t0 = int(rng.integers(-170, -1)) * DAY + 14 * HOUR
        accts = list(range(world.next_user, world.next_user + size))
        world.next_user += size
        for a in accts:
            add(
                a,
                t0 + int(rng.integers(0, 2 * HOUR)),
                _device(rng),
                ip,
                _fmt_phone(rng, _random_phone(rng)),
                _normal_nickname(rng),
            )
        campus.append({"ip": ip, "accounts": accts})

    for cl in plan.clusters:
        accts = cl["accounts"]
        size = len(accts)
        t0 = int(rng.integers(-90 * DAY, -DAY))
        gap_mean = rng.uniform(3600, 3 * 3600) if cl["speed"] == "slow" else rng.uniform(30, 120)
        times = t0 + np.cumsum(rng.exponential(gap_mean, size)).astype(np.int64)
        kinds = set(cl["link_types"])
        devs = [_device(rng) for _ in range(int(rng.integers(1, 5)))]
        ips = [
            f"{rng.integers(40, 220)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
            for _ in range(int(rng.integers(1, 4)))
        ]
        phone = _random_phone(rng)
        prefix = _BULK_PREFIX[rng.integers(len(_BULK_PREFIX))]
        num = int(rng.integers(1000, 9000))
        shared: dict[str, list[str]] = {}
        for j, a in enumerate(accts):
            dev = devs[j % len(devs)] if "device" in kinds else _device(rng)
            ip = ips[j % len(ips)] if "ip" in kinds else _residential_ip(rng)
            if "phone" in kinds:
                phone += 1 + (int(rng.integers(1, 3)) if rng.random() < 0.15 else 0)
                ph = f"{phone:011d}"
            else:
                ph = _fmt_phone(rng, _random_phone(rng))
            if "nickname" in kinds:
                num += 1 + (1 if rng.random() < 0.1 else 0)
                nick = f"{prefix}{num}"
            else:
                nick = _normal_nickname(rng)
            add(a, times[j], dev, ip, ph, nick)
        if "device" in kinds:
            shared["devices"] = devs
        if "ip" in kinds:
            shared["ips"] = ips
        if "nickname" in kinds:
            shared["nickname_prefix"] = [prefix]
        cl["shared"] = shared
        cl["first_registered"] = fmt_time(int(times.min()))
        cl["last_registered"] = fmt_time(int(times.max()))

    # File order by registration time, as an export would be.
    order = np.argsort(np.asarray(rows["t"]), kind="stable")
    out = {k: [v[i] for i in order] for k, v in rows.items()}
    out["registered_at"] = fmt_times(np.asarray(out.pop("t")))
    truth = {"clusters": plan.clusters, "hard_negatives": {"campus_events": campus}}
    return out, truth


# ------------------------------------------------------------------------------------------- orders


def _gen_orders(rng: np.random.Generator, world: _World) -> tuple[dict, dict]:
    s = world.scale
    n = _n(40_000, s, 500)
    users = np.arange(1, world.n_normal_users + 1)
    user_w = np.exp(rng.normal(0, 1.1, len(users)))
    user_w /= user_w.sum()
    item_idx = rng.choice(len(world.item_ids), n, p=world.item_pop)
    user = rng.choice(users, n, p=user_w)
    t = _diurnal_times(rng, n)
    parts_item, parts_user, parts_t = [item_idx], [user], [t]

    # Split carts: the same buyer, another item of the same shop, minutes later (concentration 2).
    k = int(0.04 * n)
    src = rng.choice(n, k, replace=False)
    shop_items = [np.flatnonzero(world.item_shop == sh) for sh in range(len(world.shop_ids))]
    parts_item.append(np.array([rng.choice(shop_items[world.item_shop[item_idx[i]]]) for i in src]))
    parts_user.append(user[src])
    parts_t.append(t[src] + rng.integers(60, 600, k))

    # Flash sales in popular shops: a hundred orders in an hour from a hundred distinct buyers.
    top_shops = np.argsort(-world.shop_pop)[:10]
    flash = []
    for _ in range(_n(5, s, 1)):
        sh = int(rng.choice(top_shops))
        m = int(rng.integers(60, 200))
        m = min(m, len(users))
        t0 = int(rng.integers(0, DAYS)) * DAY + 20 * HOUR
        parts_item.append(rng.choice(shop_items[sh], m))
        parts_user.append(rng.choice(users, m, replace=False))
        parts_t.append(t0 + rng.integers(0, HOUR, m))
        flash.append({"shopid": int(world.shop_ids[sh]), "orders": m, "start": fmt_time(t0)})

    item_idx = np.concatenate(parts_item)
    user = np.concatenate(parts_user)
    t = np.concatenate(parts_t)
    shop_of = world.item_shop[item_idx]

    # Brushing in mid/tail shops, at an hour where the shop has no other orders within ±1 h.
    n_brush = _n(20, s, 2)
    by_pop = np.argsort(-world.shop_pop)
    candidates = by_pop[int(0.3 * len(by_pop)) :]
    brush_shops = rng.choice(candidates, min(n_brush, len(candidates)), replace=False)
    brusher_pool = world.fraud_accounts(max(6, 2 * n_brush))
    events = []
    b_item, b_user, b_t, b_event = [], [], [], []
    for sh in brush_shops:
        shop_times = np.sort(t[shop_of == sh])
        for _ in range(1 if rng.random() < 0.75 else 2):
            for _try in range(50):
                t0 = int(rng.integers(0, DAYS * DAY - 2 * HOUR))
                lo, hi = np.searchsorted(shop_times, [t0 - HOUR, t0 + 2 * HOUR])
                taken = any(abs(e["_t0"] - t0) < 3 * HOUR for e in events if e["_shop"] == sh)
                if hi == lo and not taken:
                    break
            else:
                continue
            kbuy = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
            buyers = list(rng.choice(brusher_pool, kbuy, replace=False))
            item = int(rng.choice(shop_items[sh]))
            span = int(rng.integers(10 * 60, 50 * 60))
            ev = len(events)
            count = 0
            for b in buyers:
                r = int(rng.integers(3, 8))
                b_item.extend([item] * r)
                b_user.extend([int(b)] * r)
                b_t.extend((t0 + rng.integers(0, span, r)).tolist())
                b_event.extend([ev] * r)
                count += r
            events.append(
                {
                    "_shop": sh,
                    "_t0": t0,
                    "shopid": int(world.shop_ids[sh]),
                    "userids": sorted(int(b) for b in buyers),
                    "orders": count,
                    "concentration": round(count / kbuy, 3),
                }
            )

    n_norm = len(item_idx)
    item_idx = np.concatenate([item_idx, np.asarray(b_item, dtype=np.int64)])
    user = np.concatenate([user, np.asarray(b_user, dtype=np.int64)])
    t = np.concatenate([t, np.asarray(b_t, dtype=np.int64)])
    event = np.concatenate([np.full(n_norm, -1), np.asarray(b_event, dtype=np.int64)])
    qty = np.where(rng.random(len(t)) < 0.9, 1, rng.integers(2, 4, len(t)))
    qty[event >= 0] = 1
    amount = world.item_price[item_idx] * qty

    order = np.lexsort((user, t))
    item_idx, user, t, event, amount = item_idx[order], user[order], t[order], event[order], amount[order]
    orderid = 2_100_000_000 + np.arange(len(t)) * 3 + rng.integers(0, 3, len(t))
    shopid = world.shop_ids[world.item_shop[item_idx]]
    for ev, e in enumerate(events):
        sel = np.flatnonzero(event == ev)
        e["orderids"] = [int(x) for x in orderid[sel]]
        e["window_start"] = fmt_time(int(t[sel].min()))
        e["window_end"] = fmt_time(int(t[sel].max()))
        del e["_shop"], e["_t0"]
    cols = {
        "orderid": orderid,
        "shopid": shopid,
        "userid": user,
        "event_time": fmt_times(t),
        "amount": np.char.mod("%.2f", amount),
        "itemid": world.item_ids[item_idx],
        # kept for the waybill generator (not written to orders.csv)
        "_t": t,
        "_event": event,
        "_item_idx": item_idx,
    }
    # The Shopee rule names, per shop, the buyer(s) with the most orders in the union of its brushing
    # windows; the planted bursts sit in hours with no other orders, so that union is exactly the
    # planted orders and the answer can be stated here.
    per_shop: dict[int, dict[int, int]] = {}
    for ev, e in enumerate(events):
        sel = event == ev
        for u_, c_ in zip(*np.unique(user[sel], return_counts=True), strict=True):
            d = per_shop.setdefault(e["shopid"], {})
            d[int(u_)] = d.get(int(u_), 0) + int(c_)
    answer = {
        str(sh): sorted(u_ for u_, c_ in d.items() if c_ == max(d.values()))
        for sh, d in sorted(per_shop.items())
    }
    truth = {
        "shops": sorted({e["shopid"] for e in events}),
        "shopee_answer": answer,
        "events": events,
        "hard_negatives": {"flash_sales": flash, "split_carts": k},
    }
    return cols, truth


# ----------------------------------------------------------------------------------------- waybills


def _gen_waybills(rng: np.random.Generator, world: _World, orders: dict) -> tuple[dict, dict]:
    s = world.scale
    n_cities = len(_CITIES)
    lat = np.array([c[2] for c in _CITIES])
    lon = np.array([c[3] for c in _CITIES])
    buyer_w = np.array([c[4] for c in _CITIES], dtype=float)
    buyer_w /= buyer_w.sum()
    shop_courier = rng.choice(len(_COURIERS), len(world.shop_ids), p=_COURIER_P)
    # Courier staff per (company, city): ids like ZTO-HZ-0231.
    staff_count = max(2, round(6 * math.sqrt(s)))

    def staff_of(company: np.ndarray, city: np.ndarray) -> np.ndarray:
        num = rng.integers(1, staff_count + 1, len(company))
        return np.array(
            [f"{_COURIERS[c]}-{_CITIES[ci][1]}-{k:04d}" for c, ci, k in zip(company, city, num, strict=True)]
        )

    t_order = orders["_t"]
    event = orders["_event"]
    shop_idx = world.item_shop[orders["_item_idx"]]
    senders = world.shop_ids[shop_idx]
    n = len(t_order)
    origin = world.shop_city[shop_idx]
    uniq_users = np.unique(orders["userid"])
    ucity = dict(
        zip(uniq_users.tolist(), rng.choice(n_cities, len(uniq_users), p=buyer_w).tolist(), strict=True)
    )
    dest = np.array([ucity[u] for u in orders["userid"].tolist()])
    company = shop_courier[shop_idx].copy()
    empty = event >= 0

    # 空包网 customers: senders who only buy waybills, no orders in this marketplace's file.
    others = np.setdiff1d(np.arange(len(world.shop_ids)), np.unique(shop_idx[empty]))
    extra_senders = rng.choice(others, min(_n(5, s, 1), len(others)), replace=False)
    x_shop = np.concatenate([np.full(int(rng.integers(15, 61)), sh) for sh in extra_senders])
    m = len(x_shop)
    t_order = np.concatenate([t_order, rng.integers(0, DAYS * DAY, m)])
    senders = np.concatenate([senders, world.shop_ids[x_shop]])
    origin = np.concatenate([origin, world.shop_city[x_shop]])
    dest = np.concatenate([dest, rng.choice(n_cities, m, p=buyer_w)])
    company = np.concatenate([company, shop_courier[x_shop]])
    empty = np.concatenate([empty, np.ones(m, dtype=bool)])
    n = len(t_order)

    courier = staff_of(company, origin)
    colluders = [
        f"{_COURIERS[c]}-{_CITIES[ci][1]}-{9000 + i:04d}"
        for i, (c, ci) in enumerate(
            zip(
                rng.choice(len(_COURIERS), _n(3, s, 2), p=_COURIER_P),
                rng.choice(n_cities, _n(3, s, 2)),
                strict=True,
            )
        )
    ]
    ne = int(empty.sum())
    use_colluder = rng.random(ne) < 0.8
    courier[np.flatnonzero(empty)[use_colluder]] = rng.choice(colluders, int(use_colluder.sum()))

    same_city = origin == dest
    dist = _haversine(lat[origin], lon[origin], lat[dest], lon[dest]) * 1.25
    dist = np.where(same_city, rng.uniform(3, 45, n), dist)
    dist = np.round(dist, 1)

    # Normal parcels.
    weight = np.clip(np.exp(rng.normal(np.log(0.8), 0.9, n)), 0.1, 30.0)
    docs = rng.random(n) < 0.05
    weight[docs] = rng.uniform(0.06, 0.2, int(docs.sum()))
    pickup = t_order + rng.integers(2 * HOUR, 48 * HOUR, n)
    air = (
        (dist > 800)
        & np.isin(company, [_COURIERS.index("SF"), _COURIERS.index("JD")])
        & (rng.random(n) < 0.6)
    )
    speed = np.where(air, rng.uniform(70, 110, n), rng.uniform(35, 65, n))
    handling = np.where(same_city, rng.uniform(1.5, 6, n), rng.uniform(4, 16, n))
    hours = handling + dist / speed + rng.exponential(np.where(same_city, 4, 6), n)
    scans = np.where(same_city, 1 + rng.poisson(1.0, n), 2 + np.round(dist / 500) + rng.poisson(1.5, n))
    outage = rng.random(n) < 0.02
    scans[outage] = 0

    # Empty parcels.
    ei = np.flatnonzero(empty)
    gift = rng.random(ne) < 0.15
    weight[ei] = np.where(gift, rng.uniform(0.1, 0.3, ne), np.round(rng.uniform(0.0, 0.05, ne), 2))
    scans[ei] = rng.choice([0, 1, 2], ne, p=[0.7, 0.2, 0.1])
    fake_sign = rng.random(ne) < 0.65
    hours[ei] = np.where(fake_sign, rng.uniform(0.5, 8, ne), hours[ei])
    pickup[ei] = t_order[ei] + rng.integers(HOUR, 12 * HOUR, ne)
    sign = pickup + (hours * HOUR).astype(np.int64)

    order = np.argsort(pickup, kind="stable")
    pre = np.array(
        [{"SF": "SF", "JD": "JDV", "EMS": "EMS"}.get(_COURIERS[c], _COURIERS[c][:2]) for c in company]
    )
    # unique by construction (index-spaced), random-looking in the low digits
    nums = 731_000_000_000 + rng.permutation(n).astype(np.int64) * 97 + rng.integers(0, 97, n)
    waybill = np.char.add(pre, np.char.zfill(nums.astype(str), 12))
    cols = {
        "waybill": waybill[order],
        "courier": courier[order],
        "sender": senders[order],
        "weight_kg": np.char.mod("%.2f", np.round(weight[order], 2)),
        "pickup_time": fmt_times(pickup[order]),
        "sign_time": fmt_times(sign[order]),
        "origin_city": np.array([_CITIES[i][0] for i in origin[order]]),
        "dest_city": np.array([_CITIES[i][0] for i in dest[order]]),
        "distance_km": np.char.mod("%.1f", dist[order]),
        "transit_scans": scans[order].astype(np.int64),
    }
    emp = empty[order]
    truth = {
        "waybills": sorted(cols["waybill"][emp].tolist()),
        "senders": sorted({int(x) for x in cols["sender"][emp]}),
        "couriers": sorted(colluders),
        "extra_senders_without_orders": sorted(int(world.shop_ids[x]) for x in extra_senders),
        "hard_negatives": {
            "documents": int(docs[~empty].sum()),
            "scanner_outages": int(outage[~empty].sum()),
        },
        "_rows": [
            (str(w), int(sn), str(c))
            for w, sn, c in zip(cols["waybill"][emp], cols["sender"][emp], cols["courier"][emp], strict=True)
        ],
    }
    return cols, truth


# ------------------------------------------------------------------------------------------ reviews

_ZH_OPEN = [
    "收到了",
    "已经收到",
    "第二次回购了",
    "帮朋友买的",
    "给家里人买的",
    "囤货",
    "等了几天终于到了",
    "刚拆开",
    "",
]
_ZH_POS = [
    "质量不错",
    "做工挺细致的",
    "和图片一样",
    "颜色很正",
    "尺码合适",
    "味道很好",
    "性价比高",
    "包装完好",
    "物流挺快的",
    "客服态度好",
    "用了几天感觉还行",
    "孩子很喜欢",
    "比超市便宜",
    "材质摸起来挺舒服",
    "安装也简单",
    "电池挺耐用",
]
_ZH_NEG = [
    "有点色差",
    "尺码偏小",
    "物流太慢了",
    "包装破损",
    "和描述不太一样",
    "味道一般",
    "用了两天就坏了",
    "客服不理人",
    "有股味道",
    "线头很多",
]
_ZH_CLOSE = ["会回购的", "推荐", "总体满意", "还可以吧", "一般般", "下次还来", "先用用看", "", ""]
_EN_OPEN = ["Arrived today.", "Bought this for my mom.", "Second purchase.", "Got it yesterday.", ""]
_EN_POS = [
    "good quality",
    "looks exactly like the photos",
    "fits well",
    "great value for money",
    "fast delivery",
    "well packaged",
    "works as described",
    "the colour is nice",
    "battery lasts long",
]
_EN_NEG = [
    "a bit smaller than expected",
    "shipping took forever",
    "box was damaged",
    "colour is off",
    "stopped working after a week",
    "smells weird",
]
_EN_CLOSE = ["Would buy again.", "Recommended.", "OK overall.", "Not bad.", "", "Thanks seller."]

# Templated fake reviews: {a|b|c} alternatives picked at random, the skeleton stays the same.
_FAKE_TEMPLATES = [
    "宝贝收到了，质量{很好|非常好|超级好}，{物流超快|物流很快|发货速度快}，{客服态度很好|卖家服务好}，"
    "五星好评！{推荐购买|值得购买|强烈推荐}！",
    "{非常|十分}满意的一次购物，{质量|做工}{很好|不错}，{包装精美|包装很严实}，{会|还会}再来的，好评！",
    "东西{很好|超好}，{和描述一致|与描述相符}，{性价比超高|物超所值}，{强烈推荐|推荐给大家}！！！",
    "Great product! {Fast shipping|Super fast delivery}, {excellent quality|amazing quality}, "
    "{highly recommend|would definitely recommend}! 5 stars!!!",
    "{Excellent|Perfect} {seller|shop}, item {exactly as described|as described}, "
    "{will buy again|will order again}. Five stars!",
]


def _fill_template(rng: np.random.Generator, tpl: str) -> str:
    out, i = [], 0
    while i < len(tpl):
        j = tpl.find("{", i)
        if j < 0:
            out.append(tpl[i:])
            break
        k = tpl.index("}", j)
        out.append(tpl[i:j])
        opts = tpl[j + 1 : k].split("|")
        out.append(opts[rng.integers(len(opts))])
        i = k + 1
    return "".join(out)


def _normal_review(rng: np.random.Generator, rating: int) -> str:
    pos_share = {5: 1.0, 4: 0.8, 3: 0.5, 2: 0.2, 1: 0.0}[rating]
    k = int(rng.integers(1, 4))
    if rng.random() < 0.8:
        parts = [_ZH_OPEN[rng.integers(len(_ZH_OPEN))]]
        for _ in range(k):
            pool = _ZH_POS if rng.random() < pos_share else _ZH_NEG
            parts.append(pool[rng.integers(len(pool))])
        parts.append(_ZH_CLOSE[rng.integers(len(_ZH_CLOSE))])
        text = "，".join(p for p in dict.fromkeys(parts) if p)
        return text + ["。", "！", "~", "", "👍"][rng.integers(5)] if rating >= 4 else text + "。"
    parts = []
    for _ in range(k):
        pool = _EN_POS if rng.random() < pos_share else _EN_NEG
        parts.append(pool[rng.integers(len(pool))])
    body = ", ".join(dict.fromkeys(parts))
    opener = _EN_OPEN[rng.integers(len(_EN_OPEN))]
    closer = _EN_CLOSE[rng.integers(len(_EN_CLOSE))]
    return " ".join(x for x in (opener, body[0].upper() + body[1:] + ".", closer) if x)


def _gen_reviews(rng: np.random.Generator, world: _World) -> tuple[dict, dict]:
    s = world.scale
    n = _n(25_000, s, 400)
    users = np.arange(1, world.n_normal_users + 1)
    uw = np.exp(rng.normal(0, 1.2, len(users)))
    uw /= uw.sum()
    author = rng.choice(users, n, p=uw).tolist()
    prod = rng.choice(len(world.item_ids), n, p=world.item_pop).tolist()
    t = _diurnal_times(rng, n).tolist()
    rating = rng.choice([5, 4, 3, 2, 1], n, p=[0.6, 0.2, 0.08, 0.04, 0.08]).tolist()
    kind = ["normal"] * n

    # Dense block(s) with camouflage, on tail products.
    tail = np.argsort(world.item_pop)[: max(50, len(world.item_pop) // 2)]
    blocks = []
    f = min(1.0, s) ** 0.5
    for b in range(max(1, round(s))):
        nu, npr = max(12, round(80 * f)), max(6, round(30 * f))
        busers = world.fraud_accounts(nu)
        bprods = rng.choice(tail, npr, replace=False)
        t0 = int(rng.integers(0, (DAYS - 5) * DAY))
        cam = 0
        for u in busers:
            mine = bprods[rng.random(npr) < 0.6]
            for p in mine:
                author.append(u)
                prod.append(int(p))
                t.append(t0 + int(rng.integers(0, 5 * DAY)))
                rating.append(5)
                kind.append(f"block{b}")
            c = round(len(mine) * rng.uniform(0.5, 1.5))
            popular = rng.random(c) < 0.5
            cps = np.where(
                popular,
                rng.choice(len(world.item_ids), c, p=world.item_pop),
                rng.integers(0, len(world.item_ids), c),
            )
            for p in cps:
                author.append(u)
                prod.append(int(p))
                t.append(int(_diurnal_times(rng, 1)[0]))
                rating.append(int(rng.choice([5, 4, 3], p=[0.7, 0.2, 0.1])))
                kind.append("camouflage")
                cam += 1
        blocks.append(
            {
                "block": b,
                "users": sorted(busers),
                "products": sorted(int(world.item_ids[p]) for p in bprods),
                "camouflage_edges": cam,
            }
        )

    # Sparse "水军" campaign: templated reviews, one per hired author, no dense structure.
    campaigns = []
    for p in rng.choice(tail, _n(4, s, 2), replace=False):
        m = int(rng.integers(8, 21))
        hired = rng.choice(users, m, replace=False)
        t0 = int(rng.integers(0, (DAYS - 2) * DAY))
        for u in hired:
            author.append(int(u))
            prod.append(int(p))
            t.append(t0 + int(rng.integers(0, 2 * DAY)))
            rating.append(5)
            kind.append("campaign")
        campaigns.append({"product": int(world.item_ids[p]), "authors": sorted(int(u) for u in hired)})

    order = np.argsort(np.asarray(t), kind="stable")
    texts, out_kind = [], []
    tpl_for_block = {}
    for i in order:
        k = kind[i]
        if k.startswith("block") or k == "campaign":
            # each fake source keeps to two templates, as a 水军 script would
            tpls = tpl_for_block.setdefault(
                k if k.startswith("block") else f"c{prod[i]}",
                rng.choice(len(_FAKE_TEMPLATES), 2, replace=False),
            )
            texts.append(_fill_template(rng, _FAKE_TEMPLATES[int(rng.choice(tpls))]))
        else:
            texts.append(_normal_review(rng, rating[i]))
        out_kind.append(k)
    m = len(order)
    rid = np.char.add("R", np.char.zfill((np.arange(m) + 1_000_000).astype(str), 8))
    cols = {
        "review_id": rid,
        "author": np.asarray(author)[order],
        "product": world.item_ids[np.asarray(prod)[order]],
        "text": np.asarray(texts, dtype=object),
        "rating": np.asarray(rating)[order],
        "review_time": fmt_times(np.asarray(t)[order]),
    }
    ok = np.asarray(out_kind)
    fake = (ok != "normal") & (ok != "camouflage")
    truth_reviews = {
        "review_ids": rid[fake].tolist(),
        "authors": sorted({int(a) for a in cols["author"][fake]}),
        "products": sorted({int(p) for p in cols["product"][fake]}),
        "campaigns": campaigns,
        "_rows": list(
            zip(
                rid[fake].tolist(),
                cols["author"][fake].tolist(),
                cols["product"][fake].tolist(),
                ok[fake].tolist(),
                strict=True,
            )
        ),
    }
    return cols, {"blocks": blocks, "reviews": truth_reviews}


# ------------------------------------------------------------------------------------------ actions


def _gen_actions(rng: np.random.Generator, world: _World) -> tuple[dict, dict]:
    s = world.scale
    n = _n(60_000, s, 1000)
    users = np.arange(1, world.n_normal_users + 1)
    uw = np.exp(rng.normal(0, 1.0, len(users)))
    uw /= uw.sum()
    parts_u = [rng.choice(users, n, p=uw)]
    parts_i = [rng.choice(len(world.item_ids), n, p=world.item_pop)]
    parts_t = [_diurnal_times(rng, n)]
    parts_g = [np.full(n, -1)]

    # Hard negative: live-stream sessions (直播带货) — synchronised, but viewers act on few items.
    streams = []
    for _ in range(_n(6, s, 1)):
        aud = rng.choice(users, min(len(users), int(rng.integers(200, 600))), replace=False)
        items = rng.choice(len(world.item_ids), int(rng.integers(5, 9)), replace=False)
        t0 = int(rng.integers(0, DAYS)) * DAY + 20 * HOUR
        for j, it in enumerate(items):
            who = aud[rng.random(len(aud)) < 0.08]
            parts_u.append(who)
            parts_i.append(np.full(len(who), it))
            parts_t.append(t0 + j * int(rng.integers(8, 16)) * 60 + rng.integers(0, 600, len(who)))
            parts_g.append(np.full(len(who), -1))
        streams.append(
            {
                "items": sorted(int(world.item_ids[i]) for i in items),
                "audience": len(aud),
                "start": fmt_time(t0),
            }
        )

    groups = []
    tail = np.argsort(world.item_pop)[: max(50, len(world.item_pop) // 2)]
    for g in range(_n(10, s, 2)):
        m = int(rng.integers(8, 41))
        k = int(rng.integers(5, 16))
        part = float(rng.uniform(0.75, 0.95))  # crews skip some tasks
        members = world.fraud_accounts(m)
        items = np.where(rng.random(k) < 0.7, rng.choice(tail, k), rng.choice(len(world.item_ids), k))
        items = np.unique(items)
        centres = rng.integers(0, DAYS * DAY, len(items))
        for it, c in zip(items, centres, strict=True):
            who = np.asarray(members)[rng.random(m) < part]
            off = np.clip(rng.normal(0, 600, len(who)), -1500, 1500).astype(np.int64)
            parts_u.append(who)
            parts_i.append(np.full(len(who), it))
            parts_t.append(c + off)
            parts_g.append(np.full(len(who), g))
        for u in members:  # camouflage: ordinary activity of the same accounts
            c = int(rng.integers(5, 31))
            parts_u.append(np.full(c, u))
            parts_i.append(rng.choice(len(world.item_ids), c, p=world.item_pop))
            parts_t.append(_diurnal_times(rng, c))
            parts_g.append(np.full(c, -1))
        groups.append(
            {
                "group": g,
                "participation": round(part, 3),
                "users": sorted(int(u) for u in members),
                "items": [int(world.item_ids[i]) for i in items],
                "centres": fmt_times(centres).tolist(),
            }
        )

    u = np.concatenate(parts_u)
    i = np.concatenate(parts_i)
    t = np.concatenate(parts_t)
    gid = np.concatenate(parts_g)
    order = np.lexsort((u, t))
    action = rng.choice(np.array(["like", "fav", "cart"]), len(t), p=[0.5, 0.3, 0.2])
    cols = {
        "userid": u[order],
        "itemid": world.item_ids[i[order]],
        "event_time": fmt_times(t[order]),
        "action": action,
    }
    sel = gid[order] >= 0
    rows = list(
        zip(
            gid[order][sel].tolist(),
            cols["userid"][sel].tolist(),
            cols["itemid"][sel].tolist(),
            cols["event_time"][sel].tolist(),
            strict=True,
        )
    )
    return cols, {"groups": groups, "hard_negatives": {"live_streams": streams}, "_rows": rows}


# -------------------------------------------------------------------------------------------- main


def generate(
    out_dir: str | Path, *, seed: int = 7, scale: float = 1.0, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Write the marketplace files and their ground truth to ``out_dir``; return the truth dict.

    ``progress`` (optional) is called with the name of each step as it starts.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError("scale must be a positive number")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _name: None)
    ss = np.random.SeedSequence(seed)
    r_world, r_plan, r_orders, r_way, r_rev, r_act, r_reg = (np.random.default_rng(c) for c in ss.spawn(7))

    step("catalogue")
    world = _build_world(r_world, scale)
    plan = _plan_bulk_clusters(r_plan, world)
    files: dict[str, int] = {}

    step("orders")
    orders, t_orders = _gen_orders(r_orders, world)
    files["orders.csv"] = _write_csv(
        out / "orders.csv",
        ["orderid", "shopid", "userid", "event_time", "amount", "itemid"],
        [orders[k] for k in ("orderid", "shopid", "userid", "event_time", "amount", "itemid")],
    )
    _write_csv(
        out / "truth_orders.csv",
        ["orderid", "shopid", "userid", "event"],
        zip(
            *[
                (o, e["shopid"], u, ev)
                for ev, e in enumerate(t_orders["events"])
                for o, u in zip(e["orderids"], _order_users(orders, e["orderids"]), strict=True)
            ],
            strict=True,
        )
        if t_orders["events"]
        else [[], [], [], []],
    )

    step("waybills")
    way, t_way = _gen_waybills(r_way, world, orders)
    wcols = [
        "waybill",
        "courier",
        "sender",
        "weight_kg",
        "pickup_time",
        "sign_time",
        "origin_city",
        "dest_city",
        "distance_km",
        "transit_scans",
    ]
    files["waybills.csv"] = _write_csv(out / "waybills.csv", wcols, [way[k] for k in wcols])
    rows = t_way.pop("_rows")
    _write_csv(
        out / "truth_waybills.csv",
        ["waybill", "sender", "courier"],
        list(zip(*rows, strict=True)) or [[], [], []],
    )

    step("reviews")
    rev, t_rev = _gen_reviews(r_rev, world)
    rcols = ["review_id", "author", "product", "text", "rating", "review_time"]
    files["reviews.csv"] = _write_csv(out / "reviews.csv", rcols, [rev[k] for k in rcols])
    files["edges.csv"] = _write_csv(
        out / "edges.csv",
        ["userid", "productid", "event_time", "rating"],
        [rev["author"], rev["product"], rev["review_time"], rev["rating"]],
    )
    rrows = t_rev["reviews"].pop("_rows")
    _write_csv(
        out / "truth_reviews.csv", ["review_id", "author", "product", "kind"], list(zip(*rrows, strict=True))
    )
    _write_csv(
        out / "truth_edges.csv",
        ["block", "node_kind", "node_id"],
        list(
            zip(
                *[(b["block"], "user", u) for b in t_rev["blocks"] for u in b["users"]]
                + [(b["block"], "product", p) for b in t_rev["blocks"] for p in b["products"]],
                strict=True,
            )
        ),
    )

    step("actions")
    act, t_act = _gen_actions(r_act, world)
    files["actions.csv"] = _write_csv(
        out / "actions.csv",
        ["userid", "itemid", "event_time", "action"],
        [act[k] for k in ("userid", "itemid", "event_time", "action")],
    )
    arows = t_act.pop("_rows")
    _write_csv(
        out / "truth_actions.csv", ["group", "userid", "itemid", "event_time"], list(zip(*arows, strict=True))
    )

    step("registrations")
    reg, t_reg = _gen_registrations(r_reg, world, plan)
    gcols = ["account", "registered_at", "device_id", "ip", "phone", "nickname"]
    files["registrations.csv"] = _write_csv(out / "registrations.csv", gcols, [reg[k] for k in gcols])
    _write_csv(
        out / "truth_registrations.csv",
        ["cluster", "account", "link_types"],
        list(
            zip(
                *[
                    (c["cluster"], a, "+".join(c["link_types"]))
                    for c in t_reg["clusters"]
                    for a in c["accounts"]
                ],
                strict=True,
            )
        ),
    )

    step("truth")
    truth: dict[str, Any] = {
        "generator": "fanchaoxin.simulate.marketplace",
        "version": 1,
        "seed": seed,
        "scale": scale,
        "start": fmt_time(0),
        "days": DAYS,
        "files": files,
        "order_brushing": t_orders,
        "empty_parcels": t_way,
        "dense_blocks": t_rev["blocks"],
        "fake_reviews": t_rev["reviews"],
        "lockstep": t_act,
        "registrations": t_reg,
        "fraud_accounts": {"bulk_registered": len(world.bulk_accounts), "hired": len(world.hired_accounts)},
    }
    (out / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    return truth


def _order_users(orders: dict, orderids: list[int]) -> list[int]:
    pos = np.searchsorted(orders["orderid"], orderids)
    return [int(x) for x in orders["userid"][pos]]
