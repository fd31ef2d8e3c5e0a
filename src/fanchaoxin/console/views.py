"""Staff pages of the console: sign-in, dashboard, review queue, entries, subjects, organisations,
due-process queues, policy, audit log and API keys. Every action goes through the same service
functions as the API (and so through the same rules, tenancy and audit)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fanchaoxin.appeals import service as appeals
from fanchaoxin.appeals.ratelimit import TokenBuckets
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action, Status, next_status
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.console import auth
from fanchaoxin.console.auth import (
    CONSOLE_ROLES,
    LANG_COOKIE,
    SESSION_COOKIE,
    ConsolePrincipal,
    check_csrf,
    page,
    public_page,
)
from fanchaoxin.console.i18n import LOCALES, N_
from fanchaoxin.console.web import PREFIX, redirect, render, safe_next, set_cookie
from fanchaoxin.core import audit
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Forbidden, NotFound, Problem, TooManyRequests, ValidationProblem
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as orgs
from fanchaoxin.orgs.models import ApiKey, Organisation, OrgKind, Role
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction, PolicyVersion
from fanchaoxin.subjects import service as subjects

R = Role
router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(check_csrf)])

REVIEWERS = (R.platform_reviewer, R.platform_admin)
PLATFORM = (R.platform_admin, R.platform_reviewer, R.auditor)
ADDRESSEES = (R.enterprise_operator, R.department_officer)
READERS = (*PLATFORM, *ADDRESSEES)
KEY_MANAGERS = (R.platform_admin, R.department_officer, R.enterprise_operator)
QUEUE_STATUSES = ("submitted", "under_review", "notice_period")
BULK_ACTIONS = (Action.start_review, Action.open_notice, Action.publish, Action.reject)


def _problem_errors(exc: Problem) -> list[str]:
    if exc.errors:
        return [f"{e.get('field') or ''}: {e.get('message') or ''}".strip(": ") for e in exc.errors]
    return [exc.detail]


# --- language, sign-in, sign-out --------------------------------------------------------------------------


@router.get("/lang/{locale}")
def switch_language(
    request: Request, locale: str, next: str | None = None, _: Principal = public_page()
) -> Response:
    if locale not in LOCALES:
        raise NotFound(f"No language {locale!r}; one of {', '.join(LOCALES)}")
    response = redirect(request, safe_next(next))
    set_cookie(request, response, LANG_COOKIE, locale, max_age=365 * 24 * 3600)
    return response


_login_lock_attr = "console_login_buckets"


def _login_limit(request: Request) -> None:
    s = get_settings()
    buckets = getattr(request.app.state, _login_lock_attr, None)
    if buckets is None:
        buckets = TokenBuckets(s.console_login_attempts, s.console_login_window_seconds)
        setattr(request.app.state, _login_lock_attr, buckets)
    address = request.client.host if request.client else "unknown"
    wait = buckets.take(f"login:{address}")
    if wait > 0:
        seconds = max(1, int(wait) + 1)
        raise TooManyRequests(
            f"Too many sign-in attempts; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )


@router.get("/login")
def login_form(request: Request, next: str | None = None, _: Principal = public_page()) -> Response:
    return render(request, "login.html", next=safe_next(next), error=None, method="password")


@router.post("/login")
def login(
    request: Request,
    session: Session = DB,
    _: Principal = public_page(),
    method: str = Form("password"),
    username: str = Form(""),
    password: str = Form(""),
    api_key: str = Form(""),
    next: str = Form(""),
) -> Response:
    _login_limit(request)
    try:
        if method == "api_key":
            if not api_key.strip():
                raise ValidationProblem(
                    "api_key: required", errors=[{"field": "api_key", "message": "required"}]
                )
            key = auth.sign_in_key(session, api_key)
            cookie = auth.open_session(request, session, key=key)
        else:
            user = auth.sign_in_password(session, username, password)
            cookie = auth.open_session(request, session, user=user)
    except Problem as exc:
        # A failed attempt is audited for password users: keep that row, nothing else was written.
        session.commit()
        return render(
            request,
            "login.html",
            status_code=exc.status,
            next=safe_next(next),
            error=exc.detail,
            method=method,
        )
    response = redirect(request, safe_next(next))
    set_cookie(request, response, SESSION_COOKIE, cookie, max_age=get_settings().console_session_hours * 3600)
    return response


@router.post("/logout")
def logout(request: Request, session: Session = DB, principal: Principal = page(*CONSOLE_ROLES)) -> Response:
    auth.end_session(request, session)
    audit.record(session, principal.actor, "console.sign_out", "console_session", "-")
    response = redirect(request, f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


# --- dashboard --------------------------------------------------------------------------------------------


@router.get("/")
def dashboard(
    request: Request, session: Session = DB, principal: Principal = page(*CONSOLE_ROLES)
) -> Response:
    if principal.role in ADDRESSEES:
        return redirect(request, f"{PREFIX}/org")
    from fanchaoxin.stats import service as stats

    today = china_today()
    charts = {
        "behaviour": stats.entries_by(session, "behaviour"),
        "severity": stats.entries_by(session, "severity"),
        "basis": stats.entries_by(session, "basis"),
        "month": stats.entries_by(session, "month"),
        "status": stats.entries_by(session, "status"),
    }
    measures = stats.measures_by_enterprise(session, today=today)
    cases = stats.cases(session, today=today)
    queue = session.scalar(select(func.count()).select_from(Entry).where(Entry.status.in_(QUEUE_STATUSES)))
    return render(
        request, "dashboard.html", charts=charts, measures=measures, cases=cases, queue=int(queue or 0)
    )


# --- review queue -----------------------------------------------------------------------------------------


def _queue(session: Session, principal: Principal) -> list[Entry]:
    rows: list[Entry] = []
    for status in QUEUE_STATUSES:
        rows += registry.list_entries(session, principal, status=status, limit=500).entries
    return rows


@router.get("/review")
def review_queue(
    request: Request, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    return render(
        request,
        "review.html",
        entries=_queue(session, principal),
        actions=BULK_ACTIONS,
        errors=[],
        done=request.query_params.get("done"),
        done_action=request.query_params.get("action"),
    )


@router.post("/review/bulk")
def review_bulk(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    entry_ids: list[str] = Form(default_factory=list),
) -> Response:
    """All selected entries take the step, or none does (each one named in the errors)."""
    errors: list[str] = []
    try:
        act = Action(action)
        if act not in BULK_ACTIONS:
            raise ValueError(action)
    except ValueError:
        act = None
        errors.append(N_("Choose an action."))
    if not entry_ids:
        errors.append(N_("Select at least one entry."))
    entries: list[Entry] = []
    today = china_today()
    for raw in entry_ids:
        try:
            entry = registry.get_entry(session, uuid.UUID(raw), principal)
        except (ValueError, NotFound):
            errors.append(f"{raw}: not found")
            continue
        entries.append(entry)
        if act is not None:
            try:
                next_status(registry.facts_of(entry), act, today=today, reason=reason)
            except Problem as exc:
                errors.append(f"{_listed_name(entry)} ({entry.id}): {exc.detail}")
    if not errors:
        try:
            for entry in entries:
                assert act is not None
                registry.transition(session, principal.actor, entry, act, reason=reason, today=today)
        except Problem as exc:
            session.rollback()
            errors.append(exc.detail)
    if errors:
        session.rollback()
        return render(
            request,
            "review.html",
            status_code=422,
            entries=_queue(session, principal),
            actions=BULK_ACTIONS,
            errors=errors,
            selected=set(entry_ids),
            done=None,
            done_action=None,
        )
    return redirect(request, f"{PREFIX}/review?done={len(entries)}&action={act.value if act else ''}")


def _listed_name(entry: Entry) -> str:
    from fanchaoxin.core.identifiers import mask_person_name

    name = entry.subject.name
    return mask_person_name(name) if subjects.is_personal(entry.subject.kind) else name


# --- entries ----------------------------------------------------------------------------------------------


@router.get("/entries")
def entries_list(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*READERS),
    status: str | None = None,
    severity: str | None = None,
    behaviour: str | None = None,
) -> Response:
    result = registry.list_entries(
        session,
        principal,
        status=status or None,
        severity=severity or None,
        behaviour=behaviour or None,
        limit=200,
    )
    return render(
        request,
        "entries.html",
        entries=result.entries,
        status=status or "",
        severity=severity or "",
        behaviour=behaviour or "",
        statuses=[s.value for s in Status],
    )


def _entry_actions(entry: Entry, principal: Principal) -> list[str]:
    if principal.role not in REVIEWERS:
        return []
    from fanchaoxin.blacklist.lifecycle import TRANSITIONS

    manual = {Action.expire, Action.dispute}
    return [a.value for (s, a) in TRANSITIONS if s.value == entry.status and a not in manual]


@router.get("/entries/{entry_id}")
def entry_detail(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*READERS),
    reveal: bool = Query(False),
) -> Response:
    from fanchaoxin.blacklist.views import entry_out

    entry = registry.get_entry(session, entry_id, principal)
    out = entry_out(session, entry, principal, reveal=reveal, detail=True)
    linked = []
    for e in registry.linked_entries(session, entry):
        personal = subjects.is_personal(e.subject.kind)
        from fanchaoxin.core.identifiers import mask_person_name

        linked.append(
            {
                "id": e.id,
                "liable_role": e.liable_role,
                "status": e.status,
                "name": e.subject.name if (reveal or not personal) else mask_person_name(e.subject.name),
                "identifiers": subjects.identifiers_out(e.subject, reveal=reveal),
            }
        )
    instructions = sanctions.list_instructions(session, principal, entry_id=entry.id, limit=500).instructions
    org_names = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    objections = []
    if principal.role in REVIEWERS or principal.role in ADDRESSEES:
        objections = appeals.list_objections(session, principal, entry_id=entry.id)
    return render(
        request,
        "entry.html",
        entry=out,
        raw=entry,
        linked=linked,
        instructions=instructions,
        org_names=org_names,
        objections=objections,
        actions=_entry_actions(entry, principal),
        may_reveal=principal.role in REVIEWERS,
        revealed=reveal,
        today=china_today(),
        errors=[],
    )


@router.post("/entries/{entry_id}/transition")
def entry_transition(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    version: int | None = Form(None),
) -> Response:
    try:
        act = Action(action)
    except ValueError as exc:
        raise ValidationProblem(
            f"Unknown action {action!r}",
            errors=[{"field": "action", "message": "one of " + ", ".join(Action)}],
        ) from exc
    if act in (Action.expire,):
        raise Forbidden("Entries expire by themselves at their maximum period (fcx jobs run)")
    entry = registry.get_entry_for_update(session, entry_id)
    registry.transition(session, principal.actor, entry, act, reason=reason, expected_version=version)
    return redirect(request, f"{PREFIX}/entries/{entry_id}")


@router.get("/entries/{entry_id}/evidence/{sha256}")
def entry_evidence(
    request: Request,
    entry_id: uuid.UUID,
    sha256: str,
    session: Session = DB,
    principal: Principal = page(*READERS),
) -> Response:
    """An evidence file, for the platform and the organisation that reported the entry (audited)."""
    entry = registry.get_entry(session, entry_id, principal)
    if not (principal.is_platform or entry.owner_org_id == principal.org_id):
        raise NotFound(f"No entry with id {entry_id}")
    ev, blob = registry.get_evidence_blob(session, entry, sha256)
    audit.record(session, principal.actor, "evidence.read", "entry", entry.id, detail={"sha256": sha256})
    return Response(
        blob.data,
        media_type=blob.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{ev.sha256}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- subjects ---------------------------------------------------------------------------------------------


@router.get("/subjects/{subject_id}")
def subject_detail(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, R.auditor),
    reveal: bool = Query(False),
) -> Response:
    return _subject_page(request, session, principal, subject_id, reveal=reveal, errors=[])


def _subject_page(
    request: Request,
    session: Session,
    principal: Principal,
    subject_id: uuid.UUID,
    *,
    reveal: bool,
    errors: list[str],
    status_code: int = 200,
) -> Response:
    from fanchaoxin.subjects.models import MergeProposal, SubjectMerge
    from fanchaoxin.subjects.views import _subject_out

    if reveal and principal.role not in REVIEWERS:
        raise Forbidden("Only a platform reviewer may see plain personal identifiers")
    subject = subjects.get_subject(session, subject_id)
    out = _subject_out(session, subject, principal, reveal)
    entries = registry.list_entries(session, principal, subject_id=subject.id, limit=500).entries
    proposals = list(
        session.scalars(
            select(MergeProposal).where(
                MergeProposal.status == "open",
                (MergeProposal.subject_id == subject.id) | (MergeProposal.candidate_id == subject.id),
            )
        )
    )
    merges = list(
        session.scalars(
            select(SubjectMerge).where(
                (SubjectMerge.survivor_id == subject.id) | (SubjectMerge.merged_id == subject.id)
            )
        )
    )
    return render(
        request,
        "subject.html",
        status_code=status_code,
        subject=out,
        raw=subject,
        entries=entries,
        proposals=proposals,
        merges=merges,
        may_edit=principal.role in REVIEWERS,
        may_reveal=principal.role in REVIEWERS,
        revealed=reveal,
        errors=errors,
    )


@router.post("/subjects/{subject_id}/merge")
def subject_merge(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    other_id: str = Form(""),
    reason: str = Form(""),
) -> Response:
    """Merge `other_id` into this subject (this one survives)."""
    try:
        other = uuid.UUID(other_id.strip())
        subjects.merge(session, principal.actor, subject_id, other, reason=reason)
    except ValueError:
        return _subject_page(
            request, session, principal, subject_id, reveal=False, errors=["other_id: not a subject id"],
            status_code=422,
        )  # fmt: skip
    except Problem as exc:
        session.rollback()
        return _subject_page(
            request, session, principal, subject_id, reveal=False, errors=_problem_errors(exc),
            status_code=exc.status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/subjects/{subject_id}")


@router.post("/subjects/{subject_id}/split")
def subject_split(
    request: Request,
    subject_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    identifier_ids: list[str] = Form(default_factory=list),
    entry_ids: list[str] = Form(default_factory=list),
    name: str = Form(""),
    reason: str = Form(""),
) -> Response:
    try:
        if not identifier_ids:
            raise ValidationProblem(
                "Choose identifiers", errors=[{"field": "identifier_ids", "message": "choose at least one"}]
            )
        new = subjects.split(
            session,
            principal.actor,
            subject_id,
            identifier_ids=[uuid.UUID(i) for i in identifier_ids],
            entry_ids=[uuid.UUID(i) for i in entry_ids],
            reason=reason,
            name=name.strip() or None,
        )
    except Problem as exc:
        session.rollback()
        return _subject_page(
            request, session, principal, subject_id, reveal=False, errors=_problem_errors(exc),
            status_code=exc.status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/subjects/{new.id}")


@router.post("/merges/{merge_id}/undo")
def merge_undo(
    request: Request,
    merge_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    reason: str = Form(""),
) -> Response:
    """Split a merged subject out again, with exactly the identifiers and entries it brought."""
    from fanchaoxin.subjects.models import SubjectMerge

    record = session.get(SubjectMerge, merge_id)
    if record is None:
        raise NotFound(f"No merge with id {merge_id}")
    survivor = record.survivor_id
    try:
        subjects.undo_merge(session, principal.actor, merge_id, reason=reason)
    except Problem as exc:
        session.rollback()
        return _subject_page(
            request, session, principal, survivor, reveal=False, errors=_problem_errors(exc),
            status_code=exc.status,
        )  # fmt: skip
    return redirect(request, f"{PREFIX}/subjects/{survivor}")


# --- organisations: enterprise and department pages -------------------------------------------------------


@router.get("/orgs")
def org_list(request: Request, session: Session = DB, principal: Principal = page(*PLATFORM)) -> Response:
    return render(request, "orgs.html", orgs=orgs.list_organisations(session, principal))


@router.get("/org")
def own_org(request: Request, session: Session = DB, principal: Principal = page(*ADDRESSEES)) -> Response:
    assert principal.org_id is not None
    return _org_page(request, session, principal, principal.org_id)


@router.get("/orgs/{org_id}")
def org_detail(
    request: Request, org_id: uuid.UUID, session: Session = DB, principal: Principal = page(*READERS)
) -> Response:
    if principal.role in ADDRESSEES and org_id != principal.org_id:
        raise NotFound(f"No organisation with id {org_id}")
    return _org_page(request, session, principal, org_id)


def _org_page(
    request: Request,
    session: Session,
    principal: Principal,
    org_id: uuid.UUID,
    *,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    org = orgs.get_organisation(session, org_id, principal)
    today = china_today()
    rows = sanctions.list_instructions(session, principal, owner_org_id=org.id, limit=1000).instructions
    total = len(rows)
    reported = sum(1 for i in rows if i.outcome is not None)
    overdue = [i for i in rows if i.acknowledged_at is None and i.ack_due_on < today]
    entries = {
        e.id: e for e in session.scalars(select(Entry).where(Entry.id.in_({i.entry_id for i in rows})))
    }
    from fanchaoxin.sanctions.policy import measure_catalogue

    cat = measure_catalogue()
    measure_names = {code: (m.zh, m.en) for code, m in cat.measures.items()}
    measure_names.update({code: (m.zh, m.en) for code, m in cat.department_measures.items()})
    department: dict[str, object] = {}
    if org.kind == OrgKind.department.value:
        # The department's own page: the department measures addressed to it first, and the entries whose
        # basis is an administrative penalty or a judicial decision (what departments act on).
        based = []
        for basis in ("administrative_penalty", "judicial_decision"):
            based += registry.list_entries(session, principal, basis=basis, limit=200).entries
        if principal.is_platform:
            based = [e for e in based if e.owner_org_id == org.id]
        based.sort(key=lambda e: e.submitted_at, reverse=True)
        department = {
            "measure_rows": [i for i in rows if i.department_measure],
            "other_rows": [i for i in rows if not i.department_measure],
            "based_entries": based,
        }
    return render(
        request,
        "department.html" if department else "org.html",
        status_code=status_code,
        **department,
        org=org,
        instructions=rows,
        entries=entries,
        total=total,
        reported=reported,
        feedback_rate=(reported / total) if total else None,
        overdue=overdue,
        today=today,
        may_act=principal.org_id == org.id and principal.role in ADDRESSEES,
        measure_names=measure_names,
        errors=errors or [],
    )


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


@router.post("/instructions/{instruction_id}/report")
def instruction_report(
    request: Request,
    instruction_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*ADDRESSEES),
    outcome: str = Form(""),
    reason: str = Form(""),
) -> Response:
    ins = sanctions.get_instruction(session, instruction_id, principal)
    try:
        sanctions.report(session, principal, ins, outcome=outcome, reason=reason)
    except Problem as exc:
        session.rollback()
        assert principal.org_id is not None
        return _org_page(
            request, session, principal, principal.org_id, errors=_problem_errors(exc), status_code=exc.status
        )
    return redirect(request, f"{PREFIX}/org#i-{ins.id}")


# --- due process queues -----------------------------------------------------------------------------------


def _badge(due: date | None, today: date, done: bool) -> str:
    """overdue / due_soon (within 2 days) / ok / done — shown as a coloured badge with text."""
    if done or due is None:
        return "done"
    if due < today:
        return "overdue"
    if due <= today + timedelta(days=2):
        return "due_soon"
    return "ok"


@router.get("/objections")
def objection_queue(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
    status: str | None = None,
) -> Response:
    today = china_today()
    rows = appeals.list_objections(session, principal, status=status or None, limit=500)
    items = []
    for o in rows:
        due = o.answer_due_on if o.status == "forwarded" else o.decide_due_on
        items.append({"o": o, "due": due, "badge": _badge(due, today, o.status == "decided")})
    return render(request, "objections.html", items=items, status=status or "", today=today)


@router.get("/reports")
def report_queue(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS, *ADDRESSEES),
    status: str | None = None,
) -> Response:
    today = china_today()
    rows = appeals.list_reports(session, principal, status=status or None, limit=500)
    items = [
        {"r": r, "due": r.handle_due_on, "badge": _badge(r.handle_due_on, today, r.status != "routed")}
        for r in rows
    ]
    return render(request, "reports.html", items=items, status=status or "", today=today)


# --- policy -----------------------------------------------------------------------------------------------


@router.get("/policy")
def policy_view(request: Request, session: Session = DB, principal: Principal = page(*READERS)) -> Response:
    from fanchaoxin.sanctions.policy import measure_catalogue

    versions = list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.loaded_at.desc())))
    active = next((v for v in versions if v.active), None)
    policy = sanctions.active_policy(session)
    cat = measure_catalogue()
    return render(
        request,
        "policy.html",
        versions=versions,
        active=active,
        policy=policy.model_dump(mode="json"),
        measures=sorted(cat.measures.values(), key=lambda m: m.number),
        department_measures=list(cat.department_measures.values()),
    )


# --- audit log --------------------------------------------------------------------------------------------


@router.get("/audit")
def audit_search(
    request: Request,
    session: Session = DB,
    principal: Principal = page(R.auditor, R.platform_admin),
    action: str = "",
    actor: str = "",
    target_id: str = "",
    date_from: str = "",
    date_to: str = "",
    before: int | None = None,
) -> Response:
    ev = audit.AuditEvent
    stmt = select(ev)
    errors = []
    if action.strip():
        stmt = stmt.where(ev.action.like(action.strip().replace("*", "%")))
    if actor.strip():
        stmt = stmt.where(ev.actor.like(actor.strip().replace("*", "%")))
    if target_id.strip():
        stmt = stmt.where(ev.target_id == target_id.strip())
    for name, raw, end in (("date_from", date_from, False), ("date_to", date_to, True)):
        if raw.strip():
            try:
                day = date.fromisoformat(raw.strip())
            except ValueError:
                errors.append(f"{name}: YYYY-MM-DD")
                continue
            from zoneinfo import ZoneInfo

            tz = ZoneInfo(get_settings().timezone_display)
            at = datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=tz)
            stmt = stmt.where(ev.at < at) if end else stmt.where(ev.at >= at)
    if before:
        stmt = stmt.where(ev.id < before)
    rows = [] if errors else list(session.scalars(stmt.order_by(ev.id.desc()).limit(100)))
    audit.record_read(
        session, principal.actor, "audit.search", "audit_log", "-",
        detail={"action": action, "actor": actor, "target_id": target_id, "results": len(rows)},
    )  # fmt: skip
    more = rows[-1].id if len(rows) == 100 else None
    template = "audit_rows.html" if request.headers.get("hx-request") else "audit.html"
    return render(
        request,
        template,
        rows=rows,
        errors=errors,
        q={
            "action": action,
            "actor": actor,
            "target_id": target_id,
            "date_from": date_from,
            "date_to": date_to,
        },
        more=more,
    )


# --- API keys ---------------------------------------------------------------------------------------------


def _key_orgs(session: Session, principal: Principal) -> list[Organisation]:
    if principal.role == R.platform_admin:
        return orgs.list_organisations(session, principal)
    assert principal.org_id is not None
    return [orgs.get_organisation(session, principal.org_id, principal)]


def _keys_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    issued: str | None = None,
    errors: list[str] | None = None,
    status_code: int = 200,
) -> Response:
    org_list = _key_orgs(session, principal)
    keys = []
    now = utcnow()
    for org in org_list:
        for k in orgs.list_keys(session, org):
            keys.append({"key": k, "org": org, "status": k.status(now)})
    roles = [r for r in Role if r != R.public and any(orgs.may_issue(principal, o, r) for o in org_list)]
    return render(
        request,
        "keys.html",
        status_code=status_code,
        keys=keys,
        org_list=org_list,
        roles=roles,
        issued=issued,
        errors=errors or [],
    )


@router.get("/keys")
def keys_page(
    request: Request, session: Session = DB, principal: Principal = page(*KEY_MANAGERS)
) -> Response:
    return _keys_page(request, session, principal)


@router.post("/keys")
def key_create(
    request: Request,
    session: Session = DB,
    principal: Principal = page(*KEY_MANAGERS),
    org_id: str = Form(""),
    role: str = Form(""),
    label: str = Form(""),
    expires_in_days: str = Form(""),
) -> Response:
    try:
        try:
            org = orgs.get_organisation(session, uuid.UUID(org_id), principal)
        except ValueError as exc:
            raise ValidationProblem("org_id", errors=[{"field": "org_id", "message": "choose one"}]) from exc
        try:
            key_role = Role(role)
        except ValueError as exc:
            raise ValidationProblem("role", errors=[{"field": "role", "message": "choose a role"}]) from exc
        if not orgs.may_issue(principal, org, key_role):
            raise Forbidden(
                f"Role {principal.role.value} may not create a {key_role.value} key for {org.name}"
            )
        days = None
        if expires_in_days.strip():
            try:
                days = int(expires_in_days)
            except ValueError as exc:
                raise ValidationProblem(
                    "expires_in_days", errors=[{"field": "expires_in_days", "message": "a whole number"}]
                ) from exc
        issued = orgs.create_key(
            session, principal.actor, org, key_role, label=label.strip(), expires_in_days=days
        )
    except Problem as exc:
        session.rollback()
        return _keys_page(request, session, principal, errors=_problem_errors(exc), status_code=exc.status)
    # The secret is in this one response only (never stored, never in a URL or a redirect).
    return _keys_page(request, session, principal, issued=issued.secret, status_code=201)


@router.post("/keys/{key_id}/revoke")
def key_revoke(
    request: Request,
    key_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*KEY_MANAGERS),
    reason: str = Form(""),
) -> Response:
    try:
        key = orgs.get_key(session, key_id, principal)
        org = session.get(Organisation, key.owner_org_id)
        assert org is not None
        orgs.check_may_manage_key(principal, key, org)
        orgs.revoke_key(session, principal.actor, key, reason=reason)
    except Problem as exc:
        session.rollback()
        return _keys_page(request, session, principal, errors=_problem_errors(exc), status_code=exc.status)
    return redirect(request, f"{PREFIX}/keys")


__all__ = ["ApiKey", "ConsolePrincipal", "Instruction", "OrgKind", "router"]
