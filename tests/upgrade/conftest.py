"""The upgrade tests' fixtures: the previous release's source from the repository's own history, and
fresh databases of either backend (each test migrates its own, to the revision it needs)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from fanchaoxin.core import upgrades
from fanchaoxin.core.db import Database
from tests.conftest import BACKENDS, POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = upgrades.load_releases()[-1]


@dataclass
class PreviousRelease:
    release: upgrades.Release
    src: Path  # put on PYTHONPATH, its `fanchaoxin` is imported instead of the working tree's

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that runs the previous release's code."""
        return {**os.environ, "PYTHONPATH": str(self.src), **extra}


@pytest.fixture(scope="session")
def previous_release(tmp_path_factory: pytest.TempPathFactory) -> PreviousRelease:
    """`git archive <commit> src` of the last release in releases.yaml. No git or no such commit fails
    the test (CI runs in a full clone): skipping would let an incompatible migration through."""
    git = shutil.which("git")
    if git is None:
        pytest.fail(
            "git is not installed: the previous release's source is read from the repository's history"
        )
    commit = PREVIOUS.commit
    found = subprocess.run(
        [git, "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(
            f"release {PREVIOUS.version}'s commit {commit} (releases.yaml) is not in the history of {ROOT}: "
            "a shallow clone? Fetch the full history (git fetch --unshallow)."
        )
    archive = subprocess.run(
        [git, "-C", str(ROOT), "archive", "--format=tar", commit, "src"], capture_output=True, check=True
    )
    into = tmp_path_factory.mktemp(f"release-{PREVIOUS.version}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return PreviousRelease(PREVIOUS, into / "src")


# The tables and columns the previous release's ORM models map, read by that release's own code.
_USAGE = """
import json, fanchaoxin, fanchaoxin.models
tables = fanchaoxin.models.Base.metadata.sorted_tables
usage = {t.name: {c.name: [bool(c.nullable), c.default is not None or c.server_default is not None]
                  for c in t.columns} for t in tables}
print(json.dumps({"file": fanchaoxin.__file__, "usage": usage}))
"""


@pytest.fixture(scope="session")
def previous_usage(previous_release: PreviousRelease) -> upgrades.Usage:
    out = subprocess.run(
        [sys.executable, "-c", _USAGE],
        env=previous_release.env(),
        cwd=previous_release.src.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    read = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(read["file"]).is_relative_to(previous_release.src), (
        f"imported {read['file']}, not the release"
    )
    return {t: {c: (u[0], u[1]) for c, u in cols.items()} for t, cols in read["usage"].items()}


@dataclass
class FreshDatabase:
    backend: str
    db: Database
    url: str  # reaches the same database (and schema) from another process


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FreshDatabase]:
    """An empty database, no revision: the test migrates it where it needs it."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fcx.db'}"
        db = Database(url)
        yield FreshDatabase("sqlite", db, url)
        db.dispose()
        return
    schema = f"fcx_upgrade_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - the point is to fail loudly
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable ({exc})")
    db = Database(POSTGRES_URL, schema=schema)
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield FreshDatabase("postgresql", db, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}")
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
