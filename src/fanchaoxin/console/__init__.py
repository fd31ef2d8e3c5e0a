"""The web console: server-rendered pages for every role and the public pages (/console).

One router per capability, all under /console and all checking the CSRF token of every POST:

- `signin`: language switch, sign-in, sign-out
- `dashboard`: the platform's figures and charts
- `review`: the review queue and its bulk steps; an entry's decision page (notice, statements, answers)
- `entries`: entries, one entry, a lifecycle step, evidence downloads
- `subjects`: one subject; merge, split, undo a merge
- `orgs`, `instructions`: organisation pages; acknowledging and reporting instructions
- `queues`, `cases`: the due-process queues, and one objection, report or repair application
- `policy`, `audit_log`, `keys`: the grading policy, the audit log, API keys
- `public`: the pages anyone may open (query, statistics, corrections, objection, repair, report)
- `statements`: the public statement form (陈述申辩) on a notice before listing
- `progress`: the public progress page of a filed case (tracking number + secret)
- `commitments`: the public page of credit commitments (信用承诺) published with repairs
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from fanchaoxin.console import (
    access,
    agreements,
    audit_log,
    cases,
    commitments,
    consultation,
    coordination,
    dashboard,
    entries,
    instructions,
    keys,
    orgs,
    policy,
    progress,
    public,
    queues,
    review,
    rulebooks,
    signin,
    statements,
    subjects,
    workbench,
)
from fanchaoxin.console.i18n import HERE
from fanchaoxin.console.web import PREFIX, install_error_pages

ROUTERS = (
    signin.router,
    dashboard.router,
    review.router,
    entries.router,
    subjects.router,
    orgs.router,
    instructions.router,
    queues.router,
    policy.router,
    audit_log.router,
    keys.router,
    cases.router,
    public.router,
    progress.router,
    statements.router,  # #15: the public statement form (陈述申辩)
    commitments.router,
    access.router,
    workbench.router,  # #17: the operator's instruction workbench (执行指令工作台)
    # #22: taking part — agreements, rulebooks, consultation, coordination figures
    agreements.router,
    rulebooks.router,
    consultation.router,
    coordination.router,
)


def install(app: FastAPI) -> None:
    """Mount the console on the platform's application: pages under /console, files under /console/static."""
    for router in ROUTERS:
        app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
    install_error_pages(app)
