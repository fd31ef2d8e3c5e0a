"""Execution receipts (执行回执, issue #16): a node's signed word that it carried out an instruction, and
which lifts were confirmed within 3 PRC working days of issue.

* :func:`verified_receipt` — the check the feedback route makes before anything is written: the receipt
  must be signed (``sharing.protocol.verify_receipt``) with an enrolled node key (orgs.node_keys) of the
  instruction's own enterprise that is not revoked, and say what the feedback says (instruction, outcome,
  time, count of accounts affected). Otherwise the report is refused and the instruction stays open.
* :func:`lift_receipts` — per enterprise, each lift instruction (解除惩戒指令) as ``confirmed`` (a valid
  receipt, carried out by its due day), ``late`` (a valid receipt, carried out after it) or ``missing``
  (no valid receipt of a lift carried out); a missing one past its due day is late as well.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.errors import Forbidden, ValidationProblem
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.orgs.node_keys import NodeKey
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.sharing import protocol as P

# A lift is to be carried out within this many PRC working days of the instruction's issue.
LIFT_WORKING_DAYS = 3
# Outcomes that confirm a lift: undone, or nothing to undo (no such account with the enterprise).
CONFIRMING_OUTCOMES = frozenset({"executed", "not_applicable"})


def _refused(field_name: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"receipt refused: {message}; the instruction stays open",
        errors=[{"in": "body", "field": field_name, "type": "receipt", "message": message}],
    )


def verified_receipt(
    session: Session,
    instruction: Instruction,
    receipt: P.ExecutionReceipt,
    *,
    outcome: str,
    executed_at: datetime | None,
    accounts_affected: int | None,
) -> tuple[dict[str, Any], str]:
    """The receipt to keep with the report and its key id, or a 422/403 naming ``receipt``.

    Checked in this order: the key is known (422), belongs to the instruction's enterprise (403) and is
    not revoked (403); the signature verifies (422); its fields are the feedback's (422)."""
    key = session.get(NodeKey, receipt.key_id)
    if key is None:
        raise _refused("receipt.key_id", f"node key {receipt.key_id} is not enrolled with the platform")
    if key.owner_org_id != instruction.owner_org_id:
        raise Forbidden(
            f"receipt refused: node key {key.key_id} belongs to another organisation; the instruction stays "
            "open"
        )
    if key.revoked_at is not None:
        raise Forbidden(
            f"receipt refused: node key {key.key_id} was revoked at {key.revoked_at.isoformat()}; the "
            "instruction stays open (enrol a new key: fcx node init --new-node-key)"
        )
    try:
        P.verify_receipt(key.public_bytes, receipt)
    except P.ProtocolError as exc:
        raise _refused("receipt.signature", str(exc)) from None
    differ = []
    if receipt.instruction_id != str(instruction.id):
        differ.append("instruction_id")
    if receipt.outcome != outcome:
        differ.append("outcome")
    if executed_at is None or P.receipt_time(receipt.executed_at) != executed_at:
        differ.append("executed_at")
    if receipt.accounts_affected != accounts_affected:
        differ.append("accounts_affected")
    if differ:
        raise ValidationProblem(
            f"receipt refused: it says otherwise than the feedback about {', '.join(differ)}; the "
            "instruction stays open",
            errors=[
                {
                    "in": "body",
                    "field": f"receipt.{n}",
                    "type": "receipt",
                    "message": "differs from the feedback",
                }
                for n in differ
            ],
        )
    return receipt.model_dump(), key.key_id


# --- lift confirmations -------------------------------------------------------------------------------------


@dataclass
class LiftReceipt:
    """One lift instruction and what its receipt shows."""

    instruction_id: uuid.UUID
    entry_id: uuid.UUID
    measure: str
    issued_at: datetime
    due_on: date
    status: str  # confirmed | late | missing
    late: bool
    outcome: str | None
    executed_at: datetime | None  # as the receipt signs it
    reported_at: datetime | None
    accounts_affected: int | None
    receipt_key_id: str | None


@dataclass
class OrgLiftReceipts:
    org_id: uuid.UUID
    org_name: str
    items: list[LiftReceipt] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def confirmed(self) -> int:
        return self.count("confirmed")

    @property
    def late(self) -> int:
        return sum(1 for i in self.items if i.late)

    @property
    def missing(self) -> int:
        return self.count("missing")


def lift_due_on(issued_at: datetime) -> date:
    """The last day to carry out a lift: 3 PRC working days after the China day it was issued."""
    return add_working_days(china_today(issued_at), LIFT_WORKING_DAYS)


def judge(instruction: Instruction, today: date) -> LiftReceipt:
    due = lift_due_on(instruction.issued_at)
    receipt = instruction.receipt or None
    executed_at = P.receipt_time(receipt["executed_at"]) if receipt else None
    if receipt and instruction.outcome in CONFIRMING_OUTCOMES and executed_at is not None:
        late = china_today(executed_at) > due
        status = "late" if late else "confirmed"
    else:
        status, late = "missing", today > due
    return LiftReceipt(
        instruction_id=instruction.id,
        entry_id=instruction.entry_id,
        measure=instruction.measure,
        issued_at=instruction.issued_at,
        due_on=due,
        status=status,
        late=late,
        outcome=instruction.outcome,
        executed_at=executed_at,
        reported_at=instruction.reported_at,
        accounts_affected=int(receipt["accounts_affected"]) if receipt else None,
        receipt_key_id=instruction.receipt_key_id,
    )


def lift_receipts(
    session: Session, *, org_id: uuid.UUID | None = None, today: date | None = None
) -> list[OrgLiftReceipts]:
    """Per enterprise (by name), its lift instructions, oldest first, as confirmed, late or missing.
    Platform staff only: the caller's route admits no one else."""
    today = today or china_today()
    stmt = (
        select(Instruction, Organisation.name)
        .join(Organisation, Organisation.id == Instruction.owner_org_id)
        .where(Instruction.kind == "lift", Instruction.department_measure.is_(False))
        .order_by(Instruction.seq)
    )
    if org_id is not None:
        stmt = stmt.where(Instruction.owner_org_id == org_id)
    out: dict[uuid.UUID, OrgLiftReceipts] = {}
    for instruction, name in session.execute(stmt):
        org = out.setdefault(instruction.owner_org_id, OrgLiftReceipts(instruction.owner_org_id, name))
        org.items.append(judge(instruction, today))
    return sorted(out.values(), key=lambda o: o.org_name)
