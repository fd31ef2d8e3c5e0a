"""`fcx audit patterns`: unusual patterns of checks per organisation, at the terminal.

Registered on the audit command group in `fanchaoxin/cli.py` (``audit_app.command("patterns")(patterns)``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from fanchaoxin.core import audit
from fanchaoxin.core.cli import cli_actor, console, database, fail, problem_message
from fanchaoxin.core.errors import Problem
from fanchaoxin.stats import access_patterns
from fanchaoxin.stats.access_patterns_views import bounds, window


def patterns(
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (Beijing).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD (Beijing), inclusive.")] = None,
    flagged_only: Annotated[bool, typer.Option("--flagged", help="Only flagged organisations.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Per organisation: checks, distinct identifiers, no-purpose share, hit rate, per declared user,
    enumeration alarms — flagged with reasons (default: the last 30 days)."""
    try:
        lo, hi = window(since, until)
    except Problem as exc:
        fail(problem_message(exc))
    with database().session() as session:
        found = access_patterns.patterns(session, *bounds(lo, hi))
        window_detail = {"since": lo.isoformat(), "until": hi.isoformat()}
        audit.record_read(
            session, cli_actor(), "decision_log.patterns", "decision_log", "-",
            detail={**window_detail, "flagged": sum(bool(p.flags) for p in found)},
        )  # fmt: skip
    rows = [p.as_dict() for p in found if p.flags or not flagged_only]
    if as_json:
        console.print_json(
            json.dumps({"since": lo.isoformat(), "until": hi.isoformat(), "organisations": rows})
        )
        return
    table = Table(title=f"Checks {lo.isoformat()} – {hi.isoformat()} (Beijing)")
    for col in (
        "organisation",
        "checks",
        "distinct ids",
        "no purpose",
        "hit rate",
        "per user",
        "alarms",
        "flags",
    ):
        table.add_column(col)
    for r in rows:
        per_user = "-" if r["digests_per_user"] is None else f"{r['digests_per_user']:.1f}"
        table.add_row(
            r["name"],
            str(r["checks"]),
            str(r["distinct_digests"]),
            f"{r['no_purpose_share']:.0%}",
            f"{r['hit_rate']:.1%}",
            per_user,
            str(r["enumeration_alarms"]),
            "\n".join(f["reason_en"] for f in r["flags"]) or "-",
        )
    console.print(table)
