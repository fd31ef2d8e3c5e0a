"""decide(identifiers, scene): what must an enterprise do with this subject here? (one pure function)

The same function answers the platform's `POST /v1/decisions`, the enterprise node's HTTP API and the
in-process SDK. It reads an index of the entries in force — keyed by canonical identifier
(`type:value`, or on a node the identifier's VOPRF tag) — prepared once per entry, so that a decision is
a few look-ups (`EntryLookup.entries_for`: a dictionary, or on the platform the packed index that a
host's workers share, sanctions.packed).

Reasons tell the severity and the entry ids; a unit's also its behaviours, a natural person's not (least
disclosure, see `_reason`).

Rules: the strictest effect wins across entries (deny > restrict > allow); a disputed entry may restrict,
never deny; an entry past its maximum period counts for nothing even before the scheduler expires it;
parameters of the same measure from several entries merge the stricter way. Each measure names the
actions of the entry that this scene concerns (measures.yaml: measure 2 at `order_review` cancels the
orders of abused rights, and only for an entry that brushed orders or subsidies; measure 4 at
`shop_event`, measure 8 at `subsidy_claim`); the actions of several entries add up.

An enterprise whose rulebook excludes a measure (orgs.rulebook; `excluded`, code → clause) is not told to
apply it: the measure is listed under `not_applicable_by_rules` with the clause instead, and the verdict
is the strictest effect of the measures left. The node passes nothing yet (every measure applies there).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, Final, Literal, Protocol

from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.sanctions.policy import MeasureCatalogue, measure_catalogue, merge_params

Effect = Literal["allow", "restrict", "deny"]
ALLOW: Final = "allow"
RESTRICT: Final = "restrict"
DENY: Final = "deny"
_RANK: Final[dict[Effect, int]] = {ALLOW: 0, RESTRICT: 1, DENY: 2}

# One measure of an entry in one scene: its code, parameters, the entry's actions of it that the scene
# concerns, and its effect there (before an objection softens it).
SceneMeasure = tuple[str, dict[str, Any], tuple[str, ...], Effect]


@dataclass(frozen=True, slots=True)
class InScene:
    """An entry's measures in one scene, prepared once: the strictest effect, each measure (code,
    parameters, actions here, effect) in catalogue order, and the measures with their actions as a
    reason says them."""

    effect: Effect
    measures: tuple[SceneMeasure, ...]
    zh: str
    en: str


# Per scene: the entry's measures there (scenes where none has an effect are absent).
ByScene = dict[str, InScene]


@dataclass(frozen=True, slots=True)
class IndexedEntry:
    """An entry in force as decide() needs it: per scene, its effect and measures, computed once."""

    entry_id: str
    subject_kind: str
    severity: str
    behaviours: tuple[str, ...]
    disputed: bool
    max_end_on: date | None
    liable_role: str | None
    by_scene: ByScene


def index_entry(
    *,
    entry_id: str,
    subject_kind: str,
    severity: str,
    behaviours: Iterable[str],
    disputed: bool,
    max_end_on: date | None,
    liable_role: str | None,
    measures: Iterable[dict[str, Any]],
    catalogue: MeasureCatalogue | None = None,
) -> IndexedEntry:
    cat = catalogue or measure_catalogue()
    by_scene: dict[str, tuple[Effect, list[SceneMeasure]]] = {}
    for m in measures:
        definition = cat.measures.get(m["code"])
        if definition is None:
            continue
        # The actions the entry got (Entry.measures); None for an entry graded before measures named them.
        actions = m.get("actions")
        params = dict(m.get("params") or {})
        for scene in definition.scenes:
            found = definition.in_scene(scene, actions)
            if found is None:
                continue  # e.g. measure 2 at order review for an entry that brushed no orders
            own: Effect = found[0]
            effect = own
            if disputed and effect == DENY:
                effect = RESTRICT  # an open objection may restrict, never deny
            current, listed = by_scene.get(scene, (ALLOW, []))
            if _RANK[effect] > _RANK[current]:
                current = effect
            listed.append((m["code"], params, found[1], own))
            by_scene[scene] = (current, listed)
    frozen: ByScene = {
        scene: _in_scene(effect, tuple(listed), cat) for scene, (effect, listed) in by_scene.items()
    }
    return IndexedEntry(
        entry_id, subject_kind, severity, tuple(behaviours), disputed, max_end_on, liable_role, frozen
    )


# The reason texts of the measures and actions of a scene, made once for each distinct list (most
# entries share theirs), so that the index keeps one copy of each.
_TEXTS: dict[tuple[tuple[str, tuple[str, ...]], ...], tuple[str, str]] = {}


def _in_scene(effect: Effect, listed: tuple[SceneMeasure, ...], cat: MeasureCatalogue) -> InScene:
    key = tuple((code, actions) for code, _, actions, _ in listed)
    texts = _TEXTS.get(key)
    if texts is None:
        zh, en = [], []
        for code, actions in key:
            m = cat.measures[code]
            names = [m.action_by_code[a] for a in actions]
            zh.append(m.zh + (f"（{'、'.join(a.zh for a in names)}）" if names else ""))
            en.append(m.en + (f" ({'; '.join(a.en for a in names)})" if names else ""))
        texts = _TEXTS[key] = ("；本场景措施：" + "、".join(zh), "; measures here: " + "; ".join(en))
    return InScene(effect, listed, *texts)


@dataclass
class DecisionIndex:
    """Entries in force by identifier key. Replaced entry by entry as the change feed moves."""

    by_key: dict[str, list[IndexedEntry]] = field(default_factory=dict)
    keys_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seq: int = 0  # the last change-feed sequence number applied

    def put(self, keys: Iterable[str], entry: IndexedEntry) -> None:
        self.remove(entry.entry_id)
        ks = tuple(dict.fromkeys(keys))
        self.keys_of[entry.entry_id] = ks
        for k in ks:
            self.by_key.setdefault(k, []).append(entry)

    def remove(self, entry_id: str) -> None:
        for k in self.keys_of.pop(entry_id, ()):
            rest = [e for e in self.by_key.get(k, ()) if e.entry_id != entry_id]
            if rest:
                self.by_key[k] = rest
            else:
                self.by_key.pop(k, None)

    def __len__(self) -> int:
        return len(self.keys_of)

    def entries_for(self, key: str) -> Sequence[IndexedEntry]:
        return self.by_key.get(key) or ()


class EntryLookup(Protocol):
    """What decide() reads: the entries in force under one identifier key. A DecisionIndex (the node,
    small setups) and the platform's packed index (sanctions.packed, shared by a host's workers) both
    answer it."""

    seq: int

    def entries_for(self, key: str) -> Sequence[IndexedEntry]: ...


@dataclass(frozen=True)
class Verdict:
    verdict: Effect
    measures: list[dict[str, Any]]
    labels: list[dict[str, str]]
    reasons: list[dict[str, str]]
    entry_ids: list[str]
    disputed: bool
    # Measures the asking enterprise's rules exclude (code, number, names, clause): not applied here.
    not_applicable_by_rules: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "verdict": self.verdict,
            "measures": self.measures,
            "labels": self.labels,
            "reasons": self.reasons,
            "entry_ids": self.entry_ids,
            "disputed": self.disputed,
        }
        if (
            self.not_applicable_by_rules
        ):  # only where a rulebook excludes something: answers stay as they were
            out["not_applicable_by_rules"] = self.not_applicable_by_rules
        return out


_ALLOW = Verdict(ALLOW, [], [], [], [], False)
_NOTHING: Mapping[str, str] = {}


def decide(
    index: EntryLookup,
    keys: Iterable[str],
    scene: str,
    *,
    today: date,
    excluded: Mapping[str, str] = _NOTHING,
) -> Verdict:
    """The verdict for one subject (all its identifier keys) in one scene. Pure: no I/O, no clock.

    `excluded`: the measures the asking enterprise's rules exclude (code → clause): listed under
    `not_applicable_by_rules` instead of applied."""
    entries_for = index.entries_for
    hits: dict[str, IndexedEntry] = {}
    for k in keys:
        for e in entries_for(k):
            hits[e.entry_id] = e
    if not hits:
        return _ALLOW
    cat = measure_catalogue()
    verdict: Effect = ALLOW
    # measure code → [parameters merged, actions named, effect]; one look-up per measure of each hit
    merged: dict[str, list[Any]] = {}
    reasons: list[dict[str, str]] = []
    entry_ids: list[str] = []
    disputed = False
    labelled = False
    for e in hits.values():
        if e.max_end_on is not None and today > e.max_end_on:
            continue  # past its maximum period: it ends by itself
        entry_ids.append(e.entry_id)
        disputed = disputed or e.disputed
        in_scene = e.by_scene.get(scene)
        if in_scene is None:
            continue
        effect = in_scene.effect
        if _RANK[effect] > _RANK[verdict]:
            verdict = effect
        for code, params, actions, own in in_scene.measures:
            seen = merged.get(code)
            if seen is None:
                merged[code] = [params, actions, own]
            else:
                seen[0] = merge_params(code, seen[0], params)
                if actions != seen[1]:
                    seen[1] = seen[1] + tuple(a for a in actions if a not in seen[1])
                if _RANK[own] > _RANK[seen[2]]:
                    seen[2] = own
            labelled = labelled or code == "label_search_risk"
        reasons.append(_reason(e, in_scene))
    if not entry_ids:
        return _ALLOW
    measures_out = []
    not_by_rules: list[dict[str, Any]] = []
    kept: Effect = ALLOW
    for code in sorted(merged, key=lambda c: cat.measures[c].number):
        m = cat.measures[code]
        params, actions, effect = merged[code]
        if disputed and effect == DENY:
            effect = RESTRICT
        if excluded and code in excluded:
            not_by_rules.append(
                {"code": code, "number": m.number, "zh": m.zh, "en": m.en, "clause": excluded[code]}
            )
            labelled = labelled and code != "label_search_risk"
            continue
        if _RANK[effect] > _RANK[kept]:
            kept = effect
        if len(actions) > 1:
            actions = tuple(sorted(actions, key=m.action_rank.__getitem__))
        by_code = m.action_by_code
        measures_out.append(
            {
                "code": code,
                "number": m.number,
                "zh": m.zh,
                "en": m.en,
                "effect": effect,
                "params": dict(params),  # a copy: the index's own stays as it is
                "actions": [{"code": a, "zh": by_code[a].zh, "en": by_code[a].en} for a in actions],
            }
        )
    if not_by_rules:
        verdict = kept  # the strictest effect of what its rules let it apply
    labels = []
    if labelled:
        p = merged["label_search_risk"][0]
        labels.append({"zh": str(p.get("label_zh", "")), "en": str(p.get("label_en", ""))})
    elif verdict != ALLOW:
        labels.append({"zh": "炒信失信主体", "en": "Listed for credit hyping"})
    return Verdict(verdict, measures_out, labels, reasons, sorted(entry_ids), disputed, not_by_rules)


def _reason(e: IndexedEntry, here: InScene) -> dict[str, str]:
    """Why an entry counts here (least disclosure, 最小必要): its severity, its measures in this scene
    with their actions, and its id; for a unit also its behaviours. A natural person's behaviours and
    liable role are not told to every enterprise that asks: the need-to-know route
    (`GET /v1/sharing/entries/{id}`, with a purpose, audited) gives the details to one that must act on
    them."""
    severity_zh = _SEVERITY_ZH.get(e.severity, e.severity)
    pending_zh, pending_en = ("，异议处理中", ", objection pending") if e.disputed else ("", "")
    measures_zh, measures_en = here.zh, here.en
    if e.subject_kind not in _unit_kinds():
        return {
            "entry_id": e.entry_id,
            "zh": f"存在{severity_zh}炒信失信记录{pending_zh}{measures_zh}",
            "en": f"Listed for credit hyping, severity {e.severity}{pending_en}{measures_en}",
        }
    behaviours = ", ".join(cat_behaviour(b) for b in e.behaviours)
    liable_zh = f"，作为{_LIABLE_ZH.get(e.liable_role, e.liable_role)}被关联惩戒" if e.liable_role else ""
    liable_en = f", as {e.liable_role} of a listed unit" if e.liable_role else ""
    return {
        "entry_id": e.entry_id,
        "zh": f"存在{severity_zh}炒信失信记录（{behaviours}）{pending_zh}{liable_zh}{measures_zh}",
        "en": f"Listed for credit hyping, severity {e.severity}{pending_en}{liable_en}{measures_en}",
    }


@cache
def _unit_kinds() -> frozenset[str]:
    # The kinds that are not natural persons (catalogues/subject_kinds.yaml `personal: false`); an
    # unknown kind is taken as a person, the side that discloses less.
    return frozenset(code for code, k in catalogues().subject_kinds.items() if not k.personal)


_SEVERITY_ZH = {"minor": "轻微", "general": "一般", "serious": "严重"}
_LIABLE_ZH = {
    "legal_representative": "法定代表人",
    "principal": "主要负责人",
    "directly_responsible": "直接责任人",
}


def cat_behaviour(code: str) -> str:
    b = catalogues().behaviours.get(code)
    return b.zh if b else code
