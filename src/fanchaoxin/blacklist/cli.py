"""`fcx entries list|show|submit`: the registry from the command line (the lifecycle steps are
`workflows.cli`'s)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from fanchaoxin.blacklist import bulk, service
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.blacklist.uploads import UploadError, parse_upload
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.cli import cli_actor, console, database, err, fail
from fanchaoxin.core.errors import Problem, pydantic_error
from fanchaoxin.core.roles import Role
from fanchaoxin.orgs.service import find_organisation

entries_app = typer.Typer(
    help="The 炒信 blacklist: list, show, submit, review, publish, revoke.", no_args_is_help=True
)


def _problem(exc: Problem) -> None:
    if exc.errors:
        lines = [f"{e.get('field')}: {e.get('message')}" for e in exc.errors]
        fail(exc.detail + "\n  " + "\n  ".join(lines))
    fail(exc.detail)


def _entry_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{value!r} is not an entry id")


@entries_app.command("list")
def list_entries(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
) -> None:
    """List entries, oldest first."""

    with database().session() as s:
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

    with database().session() as s:
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

    if not file.exists():
        fail(f"{file}: no such file")
    content = file.read_bytes()
    actor = cli_actor()
    try:
        with database().session() as s:
            organisation = find_organisation(s, org)
            if file.suffix.lower() == ".json":
                try:
                    data = EntryIn.model_validate(json.loads(content))
                except json.JSONDecodeError as exc:
                    fail(f"{file}: not valid JSON: {exc}")
                    return
                except ValidationError as exc:
                    errors = [pydantic_error(e["loc"], e["msg"], e["type"]) for e in exc.errors()]
                    fail(f"{file}: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors))
                    return
                e = service.submit(s, actor, organisation.id, data)
                console.print(f"Submitted entry [bold]{e.id}[/] (status {e.status})")
                return
            try:
                parsed = parse_upload(content, filename=file.name, media_type=None)
            except UploadError as exc:
                fail(f"{file}: {exc}")
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
