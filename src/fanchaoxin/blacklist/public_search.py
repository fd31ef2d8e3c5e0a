"""The public search (公示查询) of the 炒信 blacklist: one box, a name or any identifier.

What is typed is read as every identifier type whose rules it passes (`core.identifiers`: a USCC, a
resident ID, a mobile number …), each looked up exactly by its blind index, and — unless it is a strong
identifier — as a name too. Names are matched fuzzily, the way people type them on 信用中国: part of
the name (刷单 finds 示范测试刷单有限公司), its characters in order (杭州刷单科技 finds
杭州示范刷单网络科技有限公司) or with a slip of one character or two (rapidfuzz).

Only names of the units on the public list are ever matched (entries in force whose basis is on a public
list and whose severity is published: `core.catalogue.shown_publicly`); a natural person's name never is
(their name key is a blind index, and the public may find a person only by an identifier together with
the full name). The shared list of the participating enterprises never enters the search.

Why in Python and not `pg_trgm`: the public list is small (entries in force with a document of legal force
behind them), and the names must be restricted to it anyway; scoring its names with rapidfuzz gives the
same answer on SQLite and PostgreSQL, and needs no database extension (CREATE EXTENSION needs a privilege
managed PostgreSQL services often withhold).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.lifecycle import IN_FORCE
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.core import catalogue
from fanchaoxin.core.catalogue import catalogues, shown_publicly
from fanchaoxin.core.identifiers import STRONG_TYPES, Identifier, IdentifierError, IdentifierType, normalise
from fanchaoxin.subjects.models import Subject
from fanchaoxin.subjects.names import name_key

# The order in which a value that passes several types' rules is named to the reader.
DETECT_ORDER: tuple[IdentifierType, ...] = (
    IdentifierType.uscc,
    IdentifierType.resident_id,
    IdentifierType.phone,
    IdentifierType.email,
    IdentifierType.courier_staff,
    IdentifierType.platform_account,
    IdentifierType.social_account,
    IdentifierType.domain,
    IdentifierType.app,
    IdentifierType.device,
    IdentifierType.waybill_prefix,
)

# Words every company name has: left out when names are compared, so that "公司" alone finds nothing
# and "示范测试刷单公司" still finds 示范测试刷单有限公司.
_LEGAL_WORDS = re.compile(r"(股份有限公司|有限责任公司|有限公司|集团|公司|co\.?,?ltd\.?|ltd\.?|inc\.?)$")
# Something typed as a code (a USCC or an ID number with a slip) rather than a name.
_CODE_LIKE = re.compile(r"^[0-9A-Za-z]{15,20}$")

MIN_NAME_CHARS = 2
FUZZY_CUTOFF = 80.0
PART_CUTOFF = 90.0
LIMIT = 20


@dataclass(frozen=True)
class Query:
    """How the box's text is read: the identifiers it may be, and whether it is searched as a name."""

    text: str
    identifiers: tuple[Identifier, ...]
    as_name: bool
    # A value typed like a code that passes no rule: the rule it broke for the likeliest type.
    code_error: IdentifierError | None = None

    @property
    def kind(self) -> str:
        """What the reader is told the text was searched as: an identifier type, or `name`."""
        if self.code_error is not None and self.code_error.type is not None:
            return self.code_error.type.value
        if self.identifiers and not self.as_name:
            return self.identifiers[0].type.value
        return "name"


def read_query(text: str) -> Query:
    """Read the search box: every identifier type whose rules the text passes, and whether it is a name.

    A strong identifier (USCC, resident ID, mobile, e-mail, accounts: `STRONG_TYPES`) is only that; any
    other text is a name as well (a Latin company name passes the waybill prefix's rule)."""
    found: list[Identifier] = []
    for itype in DETECT_ORDER:
        try:
            found.append(Identifier(itype, normalise(itype, text)))
        except IdentifierError:
            continue
    strong = [i for i in found if i.type in STRONG_TYPES]
    if strong:
        return Query(text, tuple(strong), as_name=False)
    code_error = None
    compact = re.sub(r"[\s\-]", "", text)
    if _CODE_LIKE.fullmatch(compact) and sum(c.isdigit() for c in compact) >= 8:
        # 18 characters and mostly digits: a USCC or resident ID with a slip. Say which rule it broke.
        likely = IdentifierType.resident_id if compact[:17].isdigit() else IdentifierType.uscc
        try:
            normalise(likely, compact)
        except IdentifierError as exc:
            code_error = exc
    if code_error is not None:
        return Query(text, (), as_name=False, code_error=code_error)
    return Query(text, tuple(found), as_name=True)


def _core(key: str) -> str:
    """A name key without the legal form: what distinguishes one company from another."""
    return _LEGAL_WORDS.sub("", key)


def name_words(text: str) -> str:
    """The part of a typed name that is compared (its key without the legal form)."""
    return _core(name_key(text))


def _in_order(needle: str, hay: str) -> bool:
    """Whether every character of `needle` appears in `hay` in order, within a short span (an
    abbreviation such as 杭州刷单科技 of 杭州示范刷单网络科技有限公司)."""
    pos, start = 0, -1
    for ch in needle:
        found = hay.find(ch, pos)
        if found < 0:
            return False
        if start < 0:
            start = found
        pos = found + 1
    return pos - start <= 3 * len(needle)


def score(query_words: str, key: str) -> float | None:
    """How well a name key matches the typed name (100 best); None below the cut-off."""
    core = _core(key)
    if not query_words or not core:
        return None
    if query_words in core:
        # Part of the name: the closer to the whole name, the higher.
        return 100.0 + len(query_words) / len(core)
    if len(query_words) >= 3 and _in_order(query_words, core):
        return 90.0 + len(query_words) / len(core)
    # A slip in the whole name (ratio), or in a part of it: a part must match more closely, or any
    # two names sharing a city's name would match (北京某某网络 is not 北京某某电子商务).
    whole = fuzz.ratio(query_words, core)
    if whole >= FUZZY_CUTOFF:
        return float(whole)
    part = fuzz.partial_ratio(query_words, core)
    return float(part) if part >= PART_CUTOFF else None


def _narrowed() -> tuple[Any, ...]:
    """In force, on a public basis, of a published severity: what SQL can narrow to (the shared list may be
    far larger than the public one); every row is still tested with `shown_publicly`, the one rule."""
    return (
        Entry.status.in_([s.value for s in IN_FORCE]),
        Entry.basis.in_(sorted(catalogue.public_bases())),
        Entry.severity.in_(sorted(catalogue.public_severities())),
    )


def public_unit_names(session: Session) -> list[tuple[uuid.UUID, str]]:
    """(subject id, name key) of every unit with an entry on the public list in force — never a natural
    person's, never a subject listed on the shared list only (`shown_publicly`, the one test)."""
    personal = [k for k, spec in catalogues().subject_kinds.items() if spec.personal]
    rows = session.execute(
        select(Subject.id, Subject.name_key, Entry.basis, Entry.severity)
        .join(Entry, Entry.subject_id == Subject.id)
        .where(
            *_narrowed(),
            Subject.kind.not_in(personal),
            Subject.merged_into_id.is_(None),
        )
    ).all()
    seen: dict[uuid.UUID, str] = {}
    for sid, key, basis, severity in rows:
        if sid not in seen and shown_publicly(basis, severity):
            seen[sid] = key
    return list(seen.items())


def search_names(session: Session, text: str, *, limit: int = LIMIT) -> tuple[list[Subject], bool]:
    """Units of the public list whose names match `text`, best first, and whether more than `limit` did."""
    words = name_words(text)
    if len(words) < MIN_NAME_CHARS:
        return [], False
    scored = []
    for sid, key in public_unit_names(session):
        s = score(words, key)
        if s is not None:
            scored.append((s, key, sid))
    scored.sort(key=lambda r: (-r[0], r[1]))
    subjects = [session.get(Subject, sid) for _s, _k, sid in scored[:limit]]
    return [s for s in subjects if s is not None], len(scored) > limit


def is_public(entry: Entry) -> bool:
    """Whether an entry is shown on the public pages now: in force, on the public list, of a published
    severity."""
    return entry.status in {s.value for s in IN_FORCE} and shown_publicly(entry.basis, entry.severity)


def public_entries_of(session: Session, subject_id: uuid.UUID) -> list[Entry]:
    """A subject's entries on the public list in force, as published (oldest first)."""
    rows = session.scalars(
        select(Entry)
        .where(Entry.subject_id == subject_id, *_narrowed())
        .order_by(Entry.published_at, Entry.id)
    )
    return [e for e in rows if shown_publicly(e.basis, e.severity)]
