"""The content address of evidence files and case attachments (证据内容寻址) under the crypto profile (#18).

A file is stored once, in ``evidence_blobs``, under the hex digest of its plain bytes in the platform's
profile (``core.crypto.active()``); entries' evidence and cases' attachments point at that address, and
it is what URLs and ETags name. The address is also the file's integrity check: every read recomputes
it, so a stored file that was changed (or a platform whose profile changed without its files being
re-addressed) answers an error rather than bytes that are not the ones the address promises.

Changing profile re-addresses every file (:func:`readdress_evidence`, called by the profile migration
command): the bytes stay, their address and every reference to it change in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from fanchaoxin.blacklist.models import EvidenceBlob
from fanchaoxin.core import crypto

# Every column that points at ``evidence_blobs.digest``. Case attachments belong to the appeals slice,
# above this one, so their table is named here rather than imported (a test checks this list against
# the foreign keys of the whole schema).
REFERENCES: tuple[tuple[str, str], ...] = (("evidence", "digest"), ("case_attachments", "digest"))


class EvidenceIntegrityError(RuntimeError):
    """A stored file's bytes do not hash to its address (存储内容与其摘要不符): tampered or damaged,
    or stored under another profile and not re-addressed. A fault for the operator, never the caller's."""


def content_address(data: bytes) -> str:
    """The address a file is stored under: its hex digest in the platform's profile."""
    return crypto.active().hexdigest(data)


def checked(blob: EvidenceBlob) -> EvidenceBlob:
    """The blob, once its bytes are found to hash to its address under the platform's profile."""
    profile = crypto.active()
    if profile.hexdigest(blob.data) != blob.digest:
        raise EvidenceIntegrityError(
            f"evidence_blobs row {blob.digest}: its bytes do not have this {profile.hash_algorithm} "
            f"digest (tampered or damaged, or not re-addressed after a change of crypto profile)"
        )
    return blob


def readdress_evidence(session: Session, to: str) -> int:
    """Re-address every stored file under the profile ``to``: recompute its digest, move the blob to the
    new primary key and repoint every evidence row and case attachment, in ``session``'s transaction
    (the caller commits). Returns the number of files whose address changed; one already under ``to``
    is left alone, so a run that was interrupted and rolled back can simply be run again.

    A file whose bytes hash to its address under no profile is refused (:class:`EvidenceIntegrityError`)
    before anything of it moves: giving damaged content a fresh, valid address would hide the damage.
    """
    target = crypto.profile(to)
    others = [crypto.profile(name) for name in crypto.CRYPTO_PROFILES if name != target.name]
    referencing = [sa.table(table, sa.column(column)) for table, column in REFERENCES]
    session.flush()  # what the caller has pending goes first: the objects are expired at the end
    moved = 0
    for old in session.scalars(select(EvidenceBlob.digest).order_by(EvidenceBlob.digest)).all():
        # Column by column, not the entity: one decrypted file at a time, none kept in the identity map.
        row = session.execute(
            select(
                EvidenceBlob.size, EvidenceBlob.media_type, EvidenceBlob.data, EvidenceBlob.created_at
            ).where(EvidenceBlob.digest == old)
        ).one()
        new = target.hexdigest(row.data)
        if new == old:
            continue
        if not any(p.hexdigest(row.data) == old for p in others):
            raise EvidenceIntegrityError(
                f"evidence_blobs row {old}: its bytes hash to this address under no crypto profile "
                "(tampered or damaged); nothing was re-addressed"
            )
        if session.scalar(select(EvidenceBlob.digest).where(EvidenceBlob.digest == new)) is not None:
            raise EvidenceIntegrityError(
                f"evidence_blobs row {old}: its {target.hash_algorithm} address {new} is another file's"
            )
        # New row, references, old row: each statement leaves every foreign key satisfied, so neither
        # database needs deferred constraints (PostgreSQL checks them per statement).
        session.execute(
            insert(EvidenceBlob).values(
                digest=new, size=row.size, media_type=row.media_type, data=row.data, created_at=row.created_at
            )
        )
        for table in referencing:
            session.execute(update(table).where(table.c.digest == old).values(digest=new))
        session.execute(delete(EvidenceBlob).where(EvidenceBlob.digest == old))
        moved += 1
    # Loaded evidence, attachments and blobs still carry their old addresses: reload them on next use.
    session.expire_all()
    return moved
