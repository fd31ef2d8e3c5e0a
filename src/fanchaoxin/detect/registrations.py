"""Bulk registration clusters (恶意注册, behaviour ``malicious_registration``).

Account farms (养号/批量注册) register many accounts with few real resources: a handful of phones or
emulators (设备), a proxy IP pool, SIM cards bought in sequential batches from a 卡商 (so the phone
numbers are consecutive), and nicknames generated from a pattern (shop8801, shop8802, …), often in one
sitting. Each shortcut leaves a link between accounts:

``device``
    the same device id (after trimming and lower-casing; empty and placeholder ids such as
    ``unknown``, ``null``, ``000000000000000`` are ignored) for registrations at most ``seq_window``
    apart, chained (a family registering on one phone months apart is not a farm; a farm works in
    days);
``ip``
    the same IP address for two registrations at most ``ip_window`` seconds apart (IPs alone are weak:
    carrier-grade NAT, campuses and offices put many honest people behind one address, so only
    closeness in time makes them a link, and their weight is low);
``phone``
    mainland mobile numbers (normalised to 11 digits: ``+86``, spaces and dashes removed) that differ by
    1…``phone_gap`` in a run of at least ``min_run`` numbers, registered within ``seq_window`` of each
    other;
``nickname``
    nicknames with the same prefix (NFKC, case-folded, trailing ``_-.`` removed) and numeric suffixes
    differing by 1…``nick_gap`` in a run of at least ``min_run``, within ``seq_window``;
``burst``
    groups with ≥ 3 accounts tied by device, phone or nickname links whose registration
    bursts overlap in time — a farm driving several emulators or SIM batches at once (注册突增).
    Weight 0: it merges, it does not add evidence by itself.

Accounts joined by any chain of links form a connected component (scipy.sparse.csgraph); components of
at least ``min_size`` accounts are candidate clusters, scored

    score = log2(size) × (1 + burstiness) × Σ_type weight(type) × coverage(type)

with weights device 1, phone 1, nickname 1, ip 0.25, burst 0; *coverage* the share of the cluster's
accounts that have a link of that type; and *burstiness* the largest share of the cluster registered
within any ``burst_window`` (default one hour). So a cluster counts for more the larger it is, the more
it registered in one burst (注册突增), and the more independent kinds of shared resource tie all of it
together. A campus sign-up event behind one IP (one weak link type) stays low, and so does a chain of
carrier-NAT neighbours that happens to contain a family sharing one phone (the device link covers two
accounts of seven). Clusters scoring at least ``min_score`` (3) are reported; evidence lists the shared
devices and IPs (with counts), the phone runs (masked ``+86 138****5601``) and nickname runs, and the
burst.

Scale: everything is sorting and one sparse connected-components pass, O(n log n); 200,000
registrations take a few seconds, most of it reading and normalising the text columns.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import read_table

# "burst" joins linked groups registering in the same burst; it adds no weight of its own (the
# burstiness factor already rewards it), so it cannot make a cluster out of unlinked accounts.
LINK_WEIGHTS = {"device": 1.0, "phone": 1.0, "nickname": 1.0, "ip": 0.25, "burst": 0.0}
NULL_TOKENS = {
    "",
    "unknown",
    "null",
    "none",
    "nan",
    "n/a",
    "na",
    "-",
    "0",
    "000000000000000",
    "00000000-0000-0000-0000-000000000000",
    "02:00:00:00:00:00",
}
_NICK_RE = re.compile(r"^(.*?)(\d{2,})$")


@dataclass
class Registrations:
    """Registration rows as arrays (times in epoch seconds; missing text attributes are None)."""

    account: np.ndarray
    time: np.ndarray
    device: np.ndarray
    ip: np.ndarray
    phone: np.ndarray
    nickname: np.ndarray


def normalise_phone(raw: Any) -> int | None:
    """Mainland mobile number → int of its 11 digits, or None (not a mobile number: no phone link)."""
    if raw is None:
        return None
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", str(raw)))
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    if len(digits) == 11 and digits[0] == "1":
        return int(digits)
    return None


def nickname_pattern(raw: Any) -> tuple[str, int] | None:
    """(prefix, numeric suffix) of a nickname like ``shop8801`` / ``Shop_8801``; None without one."""
    if raw is None:
        return None
    s = unicodedata.normalize("NFKC", str(raw)).strip().casefold()
    m = _NICK_RE.match(s)
    if not m:
        return None
    prefix = m.group(1).rstrip("_-. ")
    digits = m.group(2)
    if not prefix or len(digits) > 15:
        return None
    return prefix, int(digits)


def mask_phone(p: int) -> str:
    s = f"{p:011d}"
    return f"+86 {s[:3]}****{s[7:]}"


def _chain_pairs(
    keys: np.ndarray,
    times: np.ndarray,
    valid: np.ndarray,
    *,
    max_dt: int | None,
    values: np.ndarray | None = None,
    max_gap: int | None = None,
    min_run: int = 2,
) -> np.ndarray:
    """Link rows that share `keys`, consecutive in sort order, under time / value-gap limits.

    Rows are sorted by (key, value, time) — or (key, time) without values — and each row is linked
    to the next one in the same key when the time difference is ≤ max_dt and the value difference is
    in 1…max_gap. Chains shorter than `min_run` rows are dropped. Returns (k, 2) row-index pairs.
    """
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return np.zeros((0, 2), np.int64)
    k = keys[idx]
    tt = times[idx]
    if values is not None:
        vv = values[idx]
        o = np.lexsort((tt, vv, k))
    else:
        o = np.lexsort((tt, k))
    idx, k, tt = idx[o], k[o], tt[o]
    link = k[1:] == k[:-1]
    if max_dt is not None:
        link &= np.abs(tt[1:] - tt[:-1]) <= max_dt
    if values is not None and max_gap is not None:
        vv = vv[o]
        d = vv[1:] - vv[:-1]
        link &= (d >= 1) & (d <= max_gap)
    if min_run > 2 and link.any():
        # run id of each link; a run of r links joins r+1 rows
        breaks = np.concatenate([[True], ~link[:-1]])
        run = np.cumsum(breaks) - 1
        run_len = np.bincount(run, weights=link.astype(float))
        link &= run_len[run] >= min_run - 1
    a = np.flatnonzero(link)
    return np.stack([idx[a], idx[a + 1]], axis=1)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of string values; rows whose value is a null token get valid=False."""
    norm = np.array([("" if v is None else str(v).strip().lower()) for v in values], dtype=object)
    valid = np.array([v not in NULL_TOKENS for v in norm], dtype=bool)
    _, codes = np.unique(norm, return_inverse=True)
    return codes.astype(np.int64), valid


def find_clusters(
    reg: Registrations,
    *,
    ip_window: int = 3600,
    seq_window: int = 7 * 86400,
    phone_gap: int = 3,
    nick_gap: int = 2,
    min_run: int = 3,
    min_size: int = 5,
    burst_window: int = 3600,
    min_score: float = 3.0,
    stats: dict[str, int] | None = None,
) -> list[Finding]:
    """Find bulk-registration clusters; see the module docstring for links and score.

    `stats`, if given, is filled with counts of what could be used (rows with a usable device, IP,
    mobile number, patterned nickname; links per type; candidate components) so that nothing is
    ignored silently.
    """
    stats = stats if stats is not None else {}
    n = len(reg.account)
    stats["rows"] = n
    if n == 0:
        return []
    t = np.asarray(reg.time, dtype=np.int64)
    pairs: dict[str, np.ndarray] = {}

    dev_codes, dev_valid = _codes(reg.device)
    pairs["device"] = _chain_pairs(dev_codes, t, dev_valid, max_dt=seq_window)
    ip_codes, ip_valid = _codes(reg.ip)
    pairs["ip"] = _chain_pairs(ip_codes, t, ip_valid, max_dt=ip_window)

    phones = [normalise_phone(p) for p in reg.phone]
    ph_valid = np.array([p is not None for p in phones], dtype=bool)
    ph_val = np.array([p if p is not None else 0 for p in phones], dtype=np.int64)
    pairs["phone"] = _chain_pairs(
        np.zeros(n, np.int64),
        t,
        ph_valid,
        max_dt=seq_window,
        values=ph_val,
        max_gap=phone_gap,
        min_run=min_run,
    )

    pats = [nickname_pattern(x) for x in reg.nickname]
    nk_valid = np.array([p is not None for p in pats], dtype=bool)
    _, nk_prefix = np.unique(np.array([p[0] if p else "" for p in pats], dtype=object), return_inverse=True)
    nk_num = np.array([p[1] if p else 0 for p in pats], dtype=np.int64)
    pairs["nickname"] = _chain_pairs(
        nk_prefix.astype(np.int64),
        t,
        nk_valid,
        max_dt=seq_window,
        values=nk_num,
        max_gap=nick_gap,
        min_run=min_run,
    )

    stats.update(
        {
            "with_device": int(dev_valid.sum()),
            "with_ip": int(ip_valid.sum()),
            "with_mobile_phone": int(ph_valid.sum()),
            "with_numbered_nickname": int(nk_valid.sum()),
        }
    )
    stats.update({f"links_{k}": len(v) for k, v in pairs.items()})
    all_pairs = np.concatenate([p for p in pairs.values()] + [np.zeros((0, 2), np.int64)])
    if len(all_pairs) == 0:
        return []
    comp = _components(all_pairs, n)
    # only groups in which at least 3 accounts are tied by a strong link (device, phone or nickname;
    # not NAT neighbours around a family's shared phone) are joined by a shared burst
    strong_rows = np.unique(np.concatenate([pairs[k].ravel() for k in ("device", "phone", "nickname")]))
    per_comp = np.bincount(comp[strong_rows], minlength=int(comp.max()) + 1)
    strong = np.flatnonzero(per_comp >= 3)
    pairs["burst"] = _burst_pairs(comp, t, burst_window, eligible=strong)
    stats["links_burst"] = len(pairs["burst"])
    if len(pairs["burst"]):
        comp = _components(np.concatenate([all_pairs, pairs["burst"]]), n)
    sizes = np.bincount(comp)
    big = np.flatnonzero(sizes >= min_size)
    stats["components_min_size"] = len(big)
    findings = []
    comp_link_types: dict[int, Counter[str]] = {int(c): Counter() for c in big}
    big_set = set(big.tolist())
    for kind, pr in pairs.items():
        for c in comp[pr[:, 0]].tolist():
            if c in big_set:
                comp_link_types[c][kind] += 1
    order = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[order], np.arange(len(sizes) + 1))
    for c in big.tolist():
        rows = order[starts[c] : starts[c + 1]]
        rows = rows[np.argsort(t[rows], kind="stable")]
        f = _cluster_finding(reg, rows, t, comp_link_types[c], pairs, comp, c, phones, pats, burst_window)
        if f.score >= min_score:
            findings.append(f)
    findings.sort(key=lambda f: -f.score)
    return findings


def _components(pairs: np.ndarray, n: int) -> np.ndarray:
    # scipy.sparse adds a third of a second to every `fcx` start: loaded when clusters are linked
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415

    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[1]


def _burst_pairs(
    comp: np.ndarray, t: np.ndarray, window: int, *, eligible: np.ndarray, min_part: int = 3
) -> np.ndarray:
    """Join linked groups that register in the same burst (a farm working several emulators at once).

    Each `eligible` component of at least `min_part` accounts that registered mostly (≥ half, ≥ `min_part`
    accounts) within one `window` has a burst interval (first to last account of that densest
    window); components whose burst intervals overlap are linked, one pair per overlap.
    """
    sizes = np.bincount(comp)
    cand = np.intersect1d(np.flatnonzero(sizes >= min_part), eligible)
    if len(cand) < 2:
        return np.zeros((0, 2), np.int64)
    rows_of = np.argsort(comp, kind="stable")
    starts = np.searchsorted(comp[rows_of], np.arange(len(sizes) + 1))
    spans = []
    for c in cand.tolist():
        rows = rows_of[starts[c] : starts[c + 1]]
        rows = rows[np.argsort(t[rows], kind="stable")]
        tt = t[rows]
        end = np.searchsorted(tt, tt + window, side="right")
        cnt = end - np.arange(len(tt))
        k = int(np.argmax(cnt))
        if cnt[k] >= min_part and cnt[k] * 2 >= len(tt):
            spans.append((int(tt[k]), int(tt[end[k] - 1]), int(rows[k])))
    spans.sort()
    out = []
    reach, rep_row = None, None
    for a, b, r in spans:
        if reach is not None and a <= reach:
            out.append((rep_row, r))
            reach = max(reach, b)
        else:
            reach, rep_row = b, r
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def _burst(times: np.ndarray, window: int) -> tuple[float, int, int]:
    """Largest share of `times` (sorted) inside any window, with its start and count."""
    end = np.searchsorted(times, times + window, side="right")
    cnt = end - np.arange(len(times))
    k = int(np.argmax(cnt))
    return float(cnt[k] / len(times)), int(times[k]), int(cnt[k])


def _fmt(sec: int) -> str:
    return str(np.datetime64(int(sec), "s")).replace("T", " ")


def _cluster_finding(
    reg: Registrations,
    rows: np.ndarray,
    t: np.ndarray,
    links: Counter[str],
    pairs: dict[str, np.ndarray],
    comp: np.ndarray,
    c: int,
    phones: list[int | None],
    pats: list[tuple[str, int] | None],
    burst_window: int,
) -> Finding:
    size = len(rows)
    times = t[rows]
    burstiness, burst_start, burst_n = _burst(times, burst_window)
    kinds = sorted(links)
    in_comp = {k: pr[comp[pr[:, 0]] == c] for k, pr in pairs.items()}
    # a link type counts in proportion to the share of the cluster it ties together: a family's
    # shared phone inside a chain of NAT neighbours is not a device farm
    coverage = {k: len(np.unique(in_comp[k])) / size for k in kinds}
    weight = sum(LINK_WEIGHTS[k] * coverage[k] for k in kinds)
    score = math.log2(size) * (1 + burstiness) * weight
    accounts = [str(reg.account[r]) for r in rows]
    shared: dict[str, Any] = {}
    if "burst" in links:
        shared["groups_in_one_burst"] = links["burst"] + 1
    if "device" in links:
        devs = Counter(str(reg.device[r]) for r in np.unique(in_comp["device"]))
        shared["devices"] = dict(devs.most_common(20))
    if "ip" in links:
        ips = Counter(str(reg.ip[r]) for r in np.unique(in_comp["ip"]))
        shared["ips"] = dict(ips.most_common(20))
    if "phone" in links:
        nums = sorted({phones[r] for r in np.unique(in_comp["phone"])})  # type: ignore[type-var]
        shared["phone_runs"] = [
            f"{mask_phone(a)} … {mask_phone(b)} ({k} numbers)" for a, b, k in _runs(nums, 50)
        ]
    if "nickname" in links:
        rs = np.unique(in_comp["nickname"])
        by_prefix: dict[str, list[int]] = {}
        for r in rs:
            p = pats[r]
            if p is not None:
                by_prefix.setdefault(p[0], []).append(p[1])
        shared["nickname_runs"] = [
            f"{pre}{a} … {pre}{b} ({k} names)"
            for pre, nums_ in sorted(by_prefix.items())
            for a, b, k in _runs(sorted(set(nums_)), 50)
        ]
    first, last = _fmt(int(times.min())), _fmt(int(times.max()))
    summary = (
        f"{size} accounts registered {first} – {last} linked by {', '.join(kinds)}; "
        f"{burst_n} of them within {burst_window // 60} min"
    )
    return Finding(
        detector="bulk-registration",
        behaviour="malicious_registration",
        subject_kind="platform_account",
        subject_ids=accounts,
        score=round(score, 4),
        summary=summary,
        evidence={
            "size": size,
            "link_types": kinds,
            "links": dict(sorted(links.items())),
            "coverage": {k: round(v, 4) for k, v in coverage.items()},
            "shared": shared,
            "first_registered": first,
            "last_registered": last,
            "first_seen": first,
            "burst": {
                "start": _fmt(burst_start),
                "window_seconds": burst_window,
                "accounts": burst_n,
                "share": round(burstiness, 4),
            },
            "accounts": accounts,
        },
    )


def _runs(nums: list[int], max_gap: int) -> list[tuple[int, int, int]]:
    """Collapse sorted numbers into (first, last, count) runs with gaps ≤ max_gap."""
    out: list[tuple[int, int, int]] = []
    for x in nums:
        if out and x - out[-1][1] <= max_gap:
            a, _, k = out[-1]
            out[-1] = (a, x, k + 1)
        else:
            out.append((x, x, 1))
    return out


def load_registrations(
    path: str | Path, *, columns: Mapping[str, str] | None = None, timezone: str = "Asia/Shanghai"
) -> Registrations:
    """Read a registrations file strictly (fanchaoxin.detect.io).

    `columns` maps the logical names ``account, registered_at, device_id, ip, phone, nickname`` to
    the file's column names (defaults: the same names). Only account and registered_at must be
    filled; empty attributes simply give no link. Times become naive local times in `timezone`
    (epoch seconds and times with an offset are converted).
    """
    rel = read_table(
        path,
        ["account", "registered_at", "device_id", "ip", "phone", "nickname"],
        types={"account": "VARCHAR", "registered_at": "TIMESTAMP"},
        nullable=["device_id", "ip", "phone", "nickname"],
        columns=columns,
        timezone=timezone,
    )
    d = rel.project(
        "account AS a, CAST(epoch(registered_at) AS BIGINT) AS t, CAST(device_id AS VARCHAR) AS d, "
        "CAST(ip AS VARCHAR) AS i, CAST(phone AS VARCHAR) AS p, CAST(nickname AS VARCHAR) AS n"
    ).fetchnumpy()

    def obj(x: Any) -> np.ndarray:
        arr = np.asarray(x, dtype=object)
        if hasattr(x, "mask"):
            arr[np.ma.getmaskarray(x)] = None
        return arr

    return Registrations(
        account=obj(d["a"]),
        time=np.asarray(d["t"], dtype=np.int64),
        device=obj(d["d"]),
        ip=obj(d["i"]),
        phone=obj(d["p"]),
        nickname=obj(d["n"]),
    )
