"""Empty parcels (合谋寄递空包裹, behaviour ``empty_parcel``) in courier waybill data.

Order brushing needs logistics records that look real, so brushers buy waybill numbers from "空包网"
sites and have empty (or near-empty) parcels shipped — or only scanned and signed — often with the
help of a courier outlet or staff member. Three signals per waybill, each in [0, 1]:

``weight``   near-zero weight: 1 at ≤ ``w_empty`` kg (0.05), falling linearly to 0 at ``w_light`` kg
             (0.15). Documents and light goods weigh from about 0.06 kg, so weight alone is never enough.
``scans``    missing transit scans: no scan at all is 1 for a parcel travelling ≥ ``local_km`` (50 km)
             and 0.5 within a city; a single scan over ≥ 300 km is 0.5. Long trips pass sorting centres.
``transit``  an impossible pick-up → sign time: signed before pick-up, or faster than ``v_ok`` km/h
             (130, above air express door to door) rising to 1 at ``v_bad`` (260), or under
             ``min_hours`` (2 h) for any trip ≥ ``local_km``. Unknown sign times give 0.

The waybill score is the mean of the three; waybills scoring ≥ ``min_score`` (0.5, i.e. about two
strong signals) are flagged. Missing weight / scans / distance count as 0 for their signal (nothing is
invented) and are listed in the evidence.

Concentration (集中度). An honest sender or courier ends up with a few flagged waybills by chance (a
light document that skipped a scanner); a colluding one has many.

* Sender with n waybills of which k are flagged, p₀ the flagged share over the whole file: the
  one-sided binomial tail P(X ≥ k | n, p₀).
* Courier: the honest courier staff who picks up a brushing shop's parcels also gets some of its empty
  ones, so "more than p₀" would blame them for the shop. The expectation is instead what the
  courier's *senders* explain: for each sender, its flagged rate on waybills carried by other
  couriers (shrunk towards p₀), times the waybills this courier carried for it; P = Poisson tail
  P(X ≥ k | λ = that sum), conservative for a sum of Bernoullis. A colluder who gets a shop's empty
  parcels but not its real ones stands out; a courier who simply serves the shop does not.
  A sender that ships nothing but empty parcels (a 空包网 customer) "explains" every courier it uses,
  so a courier is also reported when flagged waybills of at least ``min_senders`` (3) different
  senders converge on it and the plain binomial tail against p₀ is significant.

The score is −log₁₀ P (capped at 300). Senders/couriers with k ≥ ``min_count`` and P ≤ ``alpha``
(1e-4, which keeps expected false alarms below one over thousands of senders) are reported.

Findings: one per flagged waybill (subject: the sender shop, ``platform_account``; evidence holds the
waybill, courier and signals; score in [0, 1]), one per concentrated sender (``platform_account``)
and one per concentrated courier (``courier_staff`` by default; score −log₁₀ P). ``evidence.level`` is
``waybill``, ``sender`` or ``courier``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fanchaoxin.detect.findings import Finding
from fanchaoxin.detect.io import read_table

COLUMNS = (
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
)


@dataclass
class Waybills:
    waybill: np.ndarray
    courier: np.ndarray
    sender: np.ndarray
    weight: np.ndarray  # kg, NaN when unknown
    pickup: np.ndarray  # epoch seconds
    sign: np.ndarray  # epoch seconds, or INT64_MIN when not (yet) signed
    origin: np.ndarray
    dest: np.ndarray
    distance: np.ndarray  # km, NaN when unknown
    scans: np.ndarray  # float, NaN when unknown


NO_TIME = -(2**62)  # "not signed"; far from any real epoch second


def missing_values(w: Waybills) -> dict[str, int]:
    """How many waybills lack each optional value (those give no signal, so a report says how many)."""
    return {
        "weight_kg": int(np.isnan(w.weight).sum()),
        "transit_scans": int(np.isnan(w.scans).sum()),
        "distance_km": int(np.isnan(w.distance).sum()),
        "sign_time": int((w.sign == NO_TIME).sum()),
    }


@dataclass
class Params:
    w_empty: float = 0.05
    w_light: float = 0.15
    local_km: float = 50.0
    v_ok: float = 130.0
    v_bad: float = 260.0
    min_hours: float = 2.0
    min_score: float = 0.5
    min_count: int = 3
    min_senders: int = 3
    alpha: float = 1e-4
    courier_kind: str = "courier_staff"


def waybill_signals(w: Waybills, p: Params) -> dict[str, np.ndarray]:
    """Per-waybill signals and score (vectorised)."""
    weight = np.clip((p.w_light - w.weight) / (p.w_light - p.w_empty), 0, 1)
    weight = np.where(np.isnan(w.weight), 0.0, weight)
    dist = w.distance
    far = np.nan_to_num(dist, nan=0.0) >= p.local_km
    scans = np.where(w.scans == 0, np.where(far, 1.0, 0.5), 0.0)
    scans = np.where((w.scans == 1) & (np.nan_to_num(dist, nan=0.0) >= 300), 0.5, scans)
    scans = np.where(np.isnan(w.scans), 0.0, scans)
    signed = w.sign != NO_TIME
    hours = np.where(signed, (w.sign - w.pickup) / 3600.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(signed & (hours > 0), dist / hours, np.nan)
    transit = np.clip((speed - p.v_ok) / (p.v_bad - p.v_ok), 0, 1)
    transit = np.where(np.isnan(transit), 0.0, transit)
    transit = np.where(signed & (hours < p.min_hours) & far, 1.0, transit)
    transit = np.where(signed & (hours < 0), 1.0, transit)
    score = (weight + scans + transit) / 3.0
    return {
        "weight": weight,
        "scans": scans,
        "transit": transit,
        "score": score,
        "hours": hours,
        "speed": speed,
    }


def _fmt(sec: int) -> str:
    return str(np.datetime64(int(sec), "s")).replace("T", " ")


def _num(x: float, nd: int = 3) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def detect_empty_parcels(
    w: Waybills, p: Params | None = None, progress: Callable[[int, int], None] | None = None
) -> list[Finding]:
    """Score every waybill, then senders and couriers by concentration; see the module docstring."""
    p = p or Params()
    n = len(w.waybill)
    if n == 0:
        return []
    sig = waybill_signals(w, p)
    flagged = sig["score"] >= p.min_score
    findings: list[Finding] = []
    idx = np.flatnonzero(flagged)
    for k, i in enumerate(idx):
        if progress is not None and k % 5000 == 0:
            progress(k, len(idx))
        reasons = []
        if sig["weight"][i] > 0:
            reasons.append(f"weight {w.weight[i]:g} kg")
        if sig["scans"][i] > 0:
            reasons.append(f"{int(w.scans[i])} transit scans over {w.distance[i]:g} km")
        if sig["transit"][i] > 0:
            h = sig["hours"][i]
            reasons.append(
                "signed before pick-up"
                if h < 0
                else f"signed {h:.1f} h after pick-up for {w.distance[i]:g} km"
            )
        missing = [
            name
            for name, v in (
                ("weight_kg", w.weight[i]),
                ("transit_scans", w.scans[i]),
                ("distance_km", w.distance[i]),
            )
            if not math.isfinite(v)
        ]
        if w.sign[i] == NO_TIME:
            missing.append("sign_time")
        ev: dict[str, Any] = {
            "level": "waybill",
            "waybill": str(w.waybill[i]),
            "courier": str(w.courier[i]),
            "sender": str(w.sender[i]),
            "weight_kg": _num(w.weight[i]),
            "transit_scans": _num(w.scans[i], 0),
            "distance_km": _num(w.distance[i], 1),
            "pickup_time": _fmt(w.pickup[i]),
            "sign_time": _fmt(w.sign[i]) if w.sign[i] != NO_TIME else None,
            "hours": _num(sig["hours"][i], 2),
            "speed_kmh": _num(sig["speed"][i], 1),
            "origin_city": str(w.origin[i]),
            "dest_city": str(w.dest[i]),
            "signals": {k: round(float(sig[k][i]), 3) for k in ("weight", "scans", "transit")},
        }
        if missing:
            ev["missing"] = missing
        findings.append(
            Finding(
                detector="empty-parcel",
                behaviour="empty_parcel",
                subject_kind="platform_account",
                subject_ids=[str(w.sender[i])],
                score=round(float(sig["score"][i]), 4),
                summary=f"waybill {w.waybill[i]} by {w.courier[i]} looks empty: {'; '.join(reasons)}",
                evidence=ev,
            )
        )
    p0 = max(float(flagged.mean()), 1e-6)
    findings += _concentration(w.sender, w, flagged, sig, p0, p, level="sender", kind="platform_account")
    findings += _concentration(w.courier, w, flagged, sig, p0, p, level="courier", kind=p.courier_kind)
    return findings


def _concentration(
    keys: np.ndarray,
    w: Waybills,
    flagged: np.ndarray,
    sig: dict[str, np.ndarray],
    p0: float,
    p: Params,
    *,
    level: str,
    kind: str,
) -> list[Finding]:
    # scipy.stats takes most of a second to import: `fcx` loads it when parcels are scored, not at start
    from scipy.stats import binom, poisson  # noqa: PLC0415

    labels, inv = np.unique(keys.astype(str), return_inverse=True)
    total = np.bincount(inv, minlength=len(labels))
    hits = np.bincount(inv, weights=flagged.astype(float), minlength=len(labels)).astype(np.int64)
    cand = np.flatnonzero(hits >= p.min_count)
    if level == "sender":
        pv = binom.sf(hits[cand] - 1, total[cand], p0)
        expected = total[cand] * p0
        basis = ["binomial"] * len(cand)
    else:
        expected = _expected_given_senders(inv, w.sender, flagged, p0)[cand]
        pv_cond = poisson.sf(hits[cand] - 1, expected)
        pv_bin = binom.sf(hits[cand] - 1, total[cand], p0)
        _, s_code = np.unique(w.sender.astype(str), return_inverse=True)
        fl = np.flatnonzero(flagged)
        pairs = np.unique(inv[fl].astype(np.int64) * (int(s_code.max()) + 1) + s_code[fl])
        n_senders = np.bincount(pairs // (int(s_code.max()) + 1), minlength=len(labels))[cand]
        # empty parcels of several senders converging on one courier is collusion even when one of
        # those senders ships nothing but empty parcels (and so "explains" the courier)
        multi = (n_senders >= p.min_senders) & (pv_bin <= p.alpha)
        use_cond = pv_cond <= p.alpha
        pv = np.where(use_cond, pv_cond, np.where(multi, pv_bin, 1.0))
        expected = np.where(use_cond, expected, total[cand] * p0)
        basis = [
            "given its senders" if a else f"{int(m)} senders"
            for a, m in zip(use_cond, n_senders, strict=True)
        ]
    out = []
    other = w.courier if level == "sender" else w.sender
    for c, pval, exp_c, why in zip(cand, pv, expected, basis, strict=True):
        if pval > p.alpha:
            continue
        rows = np.flatnonzero((inv == c) & flagged)
        score = min(300.0, -math.log10(max(pval, 1e-300)))
        others, counts = np.unique(other[rows].astype(str), return_counts=True)
        top = np.argsort(-counts, kind="stable")[:10]
        rows_sorted = rows[np.argsort(w.pickup[rows], kind="stable")]
        share = hits[c] / total[c]
        who = "sender" if level == "sender" else "courier"
        out.append(
            Finding(
                detector="empty-parcel",
                behaviour="empty_parcel",
                subject_kind=kind,
                subject_ids=[str(labels[c])],
                score=round(score, 3),
                summary=(
                    f"{who} {labels[c]}: {hits[c]} of {total[c]} waybills look empty ({share:.0%}; "
                    f"{exp_c:.1f} expected{' from its senders' if why == 'given its senders' else ''}; "
                    f"P = {pval:.2g})"
                ),
                evidence={
                    "level": level,
                    "waybills_total": int(total[c]),
                    "waybills_flagged": int(hits[c]),
                    "share": round(float(share), 4),
                    "baseline_share": round(p0, 5),
                    "expected_flagged": round(float(exp_c), 3),
                    "test": why,
                    "p_value": float(pval),
                    "mean_waybill_score": round(float(sig["score"][rows].mean()), 4),
                    ("couriers" if level == "sender" else "senders"): {
                        str(others[j]): int(counts[j]) for j in top
                    },
                    "example_waybills": [str(x) for x in w.waybill[rows_sorted[:20]]],
                    "first_seen": _fmt(w.pickup[rows_sorted[0]]),
                    "last_seen": _fmt(w.pickup[rows_sorted[-1]]),
                },
            )
        )
    out.sort(key=lambda f: -f.score)
    return out


def _expected_given_senders(
    courier_code: np.ndarray, sender: np.ndarray, flagged: np.ndarray, p0: float, prior: float = 10.0
) -> np.ndarray:
    """Per courier: flagged waybills expected from the flag rates of its senders *elsewhere*.

    For courier c and each sender s it carries, the rate of s is taken over s's waybills carried by
    other couriers (shrunk towards p0 with `prior` pseudo-waybills), so a courier who merely serves
    a brushing shop, alongside that shop's colluder, is explained by the shop; a colluder who gets
    the shop's empty parcels and not its real ones is not.
    """
    _, s_code = np.unique(sender.astype(str), return_inverse=True)
    f = flagged.astype(float)
    n_s = np.bincount(s_code)
    k_s = np.bincount(s_code, weights=f)
    base = int(courier_code.max()) + 1
    upair, pinv = np.unique(s_code.astype(np.int64) * base + courier_code, return_inverse=True)
    n_sc = np.bincount(pinv)
    k_sc = np.bincount(pinv, weights=f)
    ps, pc = upair // base, upair % base
    rate = (k_s[ps] - k_sc + prior * p0) / (n_s[ps] - n_sc + prior)
    return np.bincount(pc, weights=n_sc * rate, minlength=base)


def load_waybills(
    path: str | Path, *, columns: Mapping[str, str] | None = None, timezone: str = "Asia/Shanghai"
) -> Waybills:
    """Read waybills strictly (fanchaoxin.detect.io); `columns` maps logical names to the file's.

    waybill, courier, sender and pickup_time must be filled; sign_time may be empty (not yet signed);
    weight_kg, distance_km and transit_scans may be empty (unknown); cities are optional text. Times
    become naive local times in `timezone` (epoch seconds and times with an offset are converted).
    """
    types = {
        "waybill": "VARCHAR",
        "courier": "VARCHAR",
        "sender": "VARCHAR",
        "pickup_time": "TIMESTAMP",
        "sign_time": "TIMESTAMP",
        "weight_kg": "DOUBLE",
        "distance_km": "DOUBLE",
        "transit_scans": "BIGINT",
    }
    nullable = ["sign_time", "weight_kg", "distance_km", "transit_scans", "origin_city", "dest_city"]
    rel = read_table(
        path,
        list(COLUMNS),
        types=types,
        nullable=nullable,
        unique=["waybill"],
        columns=columns,
        timezone=timezone,
    )
    d = rel.project(
        "waybill AS wb, courier AS co, sender AS se, CAST(weight_kg AS DOUBLE) AS w, "
        "CAST(epoch(pickup_time) AS BIGINT) AS pu, "
        f"coalesce(CAST(epoch(sign_time) AS BIGINT), {NO_TIME}) AS si, "
        "coalesce(CAST(origin_city AS VARCHAR), '') AS oc, coalesce(CAST(dest_city AS VARCHAR), '') AS dc, "
        "CAST(distance_km AS DOUBLE) AS dist, CAST(transit_scans AS DOUBLE) AS sc"
    ).fetchnumpy()

    def f64(x: Any) -> np.ndarray:
        return (
            np.ma.filled(np.ma.asarray(x).astype(float), np.nan)
            if np.ma.isMaskedArray(x)
            else np.asarray(x, dtype=float)
        )

    return Waybills(
        waybill=np.asarray(d["wb"], dtype=object),
        courier=np.asarray(d["co"], dtype=object),
        sender=np.asarray(d["se"], dtype=object),
        weight=f64(d["w"]),
        pickup=np.asarray(d["pu"], dtype=np.int64),
        sign=np.asarray(d["si"], dtype=np.int64),
        origin=np.asarray(d["oc"], dtype=object),
        dest=np.asarray(d["dc"], dtype=object),
        distance=f64(d["dist"]),
        scans=f64(d["sc"]),
    )
