"""`fcx entries …` and `fcx jobs run`: the registry from the command line (reviewers and operators)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fanchaoxin.core.errors import Problem

entries_app = typer.Typer(
    help="The 炒信 blacklist: list, show, submit, review, publish, revoke.", no_args_is_help=True
)
jobs_app = typer.Typer(
    help="Scheduled work: expiry at the maximum period, deadline events.", no_args_is_help=True
)

console = Console()
err = Console(stderr=True)


def _db():  # type: ignore[no-untyped-def]
    from fanchaoxin.cli import _database

    return _database()


def _actor():  # type: ignore[no-untyped-def]
    from fanchaoxin.cli import _cli_actor

    return _cli_actor()


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(1)


def _problem(exc: Problem) -> None:
    if exc.errors:
        lines = [f"{e.get('field')}: {e.get('message')}" for e in exc.errors]
        _fail(exc.detail + "\n  " + "\n  ".join(lines))
    _fail(exc.detail)


def _entry_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        _fail(f"{value!r} is not an entry id")
        raise


@entries_app.command("list")
def list_entries(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """List entries, oldest first."""
    from fanchaoxin.blacklist import service
    from fanchaoxin.core.auth import Principal
    from fanchaoxin.orgs.models import Role

    with _db().session() as s:
        page = service.list_entries(s, Principal(role=Role.auditor), status=status, limit=limit)
        table = Table("id", "status", "subject", "kind", "severity", "basis", "behaviours", "submitted")
        for e in page.entries:
            table.add_row(
                str(e.id),
                e.status,
                e.subject.name,
                e.subject.kind,
                e.severity,
                e.basis,
                ", ".join(e.behaviours),
                f"{e.submitted_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)


@entries_app.command("show")
def show_entry(entry_id: str) -> None:
    """One entry with its timeline."""
    from fanchaoxin.blacklist import service

    with _db().session() as s:
        try:
            e = service.get_entry_for_update(s, _entry_id(entry_id))
        except Problem as exc:
            _problem(exc)
            return
        console.print(f"[bold]{e.id}[/]  {e.status}  version {e.version}")
        console.print(f"subject: {e.subject.name} ({e.subject.kind})  severity {e.severity}  basis {e.basis}")
        console.print(f"behaviours: {', '.join(e.behaviours)}  role {e.role}")
        if e.notice_ends_on:
            console.print(f"notice period until {e.notice_ends_on}")
        if e.published_at:
            console.print(
                f"published {e.published_at:%Y-%m-%d}; repair from {e.min_end_on}; ends {e.max_end_on}"
            )
        for t in e.transitions:
            console.print(
                f"  {t.at:%Y-%m-%d %H:%M}  {t.from_status or '-'} → {t.to_status}  "
                f"{t.action}  {t.actor}  {t.reason}"
            )


@entries_app.command("submit")
def submit(
    file: Annotated[Path, typer.Argument(help="One entry as JSON, or a bulk file: CSV, XLSX, JSON Lines.")],
    org: Annotated[str, typer.Option(help="Reporting organisation (id, USCC or name).")],
    all_or_nothing: Annotated[
        bool, typer.Option(help="Bulk: accept nothing if any row has an error.")
    ] = False,
) -> None:
    """Submit entries on behalf of an organisation."""
    from pydantic import ValidationError

    from fanchaoxin.blacklist import bulk, service
    from fanchaoxin.blacklist.schemas import EntryIn
    from fanchaoxin.blacklist.uploads import UploadError, parse_upload
    from fanchaoxin.core.errors import pydantic_error
    from fanchaoxin.orgs.service import find_organisation

    if not file.exists():
        _fail(f"{file}: no such file")
    content = file.read_bytes()
    actor = _actor()
    try:
        with _db().session() as s:
            organisation = find_organisation(s, org)
            if file.suffix.lower() == ".json":
                try:
                    data = EntryIn.model_validate(json.loads(content))
                except json.JSONDecodeError as exc:
                    _fail(f"{file}: not valid JSON: {exc}")
                    return
                except ValidationError as exc:
                    errors = [pydantic_error(e["loc"], e["msg"], e["type"]) for e in exc.errors()]
                    _fail(f"{file}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors))
                    return
                e = service.submit(s, actor, organisation.id, data)
                console.print(f"Submitted entry [bold]{e.id}[/] (status {e.status})")
                return
            try:
                parsed = parse_upload(content, filename=file.name, media_type=None)
            except UploadError as exc:
                _fail(f"{file}: {exc}")
                return
            result = bulk.submit_batch(
                s,
                actor,
                organisation.id,
                parsed.entries,
                filename=file.name,
                file_format=parsed.format,
                content=content,
                total_rows=parsed.total_rows,
                row_errors=[x.as_dict() for x in parsed.errors],
                all_or_nothing=all_or_nothing,
            )
            for x in result.errors[:50]:
                err.print(f"row {x['row']}: {x['field']}: {x['message']}")
            if len(result.errors) > 50:
                err.print(f"… and {len(result.errors) - 50} more errors")
            console.print(
                f"Batch {result.batch.id}: {parsed.total_rows} rows, {result.batch.accepted} accepted, "
                f"{result.batch.rejected_rows} with errors"
            )
            if not result.batch.accepted:
                raise typer.Exit(1)
    except Problem as exc:
        _problem(exc)


def _step(entry_id: str, action: str, reason: str) -> None:
    from fanchaoxin.blacklist import service
    from fanchaoxin.blacklist.lifecycle import Action

    try:
        with _db().session() as s:
            e = service.get_entry_for_update(s, _entry_id(entry_id))
            service.transition(s, _actor(), e, Action(action), reason=reason)
            console.print(f"Entry {e.id} is now [bold]{e.status}[/]")
    except Problem as exc:
        _problem(exc)


@entries_app.command("review")
def review(
    entry_id: str,
    action: Annotated[str, typer.Option(help="start_review | reject | open_notice")] = "start_review",
    reason: Annotated[str, typer.Option(help="Why (required to reject).")] = "",
) -> None:
    """A reviewer's step before publication."""
    if action not in ("start_review", "reject", "open_notice"):
        _fail("--action: one of start_review, reject, open_notice")
    _step(entry_id, action, reason)


@entries_app.command("publish")
def publish(entry_id: str) -> None:
    """Publish an entry (after the notice period, or at once for administrative and judicial bases)."""
    _step(entry_id, "publish", "")


@entries_app.command("revoke")
def revoke(entry_id: str, reason: Annotated[str, typer.Option(help="Why the entry is revoked.")]) -> None:
    """Revoke a published entry; it leaves every feed and its liable persons' entries end with it."""
    _step(entry_id, "revoke", reason)


@jobs_app.command("run")
def run_jobs() -> None:
    """Run the scheduled jobs once: expiry, notice deadlines, merge proposals for bulk-created subjects."""
    from fanchaoxin.blacklist.service import run_jobs as run

    with _db().session() as s:
        result = run(s)
    console.print(
        f"{result['today']}: {result['expired']} expired, {result['notice_ended']} notice periods ended, "
        f"{result['proposals_checked']} subjects checked for similar names"
    )
