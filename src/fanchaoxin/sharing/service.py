"""Sharing's scheduled work and the things the API and the CLI share (where files live)."""

from __future__ import annotations

import logging
from pathlib import Path

from fanchaoxin.core.db import Database
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.sharing import feed, keys
from fanchaoxin.sharing.models import Snapshot

log = logging.getLogger(__name__)


def snapshot_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return feed.sharing_dir(keys.key_dir(settings.sharing_key_dir), settings.sharing_dir)


def load_keys(settings: Settings | None = None, *, profile: str | None = None) -> keys.SharingKeys:
    """The sharing keys; the feed-signing key must be of ``profile`` (the platform's unless given)."""
    settings = settings or get_settings()
    return keys.load(settings.sharing_key_dir, profile=profile)


def republish(db: Database, settings: Settings | None = None, *, profile: str | None = None) -> Snapshot:
    """After :func:`keys.rotate_for_profile`: a snapshot built and signed now with the new key (its digest
    under ``profile``, the new one, unless the platform's is meant). The manifest is signed per request,
    so the next one names the new profile, key and snapshot; nodes refuse it until re-initialised."""
    settings = settings or get_settings()
    return feed.build_snapshot(
        db,
        load_keys(settings, profile=profile),
        snapshot_dir(settings),
        workers=settings.sharing_tag_workers,
    )


def run_jobs(db: Database, settings: Settings | None = None) -> dict[str, object]:
    """Rebuild the snapshot when the feed has moved on (or the key set changed); drop retired keys' tags."""
    settings = settings or get_settings()
    k = load_keys(settings)
    rebuilt = feed.maybe_rebuild(
        db,
        k,
        snapshot_dir(settings),
        settings.sharing_snapshot_every_events,
        workers=settings.sharing_tag_workers,
    )
    with db.session() as session:
        pruned = feed.prune_tags(session, k)
    return {"snapshot_rebuilt": rebuilt, "tags_pruned": pruned}
