"""`fcx entries review|publish|revoke` and `fcx jobs run`: the lifecycle steps from the command line,
through the same workflow as the API and the console."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from fanchaoxin.appeals.cli import appeals_app
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.cli import entries_app
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.workflows.entries import take_step
from fanchaoxin.workflows.jobs import run_appeals_jobs
from fanchaoxin.workflows.jobs import run_jobs as run_registry_jobs

jobs_app = typer.Typer(
    help="Scheduled work: expiry at the maximum period, deadline events.", no_args_is_help=True
)


def _step(entry_id: str, action: Action, reason: str) -> None:
    try:
        eid = uuid.UUID(entry_id)
    except ValueError:
        fail(f"{entry_id!r} is not an entry id")
    try:
        with database().session() as s:
            e = registry.get_entry_for_update(s, eid)
            take_step(s, cli_actor(), e, action, reason=reason)
            console.print(f"Entry {e.id} is now [bold]{e.status}[/]")
    except Problem as exc:
        fail(problem_message(exc))


@entries_app.command("review")
def review(
    entry_id: str,
    action: Annotated[str, typer.Option(help="start_review | reject | open_notice")] = "start_review",
    reason: Annotated[str, typer.Option(help="Why (required to reject).")] = "",
) -> None:
    """A reviewer's step before publication."""
    if action not in ("start_review", "reject", "open_notice"):
        fail("--action: one of start_review, reject, open_notice")
    _step(entry_id, Action(action), reason)


@entries_app.command("publish")
def publish(entry_id: str) -> None:
    """Publish an entry (after the notice period, or at once for administrative and judicial bases)."""
    _step(entry_id, Action.publish, "")


@entries_app.command("revoke")
def revoke(entry_id: str, reason: Annotated[str, typer.Option(help="Why the entry is revoked.")]) -> None:
    """Revoke a published entry; it leaves every feed and its liable persons' entries end with it."""
    _step(entry_id, Action.revoke, reason)


@jobs_app.command("run")
def run_jobs() -> None:
    """Run the scheduled jobs once: expiry, notice deadlines, merge proposals for bulk-created subjects."""
    with database().session() as s:
        result = run_registry_jobs(s)
    console.print(
        f"{result['today']}: {result['expired']} expired, {result['notice_ended']} notice periods ended, "
        f"{result['proposals_checked']} subjects checked for similar names"
    )


@appeals_app.command("jobs")
def appeals_jobs() -> None:
    """Flag disputed the entries whose objection reached its flag date; count overdue cases; flag credit
    commitments breached by new submissions and mark those whose term ended fulfilled."""
    with database().session() as s:
        result = run_appeals_jobs(s)
    console.print(
        f"{result['today']}: {result['disputed']} entries flagged disputed; overdue: "
        f"{result['overdue_objections']} objections, {result['overdue_repairs']} repair applications, "
        f"{result['overdue_reports']} reports; credit commitments: "
        f"{result['commitment_breaches_flagged']} breaches flagged, "
        f"{result['commitments_fulfilled']} fulfilled"
    )
