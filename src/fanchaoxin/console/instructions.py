"""An addressee's instructions one at a time: acknowledge one, and report how it was carried out.

An enterprise's operators come back to the workbench (console.workbench), a department's officers to
their organisation's page; a refused report is shown there, in the reader's language. The outcome of a
report is always chosen: none is assumed.
"""

from __future__ import annotations

import uuid

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import participant_page
from fanchaoxin.console.common import ADDRESSEES, console_router
from fanchaoxin.console.orgs import org_page
from fanchaoxin.console.web import PREFIX, redirect
from fanchaoxin.console.workbench import confirmations_of, problem_lines, workbench_page
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import Problem
from fanchaoxin.core.roles import Role
from fanchaoxin.sanctions import service as sanctions

router = console_router()


def _home(principal: Principal, instruction_id: uuid.UUID) -> str:
    if principal.role == Role.enterprise_operator:
        return f"{PREFIX}/workbench#i-{instruction_id}"
    return f"{PREFIX}/org#i-{instruction_id}"


@router.post("/instructions/{instruction_id}/ack")
def instruction_ack(
    request: Request,
    instruction_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
) -> Response:
    ins = sanctions.get_instruction(session, instruction_id, principal)
    sanctions.acknowledge(session, principal, ins)
    return redirect(request, _home(principal, ins.id))


@router.post("/instructions/{instruction_id}/report")
def instruction_report(
    request: Request,
    instruction_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = participant_page(*ADDRESSEES),
    outcome: str = Form(""),
    reason: str = Form(""),
    confirmations: dict[str, str] = Depends(confirmations_of),
) -> Response:
    ins = sanctions.get_instruction(session, instruction_id, principal)
    try:
        sanctions.report(
            session, principal, ins, outcome=outcome, reason=reason, confirmations=dict(confirmations) or None
        )
    except Problem as exc:
        session.rollback()
        errors = problem_lines(request, exc)
        if principal.role == Role.enterprise_operator:
            return workbench_page(request, session, principal, errors=errors, status_code=exc.status)
        assert principal.org_id is not None
        return org_page(request, session, principal, principal.org_id, errors=errors, status_code=exc.status)
    return redirect(request, _home(principal, ins.id))
