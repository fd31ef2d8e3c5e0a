"""`fcx crypto status|migrate`: the platform's crypto profile (密码配置) from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fanchaoxin.core import crypto_record
from fanchaoxin.core.cli import cli_actor, console, database, err, fail
from fanchaoxin.core.crypto import CRYPTO_PROFILES, CryptoError, profile
from fanchaoxin.core.settings import get_settings
from fanchaoxin.core.vault import DataKeyError
from fanchaoxin.sharing.keys import KeyFileError
from fanchaoxin.workflows.crypto import migrate

crypto_app = typer.Typer(
    help="The crypto profile (international | gm, 国密): what the platform runs under, and changing it.",
    no_args_is_help=True,
)


@crypto_app.command("status")
def status() -> None:
    """The recorded profile and its periods, against FCX_CRYPTO_PROFILE."""
    db = database()
    try:
        periods = crypto_record.periods(db.engine)
    finally:
        db.dispose()
    setting = get_settings().crypto_profile
    for period in periods:
        p = period.profile
        console.print(
            f"from audit event {period.since_seq}: [bold]{p.name}[/] ({p.hash_algorithm}, {p.mac_algorithm}, "
            f"{p.signature_algorithm}, {p.aead_algorithm})",
            highlight=False,
        )
    recorded = periods[-1].profile.name if periods else None
    if recorded is not None and recorded != setting:
        err.print(
            f"[bold red]FCX_CRYPTO_PROFILE is {setting!r}, the database says {recorded!r}[/]: "
            "the platform will not start until they agree."
        )
        raise typer.Exit(1)
    console.print(f"FCX_CRYPTO_PROFILE={setting}: agrees with the record.")


@crypto_app.command("migrate")
def migrate_command(
    to: Annotated[str, typer.Option("--to", help=f"The new profile: {' | '.join(CRYPTO_PROFILES)}.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do it (without it: say what would be done).")] = False,
) -> None:
    """Move the platform to another crypto profile, with the platform stopped.

    Re-encrypts personal data and recomputes blind indexes under a new data key ring, re-addresses
    evidence, switches the audit chain behind a recorded event (its history is kept), replaces the
    feed-signing key and signs a new snapshot. Back up the database and the key files first.
    """
    try:
        target = profile(to)
    except CryptoError as exc:
        fail(str(exc))
    db = database()
    try:
        recorded = crypto_record.recorded_profile(db.engine) or "international"
        if not yes:
            console.print(
                f"Would move the platform from [bold]{recorded}[/] to [bold]{target.name}[/] "
                f"({target.hash_algorithm}, {target.signature_algorithm}, {target.aead_algorithm}): "
                "re-encrypt every personal value, recompute every blind index, re-address evidence, switch "
                "the audit chain, replace the feed-signing key. Stop the platform, back up the database "
                "and the key files, then run again with --yes.",
                highlight=False,
            )
            return
        done = migrate(db, target.name, cli_actor())
    except (CryptoError, DataKeyError, KeyFileError) as exc:
        fail(str(exc))
    finally:
        db.dispose()
    if done.database_migrated:
        console.print(
            f"[green]Database moved[/] from {done.from_profile} to {done.to_profile} in one transaction: "
            f"{done.resealed} values re-encrypted, {done.reindexed} blind indexes recomputed, "
            f"{done.evidence_readdressed} evidence files re-addressed; the audit chain switched at event "
            f"{done.audit_seq}.",
            highlight=False,
        )
        if done.ring_path is not None:
            console.print(
                f"Data key ring: {escape(str(done.ring_path))} (the old ring kept as "
                f"{escape(str(done.ring_backup))}: keep it with the backups until the old backups expire).",
                highlight=False,
            )
    else:
        console.print(f"The database is already under {done.to_profile}; finishing the key steps.")
    if done.signing_key_id:
        changed = "new" if done.signing_key_changed else "already"
        console.print(f"Feed-signing key: {done.signing_key_id} ({changed} {done.to_profile}).")
    if done.snapshot_seq is not None:
        console.print(f"Snapshot {done.snapshot_seq} signed with it.")
    if done.log_key:
        console.print(f"Transparency log key: {done.log_key} (publish it; the old one stays listed).")
    console.print(
        f"Now set [bold]FCX_CRYPTO_PROFILE={done.to_profile}[/] and start the platform; every enterprise "
        "node must run `fcx node init` again (the manifest names the new profile and key).",
        highlight=False,
    )
