"""An addressee's instructions: acknowledge one, and report how it was carried out (back to its org page)."""

from __future__ import annotations

import uuid

from fastapi import Depends, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import ADDRESSEES, console_router, problem_errors
from fanchaoxin.console.orgs import org_page
from fanchaoxin.console.web import PREFIX, redirect
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.errors import Problem
from fanchaoxin.sanctions import service as sanctions

router = console_router()


@router.post("/instructions/{instruction_id}/ack")
def instruction_ack(
    request: Request,
    instruction_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
) -> Response:
    ins = sanctions.get_instruction(session, instruction_id, principal)
    sanctions.acknowledge(session, principal, ins)
    return redirect(request, f"{PREFIX}/org#i-{ins.id}")


async def confirmations_of(request: Request) -> dict[str, str]:
    """The report form's `confirm.<field>` inputs (the instruction's feedback fields; an unticked box
    sends nothing); the service checks them as it checks the API's `confirmations`."""
    form = await request.form()
    return {
        name.removeprefix("confirm."): value.strip()
        for name, value in form.items()
        if name.startswith("confirm.") and isinstance(value, str) and value.strip()
    }


@router.post("/instructions/{instruction_id}/report")
def instruction_report(
    request: Request,
    instruction_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
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
        assert principal.org_id is not None
        return org_page(
            request, session, principal, principal.org_id, errors=problem_errors(exc), status_code=exc.status
        )
    return redirect(request, f"{PREFIX}/org#i-{ins.id}")
