"""`fcx log …`: the transparency log's key, checkpoints, and the auditor's checks (#19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from fanchaoxin.core import tlog
from fanchaoxin.core.crypto import profile
from fanchaoxin.core.db import Database
from fanchaoxin.core.settings import get_settings
from fanchaoxin.sharing import translog

log_app = typer.Typer(
    help="The transparency log (透明日志): key, checkpoints, verification.", no_args_is_help=True
)

console = Console()
err = Console(stderr=True)

_HASHES = {"SHA-256": "international", "SM3": "gm"}


def _database() -> Database:
    settings = get_settings()
    return Database(settings.database_url, echo=settings.database_echo)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


@log_app.command("init")
def init(
    origin: Annotated[
        str, typer.Option(help="The log's name (origin line, key name).")
    ] = translog.DEFAULT_ORIGIN,
    key_dir: Annotated[str | None, typer.Option(help="Default: FCX_SHARING_KEY_DIR.")] = None,
) -> None:
    """Create the log's signing key (log.json beside the sharing keys) if there is none."""
    try:
        keys, created = translog.init_log_key(key_dir, origin=origin)
    except (translog.LogError, tlog.TlogError) as exc:
        _fail(str(exc))
        return
    console.print(("Created" if created else "Already there") + f": {keys.path}")
    console.print_json(json.dumps(keys.public()))


@log_app.command("show")
def show(key_dir: Annotated[str | None, typer.Option()] = None) -> None:
    """The log's origin, profile, hash and verifier keys (current first, then retired)."""
    try:
        keys = translog.load_log_keys(key_dir, create=False)
    except translog.LogError as exc:
        _fail(str(exc))
        return
    console.print_json(json.dumps({**keys.public(), "file": str(keys.path)}))
    problem = translog.profile_problem(keys)
    if problem:
        err.print(f"[yellow]warning:[/] {problem}")


@log_app.command("rotate-key")
def rotate_key(key_dir: Annotated[str | None, typer.Option()] = None) -> None:
    """A fresh log key of the platform's profile; the old verifier key is kept so its checkpoints verify.

    Running workers read the new file on their next request; publish a checkpoint afterwards
    (`fcx log checkpoint`) so nodes see one signed by the new key."""
    try:
        old, new = translog.rotate_log_key(key_dir)
    except translog.LogError as exc:
        _fail(str(exc))
        return
    console.print(f"retired: {old}\ncurrent: {new}")


@log_app.command("checkpoint")
def checkpoint() -> None:
    """Commit the audit chain's head and sign a checkpoint of the log now; print it."""
    db = _database()
    with db.session() as session:
        result = translog.run_jobs(session)
        note = translog.current_checkpoint_note(session)
    console.print(note, end="", markup=False, highlight=False, soft_wrap=True)  # a signed note: never wrapped
    err.print(json.dumps(result))


@log_app.command("verify")
def verify(
    from_checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint kept from before: the log must extend it.")
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Check a platform over HTTP (its /v1/log/), as an outside auditor.")
    ] = None,
    vkey: Annotated[
        list[str] | None, typer.Option(help="Pinned verifier key(s); default: what /v1/log/key says.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(envvar="FCX_API_KEY", help="A key that reads the feed (entry bundles).")
    ] = None,
) -> None:
    """Check the whole log: every leaf re-hashed, every tile recomputed, the root against the signed
    checkpoint, and consistency with an older checkpoint (exit status 1 naming what failed)."""
    old = from_checkpoint.read_bytes() if from_checkpoint else None
    if url is None:
        db = _database()
        with db.session() as session:
            report = translog.verify_local(session, old_checkpoint=old)
    else:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        with httpx.Client(base_url=url.rstrip("/") + "/v1/log/", headers=headers, timeout=60) as client:

            def fetch(path: str) -> bytes:
                if path.startswith("consistency/"):
                    _, m, n = path.split("/")
                    r = client.get("proof/consistency", params={"from": m, "to": n})
                else:
                    r = client.get(path)
                if r.status_code != 200:
                    raise LookupError(f"GET {r.request.url} answered {r.status_code}")
                return r.content

            key = client.get("key").json()
            hash_profile = _HASHES.get(key.get("hash", ""))
            if hash_profile is None:
                _fail(f"the log's hash {key.get('hash')!r} is not one of {', '.join(_HASHES)}")
                return
            try:
                verifiers = [tlog.NoteVerifier.from_vkey(v) for v in (vkey or key["vkeys"])]
            except tlog.NoteError as exc:
                _fail(f"verifier key refused: {exc}")
                return
            report = translog.audit_log(
                fetch, verifiers, key["origin"], profile(hash_profile).digest, old_checkpoint=old
            )
    if report.ok:
        console.print(
            f"[green]Log intact[/]: {report.size} leaves, {report.leaves_checked} re-hashed, "
            f"{report.tiles_checked} tiles recomputed and matched"
            + (", consistent with the older checkpoint" if old else "")
        )
        return
    for p in report.problems:
        err.print(f"[bold red]log check failed:[/] {p}", markup=True, highlight=False)
    raise typer.Exit(1)


@log_app.command("audit-verify")
def audit_verify(
    from_checkpoint: Annotated[
        Path | None, typer.Option(help="A checkpoint kept outside the platform.")
    ] = None,
) -> None:
    """The audit chain checked against the heads committed in the log (`fcx audit verify`, anchored)."""
    db = _database()
    with db.session() as session:
        report = translog.verify_audit_anchored(
            session, checkpoint_note=from_checkpoint.read_bytes() if from_checkpoint else None
        )
    if report.ok:
        console.print(
            f"[green]Audit chain intact and anchored[/]: {report.chain_events} events, "
            f"{report.anchors_checked} heads committed in the log match"
        )
        return
    for p in report.problems:
        err.print(f"[bold red]anchored audit check failed:[/] {p}", highlight=False)
    raise typer.Exit(1)


@log_app.command("verify-statement")
def verify_statement(
    statement: Annotated[Path, typer.Argument(help="The statement file (a signed note).")],
    vkey: Annotated[list[str], typer.Option(help="The log's verifier key(s).")],
    origin: Annotated[str, typer.Option(help="The log's origin.")],
    hash_name: Annotated[str, typer.Option("--hash", help="SHA-256 or SM3.")] = "SHA-256",
) -> None:
    """Check a statement offline: its signature, checkpoint, inclusion proofs and claim."""
    if hash_name not in _HASHES:
        _fail(f"--hash is one of {', '.join(_HASHES)}")
        return
    try:
        verifiers = [tlog.NoteVerifier.from_vkey(v) for v in vkey]
        body = translog.verify_statement(
            statement.read_bytes(), verifiers, origin, profile(_HASHES[hash_name]).digest
        )
    except (tlog.TlogError, ValueError, KeyError) as exc:
        _fail(f"statement refused: {exc}")
        return
    console.print_json(json.dumps(body["claim"]))
