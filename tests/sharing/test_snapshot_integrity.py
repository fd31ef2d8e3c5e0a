"""A snapshot file that no longer matches its digest is neither named nor served; it is rebuilt (#13)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

from fanchaoxin.core import crypto
from fanchaoxin.core.roles import Role
from fanchaoxin.sharing import feed, service
from tests.blacklist.registry_helpers import judicial, person_entry
from tests.sharing import test_sharing
from tests.sharing.test_sharing import pinned, publish, snapshot

settings = test_sharing.settings
market = test_sharing.market


def _corrupt_in_place(path: Path) -> bytes:
    """Flip one byte in the middle, keeping the size (a bad sector, a half-finished copy)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.write(data)
    # Kernel timestamps are coarse (a few ms): make sure this write shows in the stat, as a later one would.
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    return bytes(data)


def test_a_corrupted_snapshot_is_rebuilt_and_never_served(client, market, db, settings, caplog):
    node = market["shop"].headers(Role.enterprise_node)
    publish(db, market["ride"].org.id, judicial())
    publish(db, market["ride"].org.id, person_entry())
    public, _ = pinned(client, node)
    manifest, first, _ = snapshot(client, node, public)
    seq = manifest["snapshot"]["seq"]
    [path] = service.snapshot_dir(settings).glob(f"snapshot-{seq:012d}-*.jsonl.gz")
    corrupted = _corrupt_in_place(path)

    # The file the manifest named no longer matches: not sent to anyone.
    assert client.get(manifest["snapshot"]["url"], headers=node).status_code == 404

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="fanchaoxin.sharing.feed"):
        again, second, raw = snapshot(client, node, public)  # verifies the digest and the signature
    assert raw != corrupted and again["snapshot"]["digest"] != crypto.active().hexdigest(corrupted)
    assert (again["head"], again["snapshot"]["seq"]) == (manifest["head"], seq)
    assert second.records == first.records
    assert any(manifest["snapshot"]["digest"] in r.getMessage() for r in caplog.records)


def test_digest_is_remembered_by_stat_and_checked_again_after_a_while(tmp_path):
    path = tmp_path / "snapshot-000000000001-1.jsonl.gz"
    path.write_bytes(os.urandom(300_000))
    snap = SimpleNamespace(
        filename=path.name, size=path.stat().st_size, digest=crypto.active().hexdigest(path.read_bytes())
    )
    assert feed.snapshot_file_intact(snap, tmp_path)  # type: ignore[arg-type]
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    # Corruption that keeps the size and the modification time (ctime may or may not tick within the
    # kernel's timestamp granularity, so only the re-check window is asserted on).
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    later = time.monotonic() + feed.REVERIFY_SECONDS + 1
    assert not feed.snapshot_file_intact(snap, tmp_path, clock=lambda: later)  # type: ignore[arg-type]
    snap.size += 1
    assert not feed.snapshot_file_intact(snap, tmp_path)  # type: ignore[arg-type]
    path.unlink()
    assert not feed.snapshot_file_intact(snap, tmp_path)  # type: ignore[arg-type]
