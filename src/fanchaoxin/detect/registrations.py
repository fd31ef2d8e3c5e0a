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

Engines (#21): the links are made by two kernels, `link_tasks` (row by row) and `link_pairs` (per
group: a device, an IP, a nickname prefix, a range of phone numbers, with a halo so that a run across
a range's edge is seen whole), run over all rows at once on DuckDB (`find_clusters`) and per
partition on Spark (`find_clusters_spark`, mapInArrow after one shuffle by group). Components,
bursts and findings (`clusters_from_links`) then run on one machine over the linked rows only. Rows
equal in (key, number, time) are linked, and the accounts of a finding listed, in the order of their
content (time, account, device, IP, phone, nickname), never of the file's rows: both engines give the
same findings in the same order.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fanchaoxin.detect.findings import Finding

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
REQUIRED_COLUMNS = ("account", "registered_at", "device_id", "ip", "phone", "nickname")
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
    tiebreak: np.ndarray | None = None,
) -> np.ndarray:
    """Link rows that share `keys`, consecutive in sort order, under time / value-gap limits.

    Rows are sorted by (key, value, time, tiebreak) — or (key, time) without values — and each row is
    linked to the next one in the same key when the time difference is ≤ max_dt and the value
    difference is in 1…max_gap. Chains shorter than `min_run` rows are dropped. Returns (k, 2)
    row-index pairs. `tiebreak` orders rows equal in (key, value, time) by their content, so that
    which of them is linked never depends on the order rows arrive in (a file's, a partition's).
    """
    idx = np.flatnonzero(valid)
    if len(idx) < 2:
        return np.zeros((0, 2), np.int64)
    k = keys[idx]
    tt = times[idx]
    tb = tiebreak[idx] if tiebreak is not None else np.zeros(len(idx), np.int64)
    if values is not None:
        vv = values[idx]
        o = np.lexsort((tb, tt, vv, k))
    else:
        o = np.lexsort((tb, tt, k))
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


def _norm_text(v: Any) -> str | None:
    """A device id or IP as a link key (trimmed, lower-cased), None for empty and placeholder values."""
    s = "" if v is None else str(v).strip().lower()
    return None if s in NULL_TOKENS else s


# --- links, one definition for both engines (#21) -----------------------------------------------
#
# Each link type is a chain within a group: device and IP by (key, time), phone numbers by (number,
# time) in one group, nicknames by (number, time) per prefix. The same two kernels run on DuckDB (the
# whole input at once) and on Spark (per partition, mapInArrow):
#
# `link_tasks` (row-wise): one task per usable attribute of a registration — kind, key, bucket, value,
#   time, row id, the row's content — where `bucket` cuts a group's sort axis (the number; the time
#   for device and IP chains) into ranges of `LinkParams.bucket_size`, and a row near a range's edge
#   is also given, as a *halo* copy, to the neighbouring range: enough rows that every link, and every
#   phone / nickname run around it, is seen whole from the range its first row lies in. Plus one
#   ``rows`` task per batch counting the rows.
# `link_pairs` (per whole group of kind, key, bucket): `_chain_pairs` over the group, keeping the links
#   whose first row is not a halo copy — so each link comes out exactly once, however the groups are
#   spread over partitions, and a run crossing a range's edge links as it would in one piece — and
#   the linked rows' content, and the counts.
#
# Row ids only join links to rows; every order a finding shows is by the rows' content (`_canonical`),
# and rows equal in (key, number, time) are linked in the order of their content, never of arrival.

KINDS = ("device", "ip", "phone", "nickname")
_KIND = {k: i for i, k in enumerate(KINDS)}
ROWS, ROW = 4, 5  # link_pairs' other records: the row count; a linked row (a = row id, b = time)


@dataclass(frozen=True)
class LinkParams:
    """The link rules' parameters (see `find_clusters`)."""

    ip_window: int = 3600
    seq_window: int = 7 * 86400
    phone_gap: int = 3
    nick_gap: int = 2
    min_run: int = 3

    def halo(self, kind: str) -> tuple[int, int]:
        """(left, right) reach of a group range's halo along its sort axis."""
        if kind == "device":
            return 0, self.seq_window  # a link joins a row to the next one within the window
        if kind == "ip":
            return 0, self.ip_window
        gap = self.phone_gap if kind == "phone" else self.nick_gap
        reach = self.min_run * gap  # a run of min_run rows spans < min_run × gap either way of a link
        return reach, reach

    def bucket_size(self, kind: str) -> int:
        """A power of ten (≥ 10⁴) over ten times the halo: a row has at most one halo copy. Phone
        numbers: ranges of 10,000 numbers (a 7-digit 号段 prefix) at the default gap and run."""
        return 10 ** max(4, len(str(max(self.halo(kind)))) + 1)


TASK_SCHEMA = pa.schema(
    [
        ("kind", pa.int8()),
        ("key", pa.string()),
        ("bucket", pa.int64()),
        ("val", pa.int64()),
        ("t", pa.int64()),
        ("rid", pa.int64()),
        ("row", pa.string()),
        ("halo", pa.bool_()),
    ]
)
LINK_SCHEMA = pa.schema([("kind", pa.int8()), ("a", pa.int64()), ("b", pa.int64()), ("row", pa.string())])
ROW_COLUMNS = ("rid", "account", "t", "device_id", "ip", "phone", "nickname")


def _ints(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)


def link_tasks(rows: pa.Table | pa.RecordBatch, p: LinkParams) -> pa.Table:
    """The link tasks of registration rows (``ROW_COLUMNS``; see the comment above). Row by row: any
    split of the rows gives the same tasks (but for the per-batch row counts)."""
    n = rows.num_rows
    rid, t = _ints(rows.column("rid")), _ints(rows.column("t"))
    account = rows.column("account").to_pylist()
    dev, ip, phone, nick = (rows.column(c).to_pylist() for c in ROW_COLUMNS[3:])
    content = [
        json.dumps([account[i], dev[i], ip[i], phone[i], nick[i]], ensure_ascii=False) for i in range(n)
    ]
    parts: list[pa.Table] = []

    def add(kind: str, at: np.ndarray, key: list[str], val: np.ndarray) -> None:
        axis = t[at] if kind in ("device", "ip") else val
        size = p.bucket_size(kind)
        left, right = p.halo(kind)
        own = axis // size
        down = np.flatnonzero((axis - right) // size != own)  # also in the previous range's right halo
        up = np.flatnonzero((axis + left) // size != own)  # also in the next range's left halo
        keys = np.asarray(key, dtype=object)
        for bucket, halo, i in (
            (own, False, np.arange(len(at))),
            (own[down] - 1, True, down),
            (own[up] + 1, True, up),
        ):
            if not len(i):
                continue
            parts.append(
                pa.table(
                    {
                        "kind": pa.array(np.full(len(i), _KIND[kind], np.int8)),
                        "key": pa.array(keys[i].tolist(), pa.string()),
                        "bucket": pa.array(bucket, pa.int64()),
                        "val": pa.array(val[i], pa.int64()),
                        "t": pa.array(t[at[i]], pa.int64()),
                        "rid": pa.array(rid[at[i]], pa.int64()),
                        "row": pa.array([content[j] for j in at[i].tolist()], pa.string()),
                        "halo": pa.array(np.full(len(i), halo)),
                    },
                    schema=TASK_SCHEMA,
                )
            )

    for kind, values in (("device", dev), ("ip", ip)):
        norm = [_norm_text(v) for v in values]
        at = np.array([i for i, x in enumerate(norm) if x is not None], np.int64)
        add(kind, at, [norm[i] for i in at.tolist()], np.zeros(len(at), np.int64))  # type: ignore[misc]
    phones = [normalise_phone(x) for x in phone]
    at = np.array([i for i, x in enumerate(phones) if x is not None], np.int64)
    add("phone", at, [""] * len(at), np.array([phones[i] for i in at.tolist()], np.int64))
    pats = [nickname_pattern(x) for x in nick]
    at = np.array([i for i, x in enumerate(pats) if x is not None], np.int64)
    found = [pats[i] for i in at.tolist()]
    add("nickname", at, [x[0] for x in found], np.array([x[1] for x in found], np.int64))  # type: ignore[index]
    count = {"kind": [ROWS], "key": [""], "bucket": [0], "val": [n], "t": [0], "rid": [-1]}
    parts.append(pa.table(count | {"row": [None], "halo": [False]}, schema=TASK_SCHEMA))
    return pa.concat_tables(parts)  # by kind (the count last), as link_pairs reads them fastest


def link_pairs(tasks: pa.Table, p: LinkParams) -> pa.Table:
    """The links of whole groups (kind, key, bucket) of tasks, as records ``kind, a, b, row``:

    - ``k, a, b, null``: a link of kind k (0…3, `KINDS`) between rows a and b (row ids), once;
    - ``k, -1, count, null``: how many rows had an attribute of kind k usable (``ROWS``: rows read);
    - ``ROW, id, t, content``: a linked row (repeated where several groups link it).
    """
    out: list[pa.Table] = []
    kind_all = np.asarray(tasks.column("kind").to_numpy(zero_copy_only=False), dtype=np.int8)
    if np.any(kind_all[1:] < kind_all[:-1]):  # each kind in one slice
        by_kind = np.argsort(kind_all, kind="stable")
        tasks, kind_all = tasks.take(pa.array(by_kind)), kind_all[by_kind]
    counts = kind_all == ROWS
    if counts.any():
        out.append(_records(ROWS, np.array([-1]), np.array([int(_ints(tasks.column("val"))[counts].sum())])))
    for kind in KINDS:
        lo, hi = np.searchsorted(kind_all, [_KIND[kind], _KIND[kind] + 1])
        if lo == hi:
            continue
        sub = tasks.slice(lo, hi - lo)
        halo = np.asarray(sub.column("halo").to_numpy(zero_copy_only=False), dtype=bool)
        rid, t = _ints(sub.column("rid")), _ints(sub.column("t"))
        out.append(_records(_KIND[kind], np.array([-1]), np.array([int((~halo).sum())])))
        if hi - lo < 2:
            continue
        # a code per (key, bucket) in the order met: only which rows share a group matters
        key = sub.column("key")
        joined = pc.binary_join_element_wise(key, pc.cast(sub.column("bucket"), key.type), "\x1f")
        group = _ints(pc.dictionary_encode(joined).combine_chunks().indices)
        everything = np.ones(hi - lo, bool)
        if kind in ("device", "ip"):
            window = p.seq_window if kind == "device" else p.ip_window
            pairs = _chain_pairs(group, t, everything, max_dt=window)
        else:
            val = _ints(sub.column("val"))
            pairs = _chain_pairs(
                group,
                t,
                everything,
                max_dt=p.seq_window,
                values=val,
                max_gap=p.phone_gap if kind == "phone" else p.nick_gap,
                min_run=p.min_run,
                tiebreak=_content_ranks(sub.column("row"), group, val, t),
            )
        pairs = pairs[~halo[pairs[:, 0]]]  # a link belongs to the range its first row lies in
        out.append(_records(_KIND[kind], rid[pairs[:, 0]], rid[pairs[:, 1]]))
        ends = np.unique(pairs.ravel())
        out.append(_records(ROW, rid[ends], t[ends], sub.column("row").take(pa.array(ends, pa.int64()))))
    if not out:
        return LINK_SCHEMA.empty_table()
    return pa.concat_tables(out)


def _content_ranks(content: pa.ChunkedArray, *keys: np.ndarray) -> np.ndarray:
    """An order of rows equal in all `keys` by their content (0 where a row ties with none)."""
    o = np.lexsort(keys[::-1])
    same = np.ones(len(o) - 1, bool)
    for k in keys:
        same &= k[o][1:] == k[o][:-1]
    ranks = np.zeros(len(o), np.int64)
    tied = np.unique(np.concatenate([o[1:][same], o[:-1][same]]))
    if len(tied):
        text = np.asarray(content.take(pa.array(tied, pa.int64())).to_pylist(), dtype=object)
        ranks[tied] = np.unique(text, return_inverse=True)[1].ravel() + 1
    return ranks


def _records(
    kind: int, a: np.ndarray, b: np.ndarray, row: pa.Array | pa.ChunkedArray | None = None
) -> pa.Table:
    return pa.table(
        {
            "kind": pa.array(np.full(len(a), kind, np.int8)),
            "a": pa.array(a, pa.int64()),
            "b": pa.array(b, pa.int64()),
            "row": row.cast(pa.string()) if row is not None else pa.nulls(len(a), pa.string()),
        },
        schema=LINK_SCHEMA,
    )


def _rows_table(reg: Registrations) -> pa.Table:
    def text(x: np.ndarray) -> pa.Array:
        return pa.array([None if v is None else str(v) for v in x], pa.string())

    return pa.table(
        {
            "rid": pa.array(np.arange(len(reg.account), dtype=np.int64)),
            "account": text(reg.account),
            "t": pa.array(np.asarray(reg.time, dtype=np.int64)),
            "device_id": text(reg.device),
            "ip": text(reg.ip),
            "phone": text(reg.phone),
            "nickname": text(reg.nickname),
        }
    )


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
    ignored silently. The same kernels as on Spark (`find_clusters_spark`), over all rows at once.
    """
    p = LinkParams(ip_window, seq_window, phone_gap, nick_gap, min_run)
    links = link_pairs(link_tasks(_rows_table(reg), p), p)
    return clusters_from_links(
        links, min_size=min_size, burst_window=burst_window, min_score=min_score, stats=stats
    )


def _canonical(rid: np.ndarray, t: np.ndarray, content: list[str]) -> tuple[np.ndarray, list[list[Any]]]:
    """The linked rows (unique by id) in the order findings show them: by time, then by content
    (never by row id); returns (ids, [account, device, ip, phone, nickname] per row)."""
    first = np.unique(rid, return_index=True)[1]
    rows = [(int(t[i]), json.loads(content[i]), int(rid[i])) for i in first.tolist()]
    rows.sort(key=lambda r: (r[0], [(0, "") if v is None else (1, v) for v in r[1]]))
    return np.array([r[2] for r in rows], np.int64), [[r[0], *r[1]] for r in rows]


def clusters_from_links(
    links: pa.Table,
    *,
    min_size: int = 5,
    burst_window: int = 3600,
    min_score: float = 3.0,
    stats: dict[str, int] | None = None,
) -> list[Finding]:
    """Components, bursts and findings (on one machine, both engines) from `link_pairs`' records: the
    links, the counts and the linked rows — an account without a link is in no cluster, so nothing
    else of the input is needed here."""
    stats = stats if stats is not None else {}
    kind = np.asarray(links.column("kind").to_numpy(zero_copy_only=False), dtype=np.int8)
    a, b = _ints(links.column("a")), _ints(links.column("b"))
    counted = a < 0
    n_rows = int(b[counted & (kind == ROWS)].sum())
    stats["rows"] = n_rows
    if n_rows == 0:
        return []
    usable = {k: int(b[counted & (kind == _KIND[k])].sum()) for k in KINDS}
    stats.update(
        {
            "with_device": usable["device"],
            "with_ip": usable["ip"],
            "with_mobile_phone": usable["phone"],
            "with_numbered_nickname": usable["nickname"],
        }
    )
    is_row = np.flatnonzero(kind == ROW)
    row_text = links.column("row").take(pa.array(is_row, pa.int64())).to_pylist()
    rid, rows = _canonical(a[is_row], b[is_row], row_text)
    by_rid = np.argsort(rid, kind="stable")
    pairs: dict[str, np.ndarray] = {}
    for k in KINDS:
        sel = ~counted & (kind == _KIND[k])
        ends = np.stack([a[sel], b[sel]], axis=1).reshape(-1, 2)
        pairs[k] = by_rid[np.searchsorted(rid, ends, sorter=by_rid)].reshape(-1, 2).astype(np.int64)
    stats.update({f"links_{k}": len(v) for k, v in pairs.items()})
    cols = list(zip(*rows, strict=True)) if rows else [()] * 6
    reg = Registrations(
        account=np.asarray(cols[1], dtype=object),
        time=np.asarray(cols[0], dtype=np.int64),
        device=np.asarray(cols[2], dtype=object),
        ip=np.asarray(cols[3], dtype=object),
        phone=np.asarray(cols[4], dtype=object),
        nickname=np.asarray(cols[5], dtype=object),
    )
    return _clusters(
        reg, pairs, min_size=min_size, burst_window=burst_window, min_score=min_score, stats=stats
    )


def _clusters(
    reg: Registrations,
    pairs: dict[str, np.ndarray],
    *,
    min_size: int,
    burst_window: int,
    min_score: float,
    stats: dict[str, int],
) -> list[Finding]:
    n = len(reg.account)
    t = np.asarray(reg.time, dtype=np.int64)
    phones = [normalise_phone(p) for p in reg.phone]
    pats = [nickname_pattern(x) for x in reg.nickname]
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
    # here, not at the top: Spark's executors import this module with numpy and pyarrow alone
    from fanchaoxin.detect.io import read_table  # noqa: PLC0415

    rel = read_table(
        path,
        REQUIRED_COLUMNS,
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


# --- Spark (#21) ----------------------------------------------------------------------------------

_CHUNK_ROWS = 1_000_000  # tasks the link kernel takes at once on an executor (groups stay whole)


def spark_task_partition(
    batches: Iterable[pa.RecordBatch], *, params: LinkParams
) -> Iterator[pa.RecordBatch]:
    """Spark's `mapInArrow` over registration rows (``ROW_COLUMNS``): `link_tasks`, batch by batch."""
    for batch in batches:
        yield from link_tasks(batch, params).to_batches()


def _whole_groups(batches: Iterable[pa.RecordBatch], chunk_rows: int) -> Iterator[pa.Table]:
    """Tables of about `chunk_rows` tasks from a partition sorted by (kind, key, bucket), never
    cutting a group."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count < chunk_rows:
            continue
        table = pa.Table.from_batches(pending).combine_chunks()
        last = {c: table.column(c)[-1] for c in ("kind", "key", "bucket")}
        same = pc.and_(
            pc.and_(pc.equal(table.column("kind"), last["kind"]), pc.equal(table.column("key"), last["key"])),
            pc.equal(table.column("bucket"), last["bucket"]),
        )
        cut = int(np.argmax(np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)))
        if cut == 0:
            continue  # one group so far: keep reading
        yield table.slice(0, cut)
        pending = table.slice(cut).to_batches()
        count = table.num_rows - cut
    if pending:
        yield pa.Table.from_batches(pending)


def spark_link_partition(
    batches: Iterable[pa.RecordBatch], *, params: LinkParams, chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """Spark's `mapInArrow` over link tasks hash-partitioned by (kind, key, bucket) and sorted by them
    within the partition: `link_pairs` over whole groups, as on DuckDB."""
    for table in _whole_groups(batches, chunk_rows):
        yield from link_pairs(table, params).to_batches()


def find_clusters_spark(
    df: Any,
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
    partitions: int | None = None,
    chunk_rows: int = _CHUNK_ROWS,
) -> list[Finding]:
    """`find_clusters` on Spark: `df` is a DataFrame from `engines.spark_read_table` with ``account,
    t, device_id, ip, phone, nickname`` (t: epoch seconds of the naive local time).

    One Spark job: `link_tasks` row by row where the rows are read (no shuffle), one shuffle of the
    tasks by (kind, key, bucket) — `partitions` of them, default spark.sql.shuffle.partitions — and
    `link_pairs` per whole group. Back to the driver come the links, the linked rows and the counts
    only; there `clusters_from_links` makes the same findings as on DuckDB.
    """
    from pyspark.sql import functions as F  # noqa: PLC0415
    from pyspark.sql.types import (  # noqa: PLC0415
        BooleanType,
        ByteType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    p = LinkParams(ip_window, seq_window, phone_gap, nick_gap, min_run)
    task_schema = StructType(
        [
            StructField("kind", ByteType(), False),
            StructField("key", StringType(), False),
            StructField("bucket", LongType(), False),
            StructField("val", LongType(), False),
            StructField("t", LongType(), False),
            StructField("rid", LongType(), False),
            StructField("row", StringType(), True),
            StructField("halo", BooleanType(), False),
        ]
    )
    link_schema = StructType(
        [
            StructField("kind", ByteType(), False),
            StructField("a", LongType(), False),
            StructField("b", LongType(), False),
            StructField("row", StringType(), True),
        ]
    )
    # a row id only joins links to rows, never orders anything; from the position in the input's
    # partition, so that a partition recomputed after a lost executor gives the same ids
    rows = df.select(
        F.monotonically_increasing_id().alias("rid"),
        F.col("account").cast("string").alias("account"),
        F.col("t").cast("long").alias("t"),
        *[F.col(c).cast("string").alias(c) for c in ROW_COLUMNS[3:]],
    )
    tasks = rows.mapInArrow(functools.partial(spark_task_partition, params=p), task_schema)
    groups = ("kind", "key", "bucket")
    spread = tasks.repartition(partitions, *groups) if partitions else tasks.repartition(*groups)
    job = functools.partial(spark_link_partition, params=p, chunk_rows=chunk_rows)
    links = spread.sortWithinPartitions(*groups).mapInArrow(job, link_schema).toArrow()
    return clusters_from_links(
        links, min_size=min_size, burst_window=burst_window, min_score=min_score, stats=stats
    )
