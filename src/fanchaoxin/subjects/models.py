"""Tables of subjects, their identifiers, liable persons, merges and merge proposals."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, UniqueConstraint, Uuid, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fanchaoxin.core import vault
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import Base, UTCDateTime, new_id, utcnow
from fanchaoxin.core.identifiers import mask, mask_person_name
from fanchaoxin.subjects.names import name_key as fold_name


def _name_key_of(row: Mapping[str, Any]) -> str:
    # As subjects.service.stored_name_key: only a natural person's name key is a blind index.
    kind = catalogues().subject_kinds.get(row["kind"])
    if kind is None or not kind.personal:
        return str(row["name_key"])
    return vault.blind("name", fold_name(row["name"]))


def _identifier_index_of(row: Mapping[str, Any]) -> str:
    return vault.identifier_index(row["type"], row["value"])


# Recomputed by a change of crypto profile (core.rekey.migrate_profile) from the decrypted row.
NAME_KEY_INDEX = vault.BlindIndexOf(("kind", "name", "name_key"), _name_key_of, "name")
IDENTIFIER_INDEX = vault.BlindIndexOf(("type", "value"), _identifier_index_of, "identifier")


class Subject(Base):
    """A company, person, website, app or account that can be listed (失信主体).

    The name is stored encrypted (a natural person's name is personal data; one rule for every kind).
    ``name_key`` is what searches compare: a unit's folded name (public registration data, so that
    similar names can propose merges), and for a natural person only the keyed blind index of it
    (``subjects.service.stored_name_key``): an exact search still finds the person, nothing else does.
    """

    __tablename__ = "subjects"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(vault.Encrypted("subjects.name"))
    name_key: Mapped[str] = mapped_column(String(200), index=True, info={vault.BLIND_INDEX: NAME_KEY_INDEX})
    # Set when a reviewer merged this subject into another; undone by a split.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subjects.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When similar names were last looked for (bulk submissions leave it to `fcx jobs run`).
    proposals_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    identifiers: Mapped[list[SubjectIdentifier]] = relationship(
        back_populates="subject", order_by="SubjectIdentifier.created_at"
    )

    def snapshot(self) -> dict[str, Any]:
        """The subject as the audit log keeps it: masked identifiers with their blind index (which
        says which identifier moved without showing it), a natural person's name masked."""
        personal = catalogues().subject_kinds[self.kind].personal
        return {
            "id": str(self.id),
            "kind": self.kind,
            "name": mask_person_name(self.name) if personal else self.name,
            "merged_into_id": str(self.merged_into_id) if self.merged_into_id else None,
            "identifiers": sorted(
                f"{i.type}:{mask(i.type, i.value)}:{i.value_index}" for i in self.identifiers
            ),
        }


class SubjectIdentifier(Base):
    """A canonical identifier of a subject; each identifier belongs to one subject only.

    ``value`` is stored encrypted; ``value_index`` (``vault.identifier_index``) is what look-ups, the
    unique key and the platform's decision index use.
    """

    __tablename__ = "subject_identifiers"
    __table_args__ = (
        UniqueConstraint("type", "value_index", name="uq_subject_identifiers_type_value_index"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(vault.Encrypted("subject_identifiers.value"))
    value_index: Mapped[str] = mapped_column(String(64), info={vault.BLIND_INDEX: IDENTIFIER_INDEX})
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    subject: Mapped[Subject] = relationship(back_populates="identifiers")


@event.listens_for(SubjectIdentifier, "before_insert")
@event.listens_for(SubjectIdentifier, "before_update")
def _index_identifier(_mapper: Any, _conn: Any, target: SubjectIdentifier) -> None:
    # An identifier made through the ORM gets its blind index from its value (bulk paths set it).
    target.value_index = vault.identifier_index(target.type, target.value)


class LiableRole(StrEnum):
    legal_representative = "legal_representative"  # 法定代表人
    principal = "principal"  # 主要负责人
    directly_responsible = "directly_responsible"  # 直接责任人


class LiableLink(Base):
    """A person punished with a unit, named in one of the unit's entries."""

    __tablename__ = "liable_links"
    __table_args__ = (
        UniqueConstraint("entry_id", "person_id", "role", name="uq_liable_links_entry_person_role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MergeProposal(Base):
    """A possible duplicate found by name similarity or shared identifiers — never merged automatically."""

    __tablename__ = "merge_proposals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subject_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    candidate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open | merged | dismissed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SubjectMerge(Base):
    """A reviewer's merge of one subject into another, with what moved, so that it can be undone."""

    __tablename__ = "subject_merges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subjects.id"), index=True)
    moved_identifier_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    moved_entry_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str] = mapped_column(String(2000))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(200))
