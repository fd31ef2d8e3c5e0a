"""Changing the platform's crypto profile (密码配置迁移, #18): ``fcx crypto migrate --to gm``.

The profile is chosen when the platform is created; changing it touches every slice, so it is one use
case here rather than a flag: in ONE database transaction, with the platform stopped, every sealed
personal value is re-encrypted and every blind index recomputed under a fresh data key ring of the new
profile (core.rekey), evidence files and case attachments are re-addressed by the new digest
(blacklist.evidence_digest), and the audit chain is switched behind a ``crypto.profile_changed`` event
hashed under the old profile, so its history is kept, not rewritten. After the commit the new ring
replaces the old one (kept as a backup beside it), the feed-signing key is replaced by one of the new
profile (the old public key kept as retired) and a snapshot is signed with it; so is the transparency
log's signing key (its tree keeps the hash it began with); nodes refuse the new manifest until they are
initialised again.

A run that stopped after the database commit is finished by running the command again: the database
steps are done (the record says the new profile) and the key steps do nothing twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fanchaoxin.blacklist.evidence_digest import readdress_evidence
from fanchaoxin.core import crypto_record, rekey, vault
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.crypto import profile
from fanchaoxin.core.db import Database
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.sharing import keys as sharing_keys
from fanchaoxin.sharing import service as sharing_service
from fanchaoxin.sharing import translog

PROFILE_VARIABLE = "FCX_CRYPTO_PROFILE"


@dataclass
class ProfileMigration:
    """What one run of :func:`migrate` did."""

    from_profile: str
    to_profile: str
    database_migrated: bool  # False: the database was already under ``to`` (a run finished the key steps)
    audit_seq: int = 0
    resealed: int = 0
    reindexed: int = 0
    evidence_readdressed: int = 0
    ring_path: Path | None = None
    ring_backup: Path | None = None
    signing_key_id: str = ""
    signing_key_changed: bool = False
    snapshot_seq: int | None = None
    log_key: str = ""  # the transparency log's new verifier key, when it changed
    tables: dict[str, int] = field(default_factory=dict)


def migrate(db: Database, to: str, actor: Actor, settings: Settings | None = None) -> ProfileMigration:
    """Move the platform to the crypto profile ``to``; see the module docstring for the steps."""
    settings = settings or get_settings()
    target = profile(to).name  # UnknownProfile on a typo, before anything is written
    recorded = crypto_record.recorded_profile(db.engine) or "international"
    result = ProfileMigration(recorded, target, database_migrated=recorded != target)
    if result.database_migrated:
        with db.session() as session:
            # Evidence first, through the ORM and the ring in force; the re-encryption that follows, in
            # the same transaction, then seals the re-addressed files under the new ring with the rest.
            # Under the ring on disk whatever FCX_CRYPTO_PROFILE says now (the operator may have set the
            # new one already): the files open with the ring they were sealed under.
            with vault.pinned(vault.read_ring(vault.key_file())):
                readdressed = readdress_evidence(session, target)
            session.flush()
            moved = rekey.migrate_profile(session, target, actor=actor)
        result.audit_seq = moved.audit_seq
        result.resealed = sum(moved.resealed.values())
        result.reindexed = sum(moved.reindexed.values()) + sum(moved.remapped.values())
        result.evidence_readdressed = readdressed
        result.ring_path, result.ring_backup = moved.ring_path, moved.backup_path
        rewritten = {**moved.resealed, **moved.reindexed, **moved.remapped}
        result.tables = {f"{t}.{c}": n for (t, c), n in rewritten.items() if n}
    with _running_under(target):
        # The transparency log keeps its tree's hash (its history is what it commits to); its signing key
        # becomes one of the new profile, the old verifier key kept so its checkpoints stay checkable.
        try:
            log_keys = translog.load_log_keys(settings.sharing_key_dir, create=False)
        except translog.LogError:
            log_keys = None
        if log_keys is not None and translog.profile_problem(log_keys) is not None:
            result.log_key = translog.rotate_log_key(settings.sharing_key_dir)[1]
    if not (sharing_keys.key_dir(settings.sharing_key_dir) / sharing_keys.SIGNING_FILE).exists():
        return result  # no feed yet: the first start makes its keys under the new profile
    with _running_under(target):  # the snapshot opens personal data with the new ring
        rotation = sharing_keys.rotate_for_profile(target, settings.sharing_key_dir)
        result.signing_key_id, result.signing_key_changed = rotation.new_key_id, rotation.changed
        if rotation.changed or result.database_migrated:
            result.snapshot_seq = sharing_service.republish(db, settings, profile=target).seq
    return result


@contextmanager
def _running_under(name: str) -> Iterator[None]:
    """This process as if started with FCX_CRYPTO_PROFILE=``name`` (the steps after the commit)."""
    previous = os.environ.get(PROFILE_VARIABLE)
    os.environ[PROFILE_VARIABLE] = name
    get_settings.cache_clear()
    vault.forget()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PROFILE_VARIABLE, None)
        else:
            os.environ[PROFILE_VARIABLE] = previous
        get_settings.cache_clear()
        vault.forget()
