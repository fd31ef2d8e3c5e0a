"""An addressee's instructions in bulk: its worklist by state (待确认 / 待执行 / 已逾期 / 已完成), and
acknowledging or reporting many at once (批量确认、批量反馈), all or nothing.

Each instruction goes through the single-instruction rules of `sanctions.service` (`acknowledge`,
`report`); this module only loads the instructions together and collects what each one refuses, so that
a refusal names its item and nothing of the batch is kept. The worklist says which instructions are
actionable: an apply instruction whose measure a lift instruction has since lifted is superseded (已由解除
指令取代) — the entry was revoked, expired or repaired, so only the lift is left to act on, and the two are
never both pending.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, not_, or_, select
from sqlalchemy.orm import Session, aliased

from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import Conflict, NotFound, Problem, ValidationProblem
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.tenancy import scoped
from fanchaoxin.sanctions import service
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sharing.protocol import ExecutionReceipt

MAX_ITEMS = 1000
TABS = ("to_ack", "to_execute", "overdue", "done")
# final: reported executed or not applicable, or issued as not applicable by the addressee's rules
FINAL = ("executed", "not_applicable", "excluded_by_rule")
_IN_CHUNK = 500  # ids per IN (...) list


class BulkRefused(ValidationProblem):
    """Some items of a bulk request cannot be done: nothing is done, every refused item is named."""

    slug = "bulk-refused"
    title = "Nothing was done: some instructions cannot be acknowledged or reported"
    title_zh = "未做任何处理：部分指令无法确认或反馈"

    def __init__(self, failures: list[ItemError], total: int) -> None:
        super().__init__(
            f"{len(failures)} of {total} instructions refused; nothing was done",
            code="instructions.bulk_refused",
            params={"refused": len(failures), "total": total},
            errors=[f.as_error() for f in failures],
        )
        self.failures = failures


@dataclass(frozen=True)
class ItemError:
    """What one item of a bulk request was refused for: its place in the list, its id and the problem."""

    index: int
    id: str
    problem: Problem
    path: str  # the list the item is in, as the request names it: ids | items

    def as_error(self) -> dict[str, Any]:
        errors = self.problem.errors or [{"message": self.problem.detail}]
        first = errors[0]
        field_name = f"{self.path}[{self.index}]"
        if first.get("field") and self.path == "items":
            field_name += "." + str(first["field"]).removeprefix("body.")
        return {
            "in": "body",
            "field": field_name,
            "item": self.index,
            "id": self.id,
            "status": self.problem.status,
            "type": self.problem.slug,
            "message": "; ".join(str(e.get("message") or "") for e in errors) or self.problem.detail,
            # the item's own reason, as its single request would have named it
            "code": first.get("code") or getattr(self.problem, "code", self.problem.slug),
            "params": {**(first.get("params") or getattr(self.problem, "params", {}) or {})},
        }


@dataclass(frozen=True)
class FeedbackItem:
    """One instruction's execution feedback in a bulk report (the fields of the single report)."""

    id: uuid.UUID
    outcome: str
    reason: str = ""
    executed_at: datetime | None = None
    confirmations: dict[str, Any] | None = None
    receipt: ExecutionReceipt | None = None
    accounts_affected: int | None = None


def own_instructions(
    session: Session, principal: Principal, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Instruction]:
    """The instructions the principal may see among these ids, a few queries for the lot."""
    found: dict[uuid.UUID, Instruction] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _IN_CHUNK):
        chunk = unique[start : start + _IN_CHUNK]
        stmt = scoped(select(Instruction), Instruction, principal).where(Instruction.id.in_(chunk))
        found.update({i.id: i for i in session.scalars(stmt)})
    return found


def _check_size(n: int, path: str) -> None:
    if n == 0:
        raise ValidationProblem(
            "Nothing selected",
            errors=[{"in": "body", "field": path, "type": "missing", "message": "select at least one"}],
        )
    if n > MAX_ITEMS:
        raise ValidationProblem(
            f"At most {MAX_ITEMS} instructions at once",
            errors=[{"in": "body", "field": path, "type": "too_long", "message": f"at most {MAX_ITEMS}"}],
        )


def _run(
    items: list[tuple[uuid.UUID, Any]], path: str, found: dict[uuid.UUID, Instruction], do: Any
) -> list[Instruction]:
    """Apply `do` to each item in order, collecting every refusal; raise them all together."""
    failures: list[ItemError] = []
    done: list[Instruction] = []
    for index, (instruction_id, item) in enumerate(items):
        ins = found.get(instruction_id)
        if ins is None:
            failures.append(
                ItemError(
                    index, str(instruction_id), NotFound(f"No instruction with id {instruction_id}"), path
                )
            )
            continue
        try:
            done.append(do(ins, item))
        except Conflict as exc:
            failures.append(ItemError(index, str(instruction_id), exc, path))
            if exc.__cause__ is not None:
                break  # a lost race leaves the session's transaction unusable: the rest is not tried
        except Problem as exc:
            failures.append(ItemError(index, str(instruction_id), exc, path))
    if failures:
        raise BulkRefused(failures, len(items))
    return done


def acknowledge_many(session: Session, principal: Principal, ids: list[uuid.UUID]) -> list[Instruction]:
    """Acknowledge every instruction (repeat-safe, as one), or none: the caller's transaction is rolled
    back when this raises `BulkRefused`."""
    _check_size(len(ids), "ids")
    found = own_instructions(session, principal, ids)
    unique = list(dict.fromkeys(ids))
    return _run(
        [(i, None) for i in unique], "ids", found, lambda ins, _: service.acknowledge(session, principal, ins)
    )


def report_many(session: Session, principal: Principal, items: list[FeedbackItem]) -> list[Instruction]:
    """Report every instruction's execution, or none (an instruction listed twice is refused)."""
    _check_size(len(items), "items")
    found = own_instructions(session, principal, [i.id for i in items])
    seen: set[uuid.UUID] = set()
    twice: list[ItemError] = []
    for index, item in enumerate(items):
        if item.id in seen:
            problem = ValidationProblem(
                "Listed twice",
                errors=[{"field": "id", "type": "duplicate", "message": "this instruction is listed twice"}],
            )
            twice.append(ItemError(index, str(item.id), problem, "items"))
        seen.add(item.id)
    if twice:
        raise BulkRefused(twice, len(items))

    def one(ins: Instruction, item: FeedbackItem) -> Instruction:
        return service.report(
            session, principal, ins, outcome=item.outcome, reason=item.reason, executed_at=item.executed_at,
            confirmations=item.confirmations, receipt=item.receipt, accounts_affected=item.accounts_affected,
        )  # fmt: skip

    return _run([(i.id, i) for i in items], "items", found, one)


# --- the worklist ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkFilter:
    """What the worklist is narrowed to. `entry_ids`: the entries an entry search found (None: any)."""

    tab: str = "to_ack"
    measure: str | None = None
    scene: str | None = None
    kind: str | None = None
    entry_ids: frozenset[uuid.UUID] | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    due_from: date | None = None
    due_to: date | None = None


@dataclass
class WorkPage:
    """One page of the worklist: entries in order, each with its instructions in this tab."""

    entry_ids: list[uuid.UUID]
    instructions: dict[uuid.UUID, list[Instruction]]
    total_entries: int
    total_instructions: int
    counts: dict[str, int] = field(default_factory=dict)  # instructions per tab, same filters otherwise
    superseded: set[uuid.UUID] = field(default_factory=set)  # apply instructions a lift has replaced


def _superseded_clause(org_id: uuid.UUID) -> ColumnElement[bool]:
    """An apply instruction that a lift instruction of the same addressee names (lifts_id)."""
    lift = aliased(Instruction)
    lifted = select(lift.lifts_id).where(
        lift.kind == "lift", lift.owner_org_id == org_id, lift.lifts_id.is_not(None)
    )
    return and_(Instruction.kind == "apply", Instruction.id.in_(lifted))


def tab_clause(tab: str, org_id: uuid.UUID, today: date) -> ColumnElement[bool]:
    """The instructions of one tab. 已完成: reported executed or not applicable, or superseded by a lift;
    已逾期: not acknowledged by its due date; 待确认: not acknowledged, not yet due; 待执行: acknowledged,
    not (finally) reported — a failed report stays open until it is reported again."""
    superseded = _superseded_clause(org_id)
    # coalesce: an unreported instruction's NULL outcome must read as not final, not as unknown
    final = or_(func.coalesce(Instruction.outcome, "").in_(FINAL), superseded)
    if tab == "done":
        return final
    open_ = not_(final)
    if tab == "overdue":
        return and_(open_, Instruction.acknowledged_at.is_(None), Instruction.ack_due_on < today)
    if tab == "to_ack":
        return and_(open_, Instruction.acknowledged_at.is_(None), Instruction.ack_due_on >= today)
    if tab == "to_execute":
        return and_(open_, Instruction.acknowledged_at.is_not(None))
    raise ValueError(f"unknown tab {tab}")


def measures_in_scene(scene: str) -> list[str]:
    """The measures (enterprise measures) that have an effect in a decide() scene."""
    cat = measure_catalogue()
    return [code for code, m in cat.measures.items() if scene in m.scenes]


def _day_start(day: date) -> datetime:
    """Midnight of a day as the platform's users count days (China), as an aware time."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(get_settings().timezone_display))


def _filtered(org_id: uuid.UUID, f: WorkFilter) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Instruction.owner_org_id == org_id]
    if f.measure:
        where.append(Instruction.measure == f.measure)
    if f.scene:
        where.append(Instruction.measure.in_(measures_in_scene(f.scene)))
    if f.kind:
        where.append(Instruction.kind == f.kind)
    if f.entry_ids is not None:
        where.append(Instruction.entry_id.in_(list(f.entry_ids)))
    if f.issued_from:
        where.append(Instruction.issued_at >= _day_start(f.issued_from))
    if f.issued_to:
        where.append(Instruction.issued_at < _day_start(f.issued_to + timedelta(days=1)))
    if f.due_from:
        where.append(Instruction.ack_due_on >= f.due_from)
    if f.due_to:
        where.append(Instruction.ack_due_on <= f.due_to)
    return where


def worklist(
    session: Session,
    principal: Principal,
    f: WorkFilter,
    *,
    offset: int = 0,
    limit: int = 50,
    today: date | None = None,
) -> WorkPage:
    """One page of the addressee's instructions in a tab, one row per entry (newest issue first), with
    the count of every tab under the same filters."""
    assert principal.org_id is not None
    org_id = principal.org_id
    today = today or china_today()
    base = _filtered(org_id, f)
    counts = {
        tab: session.scalar(
            select(func.count()).select_from(Instruction).where(*base, tab_clause(tab, org_id, today))
        )
        or 0
        for tab in TABS
    }
    where = [*base, tab_clause(f.tab, org_id, today)]
    total_entries = session.scalar(select(func.count(func.distinct(Instruction.entry_id))).where(*where)) or 0
    newest = func.max(Instruction.seq)
    page_ids = list(
        session.scalars(
            select(Instruction.entry_id)
            .where(*where)
            .group_by(Instruction.entry_id)
            .order_by(newest.desc())
            .offset(offset)
            .limit(limit)
        )
    )
    rows: dict[uuid.UUID, list[Instruction]] = {e: [] for e in page_ids}
    superseded: set[uuid.UUID] = set()
    if page_ids:
        stmt = (
            scoped(select(Instruction), Instruction, principal)
            .where(*where, Instruction.entry_id.in_(page_ids))
            .order_by(Instruction.seq)
        )
        for ins in session.scalars(stmt):
            rows[ins.entry_id].append(ins)
        applies = [i.id for group in rows.values() for i in group if i.kind == "apply"]
        if applies:
            superseded = set(
                session.scalars(
                    select(Instruction.lifts_id).where(
                        Instruction.kind == "lift",
                        Instruction.owner_org_id == org_id,
                        Instruction.lifts_id.in_(applies),
                    )
                )
            )
    return WorkPage(page_ids, rows, total_entries, counts[f.tab], counts, superseded)
