"""`fcx sharing …`: keys, snapshots, webhook delivery, quotas, dead letters."""

from __future__ import annotations

import getpass
import json
import time
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.service import find_organisation
from fanchaoxin.sharing import feed, keys, outbox, service
from fanchaoxin.sharing.evaluate import daily_quota
from fanchaoxin.sharing.views import set_declared_users

sharing_app = typer.Typer(help="Sharing without leaking: keys, signed feed, webhooks.", no_args_is_help=True)
keys_app = typer.Typer(help="The OPRF key ring and the feed-signing key.", no_args_is_help=True)
sharing_app.add_typer(keys_app, name="keys")

console = Console()
err = Console(stderr=True)


def _database():  # type: ignore[no-untyped-def]

    settings = get_settings()
    return Database(settings.database_url, echo=settings.database_echo)


def _actor() -> Actor:
    try:
        return Actor(f"cli:{getpass.getuser()}")
    except Exception:
        return Actor("cli:unknown")


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _show(directory: str | None) -> None:

    k = keys.load(directory, create=False)
    doc = k.public()
    doc["key_dir"] = str(k.directory)
    doc["retired"] = [
        {"key_id": x.key_id, "active_until": x.active_until.isoformat() if x.active_until else None}
        for x in keys.all_oprf_keys(directory)
        if not x.active()
    ]
    console.print_json(json.dumps(doc))


@keys_app.command("init")
def keys_init(
    key_dir: Annotated[str | None, typer.Option(help="Default: FCX_SHARING_KEY_DIR.")] = None,
) -> None:
    """Create the OPRF key ring and the signing key (never replaces existing keys)."""

    try:
        _, created = keys.init(key_dir)
    except keys.KeyFileError as exc:
        _fail(str(exc))
        return
    err.print("created" if created else "keys already exist; nothing changed")
    _show(key_dir)


@keys_app.command("show")
def keys_show(
    key_dir: Annotated[str | None, typer.Option(help="Default: FCX_SHARING_KEY_DIR.")] = None,
) -> None:
    """Public keys, key ids, overlap windows and the signing key's fingerprint (never a secret)."""

    try:
        _show(key_dir)
    except keys.KeyFileError as exc:
        _fail(str(exc))


@keys_app.command("rotate")
def keys_rotate(
    overlap_days: Annotated[
        int | None,
        typer.Option(help="Days the old key stays active. Default: FCX_SHARING_ROTATION_OVERLAP_DAYS."),
    ] = None,
    key_dir: Annotated[str | None, typer.Option(help="Default: FCX_SHARING_KEY_DIR.")] = None,
) -> None:
    """Make a new OPRF key current; the old one keeps working (tags and evaluations) for the overlap."""

    days = get_settings().sharing_rotation_overlap_days if overlap_days is None else overlap_days
    if days < 0:
        _fail("--overlap-days must not be negative")
    try:
        old, new = keys.rotate(key_dir, overlap=timedelta(days=days))
    except keys.KeyFileError as exc:
        _fail(str(exc))
        return
    until = old.active_until.isoformat() if old.active_until else "now"
    err.print(f"{new.key_id} is current; {old.key_id} stays active until {until}")
    err.print("the next manifest request (or `fcx sharing snapshot`) builds a snapshot with both keys' tags")


@sharing_app.command("snapshot")
def snapshot() -> None:
    """Build a snapshot of the entries in force now (tags computed on FCX_SHARING_TAG_WORKERS processes)."""

    settings = get_settings()
    db = _database()
    try:
        t = time.perf_counter()
        snap = feed.build_snapshot(
            db,
            service.load_keys(settings),
            service.snapshot_dir(settings),
            workers=settings.sharing_tag_workers,
        )
        err.print(
            f"snapshot at {snap.seq}: {snap.count:,} records, {snap.size:,} bytes, digest {snap.digest} "
            f"({time.perf_counter() - t:.1f} s)"
        )
    finally:
        db.dispose()


@sharing_app.command("deliver")
def deliver(
    loop: Annotated[bool, typer.Option("--loop", help="Keep delivering until interrupted.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between rounds with --loop.")] = 1.0,
) -> None:
    """Deliver due webhooks from the outbox (once, or in a loop)."""

    db = _database()
    try:
        while True:
            counts = outbox.deliver_due(db)
            if any(counts.values()) or not loop:
                err.print(json.dumps(counts))
            if not loop:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()


@sharing_app.command("quota")
def quota(
    org: Annotated[str, typer.Argument(help="Organisation id, USCC or exact name.")],
    declared_users: Annotated[int, typer.Option(help="The enterprise's declared user count.", min=0)],
) -> None:
    """Set an enterprise's declared user count; its daily blinded-evaluation quota follows."""

    db = _database()
    try:
        with db.session() as session:
            o = find_organisation(session, org)
            set_declared_users(session, _actor(), o, declared_users)
            err.print(
                f"{o.name}: {declared_users:,} declared users, "
                f"{daily_quota(o, get_settings()):,} evaluations a day"
            )
    except Problem as exc:
        _fail(exc.detail)
    finally:
        db.dispose()


@sharing_app.command("dead-letters")
def dead_letters() -> None:
    """Webhook deliveries that failed every attempt."""

    db = _database()
    try:
        with db.session() as session:
            console.print_json(json.dumps([outbox.item_out(i) for i in outbox.dead_letters(session)]))
    finally:
        db.dispose()


@sharing_app.command("replay")
def replay(item_id: Annotated[int, typer.Argument(help="The dead letter's id.")]) -> None:
    """Deliver a dead letter again (same event id: receivers dedupe)."""

    db = _database()
    try:
        with db.session() as session:
            outbox.replay(session, _actor(), item_id)
        err.print(f"outbox item {item_id} is pending again")
    except Problem as exc:
        _fail(exc.detail)
    finally:
        db.dispose()
