"""The phase rule (#23): after the previous release, an expand migration only adds, and a contract
migration removes only what the previous release's models no longer map. Checked by recording each
migration's upgrade() (core.upgrades), never by running it."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import ModuleType

import pytest

import fanchaoxin
from fanchaoxin.core import upgrades
from fanchaoxin.core.db import Database
from tests.upgrade.conftest import PREVIOUS

SCRIPTS = Database("sqlite://").migration_scripts()
ORDER = {s.revision: i for i, s in enumerate(SCRIPTS)}
AFTER_PREVIOUS = [s for s in SCRIPTS if ORDER[s.revision] > ORDER[PREVIOUS.schema_head]]


def test_every_migration_declares_its_phase() -> None:
    steps = [upgrades.step_of(s) for s in SCRIPTS]  # raises, naming the revision, when one lacks it
    assert {s.phase for s in steps} <= set(upgrades.PHASES)
    assert all(s.description for s in steps)


def test_releases_file_is_valid_and_names_known_revisions(previous_release) -> None:  # type: ignore[no-untyped-def]
    releases = upgrades.load_releases()
    assert releases[-1] == PREVIOUS
    assert all(r.schema_head in ORDER for r in releases)
    heads = [ORDER[r.schema_head] for r in releases]
    assert heads == sorted(heads)
    # The previous release's own migrations end where releases.yaml says they do.
    theirs = sorted(
        p.name[:4] for p in (previous_release.src / "fanchaoxin/migrations/versions").glob("0*.py")
    )
    assert theirs[-1] == PREVIOUS.schema_head


def test_this_code_is_a_later_version_than_every_cut_release() -> None:
    """A release cut without moving the version on would make two programs answer to one version."""
    this = upgrades.Release(version=fanchaoxin.__version__, commit="0" * 40, schema_head=SCRIPTS[-1].revision)
    assert all(r.key < this.key for r in upgrades.load_releases()), fanchaoxin.__version__


@pytest.mark.parametrize("script", AFTER_PREVIOUS, ids=lambda s: s.revision)
def test_migrations_after_the_previous_release_keep_it_working(script, previous_usage) -> None:  # type: ignore[no-untyped-def]
    step = upgrades.step_of(script)
    found = upgrades.changes(script.module)
    assert upgrades.violations(step, found, previous_usage) == [], f"migration {step.revision} ({step.phase})"


def test_the_recorder_reads_the_history_as_it_is_marked() -> None:
    """The classifier agrees with every earlier migration it can read without a database."""
    for script in SCRIPTS:
        step = upgrades.step_of(script)
        needed = upgrades.needed_phase(upgrades.changes(script.module))
        if needed == "review":  # 0009, 0010, 0023 read rows while they run
            continue
        assert needed == step.phase, step.revision
    assert upgrades.needed_phase(upgrades.changes(_script("0026").module)) == "contract"


def _script(revision: str):  # type: ignore[no-untyped-def]
    return next(s for s in SCRIPTS if s.revision == revision)


def migration(body: str, phase: str = "expand") -> ModuleType:
    """A migration module made of `body`, the statements of its upgrade()."""
    module = ModuleType("migration_under_test")
    source = "import sqlalchemy as sa\nfrom alembic import op\n\ndef upgrade():\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )
    exec(compile(source, "<migration>", "exec"), module.__dict__)  # the literal sources below
    module.phase = phase  # type: ignore[attr-defined]
    return module


# What the previous release maps, for the rule: `entries.facts` (written always), `entries.note` (nullable).
USAGE: upgrades.Usage = {"entries": {"facts": (False, False), "note": (True, False)}}


def verdict(body: str, phase: str) -> list[str]:
    module = migration(body, phase)
    step = upgrades.Step("9999", "under test", phase)  # type: ignore[arg-type]
    return upgrades.violations(step, upgrades.changes(module), USAGE)


@pytest.mark.parametrize(
    ("body", "phase"),
    [
        ('op.add_column("entries", sa.Column("request_id", sa.String(64), nullable=True))', "expand"),
        (
            'op.add_column("entries", sa.Column("n", sa.Integer(), nullable=False, server_default="0"))',
            "expand",
        ),
        ('op.create_table("things", sa.Column("id", sa.Integer(), primary_key=True))', "expand"),
        ('op.create_index("ix_entries_facts", "entries", ["facts"], postgresql_concurrently=True)', "expand"),
        ('op.execute("UPDATE entries SET note = facts")', "expand"),
        (
            'with op.batch_alter_table("entries") as b:\n'
            '    b.alter_column("note", type_=sa.String(200), existing_type=sa.String(100))',
            "expand",
        ),
        # contract steps that touch only what the previous release does not map
        ('op.drop_column("entries", "legacy")', "contract"),
        ('op.drop_table("old_things")', "contract"),
        ("op.execute('ALTER TABLE entries DROP COLUMN \"legacy\"')", "contract"),
        ('op.alter_column("entries", "facts", nullable=False)', "contract"),  # always written already
    ],
)
def test_allowed(body: str, phase: str) -> None:
    assert verdict(body, phase) == []


@pytest.mark.parametrize(
    ("body", "phase", "words"),
    [
        ('op.drop_column("entries", "legacy")', "expand", "must be a contract step"),
        (
            'with op.batch_alter_table("entries") as b:\n    b.alter_column("note", new_column_name="remark")',
            "expand",
            "rename column entries.note",
        ),
        ('op.add_column("entries", sa.Column("n", sa.Integer(), nullable=False))', "expand", "NOT NULL"),
        ('op.add_column("entries", sa.Column("n", sa.Integer(), nullable=False))', "contract", "NOT NULL"),
        ('op.drop_column("entries", "note")', "contract", "still uses entries.note"),
        (
            'op.execute("ALTER TABLE entries RENAME COLUMN facts TO fact")',
            "contract",
            "still uses entries.facts",
        ),
        ('op.alter_column("entries", "note", nullable=False)', "contract", "still uses entries.note"),
        ('op.drop_table("entries")', "contract", "still maps table entries"),
        (
            'with op.batch_alter_table("entries") as b:\n'
            '    b.alter_column("note", type_=sa.String(50), existing_type=sa.String(100))',
            "contract",
            "change type entries.note",
        ),
        ('op.execute("VACUUM entries")', "expand", "not understood"),
        ('op.get_bind().execute(sa.text("SELECT 1")).scalar_one()', "expand", "reads the database"),
    ],
)
def test_refused(body: str, phase: str, words: str) -> None:
    problems = verdict(body, phase)
    assert any(words in p for p in problems), problems


def test_a_migration_without_a_phase_is_named() -> None:
    class Bare:
        revision = "9999"
        doc = "no phase"
        module = ModuleType("bare")

    with pytest.raises(ValueError, match="migration 9999: phase must be"):
        upgrades.step_of(Bare())  # type: ignore[arg-type]


def test_a_malformed_releases_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "releases.yaml"
    bad.write_text("releases:\n  - version: '0.1.0'\n    commit: 83a4a23\n    schema_head: '0029'\n")
    with pytest.raises(upgrades.ReleasesError, match=r"release 1.*commit"):
        upgrades.load_releases(bad)
    bad.write_text(
        "releases:\n"
        + "".join(
            f"  - {{version: '{v}', commit: '{'a' * 40}', schema_head: '0029'}}\n" for v in ("0.2.0", "0.1.0")
        )
    )
    with pytest.raises(upgrades.ReleasesError, match="versions must increase"):
        upgrades.load_releases(bad)
