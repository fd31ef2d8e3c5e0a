"""The reviewer's work: the review queue with its bulk steps, and the case view of one entry (案件视图).

The case view is one page per entry, at `/console/entries/{id}` and — the same page — at
`/console/review/{id}`: the facts, the evidence with previews (images and PDFs inline from the same-origin
download, text shown escaped), the subject with its identifiers and the new ones the submission proposes,
the liable persons, the notice before listing (告知书: its text, HTML and PDF) and how it was delivered,
every statement the subject filed (陈述申辩), the timeline in words, and the steps possible now.

Which steps are possible is the entry state machine's answer (`blacklist.lifecycle.possible_actions`);
each step says what will happen if it is taken — the notice period's length and who is told, how many
organisations get instructions (a dry run of the one targeting rule, `sanctions.service.targets`), what is
lifted — and the destructive ones (驳回 reject, 撤销 revoke) ask for confirmation on a page of their own
first, which works without JavaScript. A refused step shows its reason on the page the reviewer was on
(`console.problems.describe`); a step taken redirects back to the case (redirect after POST).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from fanchaoxin.appeals import attachments, notices, statements
from fanchaoxin.appeals import objections as appeal_objections
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action, Status, next_status, possible_actions
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.views import entry_out
from fanchaoxin.console import labels
from fanchaoxin.console.auth import page
from fanchaoxin.console.commitments import breaches_for_entry
from fanchaoxin.console.common import ADDRESSEES, REVIEWERS, console_router, listed_name
from fanchaoxin.console.i18n import N_, translator
from fanchaoxin.console.problems import describe
from fanchaoxin.console.web import PREFIX, locale_of, redirect, render, secure_headers
from fanchaoxin.core import audit, permissions
from fanchaoxin.core.auth import DB, Principal
from fanchaoxin.core.calendar import SHANGHAI, add_months, add_working_days, china_today
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.errors import NotFound, Problem
from fanchaoxin.core.identifiers import mask
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs import service as org_service
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.subjects import service as subjects
from fanchaoxin.workflows.entries import take_step

router = console_router()

QUEUE_STATUSES = ("submitted", "under_review", "notice_period")
BULK_ACTIONS = (Action.start_review, Action.open_notice, Action.publish, Action.reject)
DECISIONS = (Action.publish, Action.reject)
# Steps a reviewer does not take on the case page: an entry expires by itself (fcx jobs run), an
# objection marks it disputed and its decision resolves the dispute, and credit repair is decided on the
# application (with its commitment and proof) — taking them here would bypass their case.
TAKEN_ELSEWHERE = frozenset({Action.expire, Action.dispute, Action.resolve_dispute, Action.repair})
# Steps that end an entry or undo a listing: they are confirmed on a page of their own first.
DESTRUCTIVE = frozenset({Action.reject, Action.revoke})
# Until publication a reviewer may still keep a proposed identifier from joining the subject.
BEFORE_PUBLICATION = frozenset(
    {Status.submitted.value, Status.under_review.value, Status.notice_period.value}
)
TEXT_PREVIEW_CHARS = 20_000
TEXT_TYPES = frozenset({"text/plain", "text/csv"})

PROPOSAL_STATUS = {
    "proposed": N_("Joins the subject at publication"),
    "joined": N_("Joined the subject"),
    "rejected": N_("Rejected by a reviewer"),
    "taken": N_("Not joined: another subject had it by then"),
}
CONFLICT_KIND = {
    "identifier_kind_conflict": N_("The identifier belongs to a subject of another kind"),
    "several_subjects": N_("The identifiers name several subjects"),
}
# Done messages after a step (?done=<action>).
DONE = {
    "start_review": N_("The review has started."),
    "open_notice": N_("The notice period is open and the notice was issued."),
    "publish": N_("The entry is published."),
    "reject": N_("The entry is rejected."),
    "revoke": N_("The entry is revoked."),
}


# Long sentences of step_effects, by what they tell.
EFFECT = {
    "notice_period": N_(
        "The notice is issued now; the notice period runs {days} working days, to {date} inclusive."
    ),
    "letter_to": N_("No e-mail or mobile number was given: you print the notice and post it to {to}."),
    "published": N_("Published and shared: {orgs} organisations get {n} instructions (policy {version})."),
    "revoked": N_("It leaves every feed: {orgs} organisations get {n} instructions to lift their measures."),
}


def _queue(session: Session, principal: Principal) -> list[Entry]:
    rows: list[Entry] = []
    for status in QUEUE_STATUSES:
        rows += registry.list_entries(session, principal, status=status, limit=500).entries
    return rows


def _offered(session: Session, rows: list[Entry]) -> dict[uuid.UUID, list[dict[str, str]]]:
    """The identifiers each entry still proposes, masked where they are a natural person's."""
    kinds = {e.id: e.subject.kind for e in rows}
    out: dict[uuid.UUID, list[dict[str, str]]] = {}
    for entry_id, proposals in registry.proposed_of(session, list(kinds)).items():
        out[entry_id] = [
            {
                "type": p.type,
                "value": mask(p.type, p.value)
                if subjects.is_personal(kinds[entry_id] if p.party == "subject" else "individual")
                else p.value,
            }
            for p in proposals
            if p.status == "proposed"
        ]
    return out


def _queue_page(request: Request, session: Session, principal: Principal, **ctx: Any) -> Response:
    entries = _queue(session, principal)
    ids = [e.id for e in entries]
    in_notice = [e.id for e in entries if e.status == Status.notice_period.value]
    return render(
        request,
        "review.html",
        entries=entries,
        offered=_offered(session, entries),
        unanswered=statements.unanswered_counts(session, ids),
        notices={i: notices.summary_of(session, i) for i in in_notice},
        **ctx,
    )


@router.get("/review")
def review_queue(
    request: Request, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    return _queue_page(
        request,
        session,
        principal,
        actions=BULK_ACTIONS,
        errors=[],
        done=request.query_params.get("done"),
        done_action=request.query_params.get("action"),
    )


def problem_lines(exc: Problem, locale: str) -> list[str]:
    """A refused step in the reader's language: what kind of refusal, then each reason."""
    text = describe(exc, locale)
    return [text.title, *text.messages] if text.messages else [text.title]


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
    locale = locale_of(request)
    _ = translator(locale)
    errors: list[str] = []
    act = next((a for a in BULK_ACTIONS if a.value == action), None)
    if act is None:
        errors.append(_(N_("Choose an action.")))
    if not entry_ids:
        errors.append(_(N_("Select at least one entry.")))
    entries: list[Entry] = []
    today = china_today()
    for raw in entry_ids:
        try:
            entry = registry.get_entry(session, uuid.UUID(raw), principal)
        except (ValueError, NotFound):
            errors.append(_(N_("An entry you selected no longer exists; reload the queue.")))
            continue
        entries.append(entry)
        if act is not None:
            try:
                next_status(registry.facts_of(entry), act, today=today, reason=reason)
            except Problem as exc:
                errors.append(f"{listed_name(entry.subject)}: " + " ".join(problem_lines(exc, locale)))
    if not errors:
        try:
            for entry in entries:
                assert act is not None
                take_step(session, principal.actor, entry, act, reason=reason, today=today)
        except Problem as exc:
            session.rollback()
            errors.extend(problem_lines(exc, locale))
    if errors:
        session.rollback()
        return _queue_page(
            request,
            session,
            principal,
            status_code=422,
            actions=BULK_ACTIONS,
            errors=errors,
            selected=set(entry_ids),
            done=None,
            done_action=None,
        )
    assert act is not None
    return redirect(request, f"{PREFIX}/review?done={len(entries)}&action={act.value}")


# --- what a step will do ----------------------------------------------------------------------------------


@dataclass
class Step:
    """A step possible now, with what it will do in the reader's words."""

    action: str
    destructive: bool
    effects: list[str] = field(default_factory=list)


def _step_reason(entry: Entry, action: str, reason: str | None, locale: str) -> str | None:
    """A step's reason as the page shows it: a person's own words as written; the reasons the platform
    writes itself (a liable person's entry opened with the unit's, the notice period run out) in the
    page's language rather than as stored."""
    _ = translator(locale)
    if action == "link":
        role = labels.label("liable_role", entry.liable_role, locale)
        return _(N_("Opened with the unit's entry, as its {role}")).format(role=role)
    if action == "notice_ended":
        return _(N_("The notice period is over: the entry may be published"))
    return reason


def possible_steps(entry: Entry, principal: Principal, today: date) -> list[Action]:
    """The steps the reviewer may take on this entry now (the state machine's answer, less those taken
    through another case)."""
    if principal.role not in REVIEWERS:
        return []
    return [a for a in possible_actions(registry.facts_of(entry), today=today) if a not in TAKEN_ELSEWHERE]


def _lifts(session: Session, entry: Entry) -> tuple[int, int]:
    """(instructions, organisations) an ending would lift: what was applied and not lifted yet."""
    applied, lifted = sanctions.applied_and_lifted(session, entry)
    rows = [a for a in applied if sanctions.liftable(a, lifted)]
    return len(rows), len({a.owner_org_id for a in rows})


def step_effects(
    session: Session, entry: Entry, action: Action, today: date, locale: str, *, liable: int = 0
) -> list[str]:
    """What taking `action` now will do, sentence by sentence, in the reader's language (nothing written).

    `liable`: how many liable persons the submission names (they are listed with the unit)."""
    _ = translator(locale)
    says: list[str] = []
    received = [s for s in statements.statements_of(session, entry.id) if s.status == "received"]
    proposed = [
        p for p in registry.proposed_of(session, [entry.id]).get(entry.id, []) if p.status == "proposed"
    ]
    persons = registry.linked_entries(session, entry)
    if action == Action.start_review:
        says.append(_(N_("The entry goes under review. Nothing is shared yet.")))
        says.append(_(N_("Credit commitments of the subject that this submission breaches are flagged.")))
    elif action == Action.open_notice:
        days = get_settings().notice_working_days
        ends = add_working_days(today, days)
        says.append(_(EFFECT["notice_period"]).format(days=days, date=ends.isoformat()))
        channel, to = notices.delivery_plan(entry)
        if channel == "email":
            says.append(
                _(N_("The subject is notified by e-mail at {to}, with the notice as a PDF.")).format(to=to)
            )
        elif channel == "sms":
            says.append(_(N_("The subject is notified by SMS at {to}.")).format(to=to))
        elif to:
            says.append(_(EFFECT["letter_to"]).format(to=to))
        else:
            says.append(_(N_("The subject gave no contact: you print the notice and post it.")))
        if liable:
            says.append(
                _(N_("The notice names {n} liable persons, to be listed with the unit.")).format(n=liable)
            )
        says.append(
            _(N_("The entry can be published once the period is over, with an answer to each statement."))
        )
    elif action == Action.publish:
        policy = sanctions.active_policy(session)
        graded = sanctions.graded_measures(policy, entry)
        targets = sanctions.targets(session, entry, today, measures=graded)
        orgs = len({org_id for org_id, _code in targets})
        says.append(_(EFFECT["published"]).format(orgs=orgs, n=len(targets), version=policy.version))
        if graded:
            names = "、".join(labels.label("measure", m["code"], locale) for m in graded)
            says.append(_(N_("Measures: {names}.")).format(names=names))
        sev = catalogues().severities[entry.severity]
        says.append(
            _(
                N_("It is listed for at least {min} and at most {max} months (until {date} at the latest).")
            ).format(
                min=sev.min_months, max=sev.max_months, date=add_months(today, sev.max_months).isoformat()
            )
        )
        if received:
            says.append(
                _(N_("Each of the {n} statements needs your answer; the filers are told.")).format(
                    n=len(received)
                )
            )
        if proposed:
            says.append(_(N_("{n} new identifiers join the subject.")).format(n=len(proposed)))
        if liable:
            says.append(_(N_("{n} liable persons are published with it.")).format(n=liable))
    elif action == Action.reject:
        says.append(_(N_("The entry is rejected and ends here; nothing is shared and no measure is taken.")))
        if proposed:
            says.append(_(N_("The {n} new identifiers it proposed are dropped.")).format(n=len(proposed)))
        if received:
            says.append(
                _(
                    N_("Your reason answers the {n} statements left unanswered; their filers are told.")
                ).format(n=len(received))
            )
        says.append(_(N_("A reason is required.")))
    elif action == Action.revoke:
        n, orgs = _lifts(session, entry)
        says.append(_(EFFECT["revoked"]).format(orgs=orgs, n=n))
        says.append(_(N_("A correction notice is published to restore the subject's reputation.")))
        in_force = [p for p in persons if p.status in (Status.published.value, Status.disputed.value)]
        if in_force:
            says.append(_(N_("{n} liable persons' entries are revoked with it.")).format(n=len(in_force)))
        says.append(_(N_("A reason is required. This cannot be undone.")))
    return says


# --- the case view ----------------------------------------------------------------------------------------


def _at(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, SHANGHAI)


def timeline(
    session: Session, entry: Any, raw: Entry, notice: Any, rows: list[Any], objections: list[Any], locale: str
) -> list[dict[str, Any]]:
    """The entry's history in words, oldest first: its steps, the notice, statements and objections."""
    _ = translator(locale)
    events: list[dict[str, Any]] = []
    for t in entry.timeline or []:
        events.append(
            {
                "at": t.at,
                "kind": "step",
                "action": t.action,
                "from_status": t.from_status,
                "to_status": t.to_status,
                "actor": labels.actor(t.actor, locale),
                "reason": _step_reason(entry, t.action, t.reason, locale),
            }
        )
    if notice is not None:
        events.append(
            {
                "at": _at(notice.issued_on),
                "kind": "text",
                "text": _(N_("Notice {number} issued")).format(number=notice.number),
            }
        )
        if notice.delivered_at is not None:
            events.append({"at": notice.delivered_at, "kind": "text", "text": _(N_("Notice delivered"))})
    for s in rows:
        events.append(
            {
                "at": s.filed_at,
                "kind": "text",
                "text": _(N_("Statement {number} filed")).format(number=s.tracking_number),
            }
        )
        if s.answered_at is not None:
            events.append(
                {
                    "at": s.answered_at,
                    "kind": "text",
                    "text": _(N_("Statement {number} answered")).format(number=s.tracking_number),
                    "actor": labels.actor(s.answered_by, locale),
                }
            )
    for o in objections:
        events.append(
            {
                "at": o.filed_at,
                "kind": "text",
                "text": _(N_("Objection {number} filed")).format(number=o.tracking_number),
            }
        )
        if o.decided_at is not None:
            events.append(
                {
                    "at": o.decided_at,
                    "kind": "text",
                    "text": _(N_("Objection {number} decided")).format(number=o.tracking_number),
                }
            )
    events.sort(key=lambda e: e["at"] or datetime.min.replace(tzinfo=SHANGHAI))
    return events


def _previews(session: Session, principal: Principal, raw: Entry, evidence: list[Any]) -> dict[str, str]:
    """The text of each plain-text evidence file, to show escaped on the page (each read audited)."""
    out: dict[str, str] = {}
    for ev in evidence or []:
        if ev["media_type"] in TEXT_TYPES:
            _ev, blob = registry.read_evidence(session, principal, raw.id, ev["digest"])
            out[ev["digest"]] = blob.data[: TEXT_PREVIEW_CHARS * 4].decode("utf-8", errors="replace")[
                :TEXT_PREVIEW_CHARS
            ]
    return out


def _notice_document(session: Session, principal: Principal, entry_id: uuid.UUID) -> Any:
    """The notice's wording as the subject got it, for the reviewer to read on the page (audited)."""
    notice = notices.notice_of(session, entry_id)
    if notice is None:
        return None
    audit.record_read(session, principal.actor, "notice.read", "notice", notice.id, detail={"format": "page"})
    return notices.notice_document(notice.content)


def case_page(
    request: Request,
    session: Session,
    principal: Principal,
    raw: Entry,
    *,
    reveal: bool = False,
    errors: list[str] | None = None,
    form: dict[str, Any] | None = None,
    status_code: int = 200,
    template: str = "entry.html",
) -> Response:
    """The case view of one entry, for whoever may open it (each part for those who may see it)."""
    locale = locale_of(request)
    today = china_today()
    reviewer = principal.role in REVIEWERS
    entry = entry_out(session, raw, principal, reveal=reveal, detail=True)
    instructions = sanctions.list_instructions(session, principal, entry_id=raw.id, limit=500).instructions
    objections = []
    if reviewer or principal.role in ADDRESSEES:
        objections = appeal_objections.list_objections(session, principal, entry_id=raw.id)
    rows = statements.statements_of(session, raw.id) if reviewer else []
    notice = notices.summary_of(session, raw.id) if reviewer else None
    steps = [
        Step(
            a.value,
            a in DESTRUCTIVE,
            step_effects(
                session, raw, a, today, locale, liable=len(getattr(entry, "liable_persons", None) or [])
            ),
        )
        # The destructive steps come last: the page never leads with one.
        for a in sorted(possible_steps(raw, principal, today), key=lambda a: a in DESTRUCTIVE)
    ]
    done = request.query_params.get("done") or ""
    return render(
        request,
        template,
        status_code=status_code,
        entry=entry,
        raw=raw,
        linked=_linked(session, raw, reveal=reveal),
        instructions=instructions,
        org_names=org_service.organisation_names(session),
        objections=objections,
        notice=notice,
        notice_doc=_notice_document(session, principal, raw.id) if reviewer else None,
        statements=rows,
        files={s.id: attachments.attachments_of(session, "statement", s.id) for s in rows},
        commitment_breaches=breaches_for_entry(session, raw) if reviewer else [],
        steps=steps,
        previews=_previews(session, principal, raw, getattr(entry, "evidence", None) or []),
        events=timeline(session, entry, raw, notice, rows, objections, locale),
        may_reject=reviewer and raw.status in BEFORE_PUBLICATION,
        may_decide=reviewer and raw.status in (Status.under_review.value, Status.notice_period.value),
        proposal_status=PROPOSAL_STATUS,
        conflict_kinds=CONFLICT_KIND,
        may_reveal=permissions.may_reveal(principal),
        revealed=reveal,
        today=today,
        errors=errors or [],
        form=form or {},
        done=DONE.get(done),
        measure_name=lambda code: labels.label("measure", code, locale),
    )


def _linked(session: Session, entry: Entry, *, reveal: bool) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "liable_role": e.liable_role,
            "status": e.status,
            "name": listed_name(e.subject, reveal=reveal),
            "identifiers": subjects.identifiers_out(e.subject, reveal=reveal),
        }
        for e in registry.linked_entries(session, entry)
    ]


@router.get("/review/{entry_id}")
def review_entry(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    reveal: bool = Query(False),
) -> Response:
    """The case view (the same page as /console/entries/{id}), opened from the review queue."""
    entry = registry.get_entry(session, entry_id, principal)
    return case_page(request, session, principal, entry, reveal=reveal, template="review_entry.html")


@router.post("/review/{entry_id}/decide")
def review_decide(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    action: str = Form(""),
    reason: str = Form(""),
    version: int | None = Form(None),
    statement_id: list[str] = Form(default_factory=list),
    answer: list[str] = Form(default_factory=list),
) -> Response:
    """Publish (an answer to every statement) or reject (the reason answers those left blank)."""
    locale = locale_of(request)
    _ = translator(locale)
    form = {"action": action, "reason": reason, "answers": dict(zip(statement_id, answer, strict=False))}
    act = next((a for a in DECISIONS if a.value == action), None)
    errors: list[str] = [] if act is not None else [_(N_("Choose an action."))]
    answers: dict[uuid.UUID, str] = {}
    # One hidden statement id and one answer box per statement, in the page's order.
    for raw, text in zip(statement_id, answer, strict=False):
        try:
            key = uuid.UUID(raw)
        except ValueError:
            errors.append(_(N_("A statement you answered no longer exists; reload the page.")))
            continue
        if text.strip():
            answers[key] = text
    if not errors and act is not None:
        try:
            entry = registry.get_entry_for_update(session, entry_id)
            take_step(
                session, principal.actor, entry, act, reason=reason, expected_version=version, answers=answers
            )
        except Problem as exc:
            session.rollback()
            errors = problem_lines(exc, locale)
        else:
            return redirect(request, f"{PREFIX}/entries/{entry_id}?done={act.value}#steps")
    entry = registry.get_entry(session, entry_id, principal)
    return case_page(request, session, principal, entry, errors=errors, form=form, status_code=422)


@router.post("/review/{entry_id}/letter-posted")
def review_letter_posted(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    posted_on: str = Form(""),
    reference: str = Form(""),
) -> Response:
    """The reviewer posted the printed notice: the date and the registered letter's number."""
    locale = locale_of(request)
    entry = registry.get_entry(session, entry_id, principal)
    try:
        day = date.fromisoformat(posted_on)
    except ValueError:
        errors = [translator(locale)(N_("Give the date the letter was posted."))]
    else:
        try:
            notices.record_letter_posted(
                session, principal.actor, entry.id, posted_on=day, reference=reference, today=china_today()
            )
        except Problem as exc:
            session.rollback()
            errors = problem_lines(exc, locale)
        else:
            return redirect(request, f"{PREFIX}/review/{entry_id}#notice")
    return case_page(request, session, principal, entry, errors=errors, status_code=422)


def _notice_for(session: Session, principal: Principal, entry_id: uuid.UUID, fmt: str) -> Any:
    entry = registry.get_entry(session, entry_id, principal)
    notice = notices.get_notice(session, entry.id)
    audit.record_read(session, principal.actor, "notice.read", "notice", notice.id, detail={"format": fmt})
    return notice


@router.get("/review/{entry_id}/notice")
def review_notice(
    request: Request, entry_id: uuid.UUID, session: Session = DB, principal: Principal = page(*REVIEWERS)
) -> Response:
    """The notice as the subject got it (printable)."""
    notice = _notice_for(session, principal, entry_id, "html")
    return secure_headers(request, HTMLResponse(notices.render_html(notice.content)))


@router.get("/review/{entry_id}/notice.pdf")
def review_notice_pdf(
    request: Request,
    entry_id: uuid.UUID,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
    inline: bool = Query(False),
) -> Response:
    """The notice as a PDF: the letter to post when it could not be sent (`inline`: shown in the page)."""
    notice = _notice_for(session, principal, entry_id, "pdf")
    response = Response(
        notices.render_pdf(notice.content),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{notice.number}.pdf"'
        },
    )
    secure_headers(request, response)
    if inline:
        framable(response)
    return response


def framable(response: Response) -> Response:
    """Let the console's own pages show this file in a frame (a PDF preview), and no other site."""
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    # Only who may frame it is said: a stricter policy here would stop the browser's own PDF viewer.
    response.headers["Content-Security-Policy"] = "frame-ancestors 'self'"
    return response


@router.get("/review/statements/{statement_id}/files/{digest}")
def review_statement_file(
    request: Request,
    statement_id: uuid.UUID,
    digest: str,
    session: Session = DB,
    principal: Principal = page(*REVIEWERS),
) -> Response:
    """A statement's evidence file (audited)."""
    statement = statements.get_statement(session, statement_id)
    att, blob = attachments.attachment_blob(session, "statement", statement.id, digest)
    audit.record(
        session, principal.actor, "attachment.read", "statement", statement.id, detail={"digest": digest}
    )
    response = Response(
        blob.data,
        media_type=att.media_type,
        headers={"Content-Disposition": f'attachment; filename="{att.digest}"'},
    )
    return secure_headers(request, response)
