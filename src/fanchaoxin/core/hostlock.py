"""One process of a host at a time (flock): the packed decision index's builder, the scheduled backup."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def host_lock(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold an exclusive lock on the file `path` (made if missing, mode 0600) for the block: yields True
    once held, or False at once when another process holds it and `wait` is False. The lock goes with the
    process, so one that dies never leaves it taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
