"""The grading policy: the versions loaded, the active one, and the catalogue of measures."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from fanchaoxin.console.auth import page
from fanchaoxin.console.common import READERS, console_router
from fanchaoxin.console.web import render
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.policy import measure_catalogue

router = console_router()


@router.get("/policy")
def policy_view(request: Request, session: Session = DB, principal: Principal = page(*READERS)) -> Response:
    versions = sanctions.policy_versions(session)
    cat = measure_catalogue()
    return render(
        request,
        "policy.html",
        versions=versions,
        active=next((v for v in versions if v.active), None),
        policy=sanctions.active_policy(session).model_dump(mode="json"),
        measures=sorted(cat.measures.values(), key=lambda m: m.number),
        department_measures=list(cat.department_measures.values()),
    )
