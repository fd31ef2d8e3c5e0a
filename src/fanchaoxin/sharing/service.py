"""Sharing's scheduled work and the things the API and the CLI share (where files live)."""

from __future__ import annotations

import logging
from pathlib import Path

from fanchaoxin.core.db import Database
from fanchaoxin.core.settings import Settings, get_settings
from fanchaoxin.sharing import feed, keys

log = logging.getLogger(__name__)


def snapshot_dir(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return feed.sharing_dir(keys.key_dir(settings.sharing_key_dir), settings.sharing_dir)


def load_keys(settings: Settings | None = None) -> keys.SharingKeys:
    settings = settings or get_settings()
    return keys.load(settings.sharing_key_dir)


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
