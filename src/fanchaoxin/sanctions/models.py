"""Tables of the punishment engine: loaded policies and instructions to enterprises and departments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
)
from sqlalchemy.orm import Mapped, mapped_column

from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.sanctions import policy
from fanchaoxin.sanctions.policy import Action, FeedbackField, measure_catalogue

_BigInt = BigInteger().with_variant(Integer, "sqlite")


class PolicyVersion(Base):
    """A grading policy as loaded by the operator; the active one grades new publications."""

    __tablename__ = "policy_versions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    version: Mapped[str] = mapped_column(String(50), unique=True)
    source: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    loaded_by: Mapped[str] = mapped_column(String(200))
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The consultation decision (会商决定) that led to this version, if any (consultation slice).
    consultation_decision_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Instruction(Base):
    """What one organisation must do about one entry: apply a measure, or lift it (联合惩戒指令).

    Addressed to one enterprise (the 13 measures) or one department (memoranda measures); the
    addressee acknowledges it and reports execution. `seq` orders them for cursor paging.
    """

    __tablename__ = "instructions"
    __table_args__ = (
        UniqueConstraint(
            "entry_id", "owner_org_id", "measure", "kind", name="uq_instructions_entry_org_measure_kind"
        ),
    )

    seq: Mapped[int] = mapped_column(_BigInt, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=new_id)
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("entries.id"), index=True)
    # Tenancy: the addressee owns its instructions.
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # apply | lift
    measure: Mapped[str] = mapped_column(String(64))
    department_measure: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The measure's actions this addressee carries out for this entry, in the plan's words by code
    # (measures.yaml); a lift names the same actions, to undo. Null: a department measure, or an
    # instruction issued before measures named actions.
    actions: Mapped[list[str] | None] = mapped_column(JSON)
    # Who among the implementers this instruction addresses (measure 11: employer | peers).
    audience: Mapped[str | None] = mapped_column(String(16))
    lifts_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ack_due_on: Mapped[date] = mapped_column(Date, index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # executed | not_applicable | failed
    outcome_reason: Mapped[str | None] = mapped_column(String(2000))
    executed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the addressee confirmed with its report (执行反馈: e.g. marked, integrity_file_ref), as
    # the catalogue's feedback fields of the instruction's actions ask.
    confirmations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The node's signed execution receipt (执行回执, #16) as verified with the report (sanctions.receipts),
    # and the node key it was signed with; null for a report without one.
    receipt: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    receipt_key_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}

    def named_actions(self) -> list[Action]:
        """The actions this instruction names, as the catalogue words them (measures.yaml)."""
        measure = measure_catalogue().measures.get(self.measure)
        if measure is None or not self.actions:
            return []
        return [measure.action_by_code[a] for a in self.actions if a in measure.action_by_code]

    def audience_names(self) -> policy.Text | None:
        """Who among the implementers this instruction addresses (measure 11), in Chinese and English."""
        measure = measure_catalogue().measures.get(self.measure)
        if measure is None:
            return None
        return next((names for code, names in measure.audiences.items() if code == self.audience), None)

    def feedback_fields(self) -> list[FeedbackField]:
        """What the addressee confirms when it reports this instruction executed: the catalogue's
        feedback fields of the actions it names (measure 6: marked, integrity_file_ref). None for a lift."""
        measure = measure_catalogue().measures.get(self.measure)
        if self.kind != "apply" or measure is None or not self.actions:
            return []
        return measure.feedback_for(self.actions)

    def overdue(self, today: date) -> bool:
        """Unacknowledged after its due date (3 PRC working days by default)."""
        return self.acknowledged_at is None and today > self.ack_due_on

    @classmethod
    def overdue_where(cls, today: date) -> ColumnElement[bool]:
        """`overdue` as a query condition: the same rule for the list's filter and the queue's count."""
        return and_(cls.acknowledged_at.is_(None), cls.ack_due_on < today)

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "entry_id": str(self.entry_id),
            "owner_org_id": str(self.owner_org_id),
            "kind": self.kind,
            "measure": self.measure,
            "actions": self.actions,
            "audience": self.audience,
            "status": self.status,
            "outcome": self.outcome,
            "confirmations": self.confirmations,
            "receipt_key_id": self.receipt_key_id,  # which node key signed the receipt, if one did
        }
