"""Routes of the punishment engine: decisions, instructions and feedback, the policy and the catalogues."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from fanchaoxin.core import permissions, vault
from fanchaoxin.core.auth import DB, Principal, allow
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.errors import Problem, ValidationProblem
from fanchaoxin.core.permissions import allow_participant
from fanchaoxin.core.roles import Role as R
from fanchaoxin.core.schemas import INT64_MAX, ResponseModel, StrictModel
from fanchaoxin.orgs import budget as budgets
from fanchaoxin.orgs import rulebook
from fanchaoxin.orgs.decision_log import DecisionLogWriter, LogRecord
from fanchaoxin.orgs.department_kinds import department_kinds
from fanchaoxin.sanctions import bulk, service
from fanchaoxin.sanctions.basic_list import basic_list, checked_policy
from fanchaoxin.sanctions.decide import EntryLookup, decide
from fanchaoxin.sanctions.impact import policy_impact
from fanchaoxin.sanctions.index import IndexHolder, IndexWarming
from fanchaoxin.sanctions.models import PolicyVersion
from fanchaoxin.sanctions.policy import PolicyError, default_policy, measure_catalogue
from fanchaoxin.sharing.protocol import DecisionRequest, FeedbackIn, IdentifierIn, identifier_keys

router = APIRouter(prefix="/v1", tags=["joint punishment"])


class IndexNotReady(Problem):
    status = 503
    slug = "decision-index-warming"
    title = "Decisions are not available yet: the index is loading"
    title_zh = "决策索引加载中，请稍后重试"


ADDRESSEES = permissions.INSTRUCTION_ADDRESSEES
READERS = permissions.STAFF


@router.post(
    "/decisions", summary="decide(identifiers, scene): allow, restrict or deny, with measures and reasons"
)
async def decisions(
    request: Request,
    body: DecisionRequest = Body(...),
    # decide() reads every entry in force, the market-shared list too: never a department's to call.
    principal: Principal = allow_participant(*permissions.SHARED_LIST_READERS),
) -> dict[str, Any]:
    """Besides the decision: `feed_seq` and `feed_age_seconds` (the change-feed position of the index
    and how long ago it last matched the database, as on an enterprise node), and `degraded`: true
    while the database is unreachable and decisions come from the index as it was then.

    At most `FCX_PLAIN_BATCH_MAX` identifiers in one request (an enterprise node matches larger
    batches of its own users without plain identifiers). Each identifier draws on the organisation's
    budget (429 with `Retry-After` over quota; orgs.budget); a sweep through similar identifiers
    suspends its matching (403) until the platform reviews it. Every subject decided is one
    decision-log record (orgs.decision_log), with `purpose` if given. A measure the enterprise's
    rulebook excludes (orgs.rulebook) is not applied: it is listed under `not_applicable_by_rules` with
    the clause."""
    # async and free of I/O: one decision is a few dictionary look-ups, cheaper than a thread hop.
    app = request.app
    holder: IndexHolder = app.state.decision_index
    try:
        index = await holder.aget()
    except IndexWarming as exc:
        raise IndexNotReady(str(exc), headers={"Retry-After": "5"}) from exc
    asked = (
        [body.identifiers] if body.identifiers is not None else [s.identifiers for s in body.subjects or []]
    )
    count = sum(len(ids) for ids in asked)
    limit = app.state.settings.plain_batch_max
    if count > limit:
        field = "identifiers" if body.identifiers is not None else "subjects"
        raise ValidationProblem(
            f"At most {limit} identifiers in one request, got {count}: split the batch",
            errors=[
                {"in": "body", "field": field, "type": "too_long", "message": f"at most {limit} identifiers"}
            ],
        )
    if budgets.metered(principal) and principal.org_id is not None:
        budget: budgets.Budget = app.state.budget
        if not budget.knows(principal.org_id):
            await run_in_threadpool(
                budgets.learn_if_new, budget, app.state.db, principal.org_id, app.state.settings
            )
    # The measures its rules exclude: from memory (orgs.rulebook.EXCLUSIONS), read once per few seconds.
    excluded = rulebook.EXCLUSIONS.cached(principal.org_id) if principal.org_id is not None else {}
    if excluded is None:
        assert principal.org_id is not None
        excluded = await run_in_threadpool(rulebook.EXCLUSIONS.load, app.state.db, principal.org_id)
    if len(asked) > INLINE_BATCH:  # a big batch must not stall the loop
        out, records = await run_in_threadpool(_decide_all, app, index, body, principal, excluded)
    else:
        out, records = _decide_all(app, index, body, principal, excluded)
    writer: DecisionLogWriter = app.state.decision_log
    if not writer.try_submit(records):
        await run_in_threadpool(writer.submit, records)
    return {**out, **_freshness(holder, index)}


INLINE_BATCH = 50


def _decide_all(
    app: Any,
    index: EntryLookup,
    body: DecisionRequest,
    principal: Principal,
    excluded: Mapping[str, str],
) -> tuple[dict[str, Any], list[LogRecord]]:
    """Validate every identifier, charge the budget, watch the misses, then decide and make the
    decision-log records (one per subject). Nothing is charged for a request with a bad identifier."""
    today = china_today()
    if body.identifiers is not None:
        asked = [(body.identifiers, "identifiers")]
    else:
        asked = [(s.identifiers, f"subjects[{n}].identifiers") for n, s in enumerate(body.subjects or [])]
    pairs = [_canonical(ids, path) for ids, path in asked]
    digests = [[vault.identifier_index(t, v) for t, v in subject] for subject in pairs]
    if budgets.metered(principal) and principal.org_id is not None:
        budget: budgets.Budget = app.state.budget
        budget.charge_plain(principal.org_id, sum(len(p) for p in pairs))
        entries_for = index.entries_for
        misses = [
            pair
            for subject, keys in zip(pairs, digests, strict=True)
            for pair, k in zip(subject, keys, strict=True)
            if not entries_for(k)
        ]
        if misses:
            budget.observe_misses(principal.org_id, misses, key_prefix=principal.key_prefix)
    verdicts = [decide(index, keys, body.scene, today=today, excluded=excluded) for keys in digests]
    writer: DecisionLogWriter = app.state.decision_log
    assert principal.org_id is not None  # every key belongs to an organisation
    records = [
        LogRecord(
            org_id=principal.org_id,
            key_id=principal.key_id,
            kind="decision",
            digests=keys,
            identifier_count=len(keys),
            purpose=body.purpose,
            scene=body.scene,
            verdict=v.verdict,
            entry_ids=v.entry_ids,
            policy_version=writer.policy_version,
            feed_seq=index.seq,
        )
        for keys, v in zip(digests, verdicts, strict=True)
    ]
    if body.identifiers is not None:
        return {"scene": body.scene, **verdicts[0].to_dict()}, records
    return {"scene": body.scene, "results": [v.to_dict() for v in verdicts]}, records


def _canonical(identifiers: list[IdentifierIn], path: str) -> list[tuple[str, str]]:
    # identifier_keys names the first bad identifier (422); its `type:value` splits at the first colon.
    return [tuple(k.split(":", 1)) for k in identifier_keys(identifiers, path)]  # type: ignore[misc]


def active_policy_version(session: Session) -> str | None:
    """The version of the grading policy in force (the default policy's until one is loaded)."""
    version = session.scalar(select(PolicyVersion.version).where(PolicyVersion.active.is_(True)))
    return version if version is not None else default_policy().version


def _freshness(holder: IndexHolder, index: EntryLookup) -> dict[str, Any]:
    return {
        "feed_seq": index.seq,
        "feed_age_seconds": round(holder.age_seconds(), 1),
        "degraded": holder.degraded,
    }


class ActionOut(ResponseModel):
    """One action of the measure that this instruction names, in the plan's words (措施内容)."""

    code: str
    zh: str
    en: str
    notice_zh: str | None = Field(None, description="The text to pass on (measure 11: the notice to peers).")
    notice_en: str | None = None


class FeedbackFieldOut(ResponseModel):
    """A fact to confirm in `confirmations` when reporting the instruction executed."""

    field: str
    type: str = Field(description="bool | int | str | date")
    zh: str
    en: str


class InstructionOut(ResponseModel):
    id: uuid.UUID
    seq: int
    entry_id: uuid.UUID
    owner_org_id: uuid.UUID
    kind: str
    measure: str
    department_measure: bool
    params: dict[str, Any]
    actions: list[ActionOut] = Field(description="What to do (a lift: what to undo), in the plan's words.")
    audience: str | None = Field(None, description="Measure 11: employer (dismiss, notify peers) or peers.")
    audience_zh: str | None = None
    audience_en: str | None = None
    feedback: list[FeedbackFieldOut] = Field(description="What `executed` must confirm.")
    confirmations: dict[str, Any] | None
    lifts_id: uuid.UUID | None
    reason: str
    status: str
    issued_at: datetime
    ack_due_on: Any
    overdue: bool
    acknowledged_at: datetime | None
    outcome: str | None
    outcome_reason: str | None
    executed_at: datetime | None
    reported_at: datetime | None
    version: int
    measure_zh: str
    measure_en: str


_DERIVED = frozenset({"overdue", "actions", "audience_zh", "audience_en", "feedback"})


def instruction_out(i: Any) -> InstructionOut:
    cat = measure_catalogue()
    m = cat.measures.get(i.measure) or cat.department_measures.get(i.measure)
    data = {f: getattr(i, f) for f in InstructionOut.model_fields if hasattr(i, f) and f not in _DERIVED}
    zh, en = (m.zh, m.en) if m else (i.measure, i.measure)
    if i.kind == "lift" and m is not None and hasattr(m, "lift"):
        zh, en = m.lift.zh, m.lift.en
    actions = [
        ActionOut(
            code=a.code,
            zh=a.zh,
            en=a.en,
            notice_zh=a.notice.zh.format(entry_id=i.entry_id) if a.notice else None,
            notice_en=a.notice.en.format(entry_id=i.entry_id) if a.notice else None,
        )
        for a in i.named_actions()
    ]
    audience = i.audience_names()
    return InstructionOut(
        **data,
        overdue=i.overdue(china_today()),
        measure_zh=zh,
        measure_en=en,
        actions=actions,
        audience_zh=audience.zh if audience else None,
        audience_en=audience.en if audience else None,
        feedback=[FeedbackFieldOut(**f.model_dump()) for f in i.feedback_fields()],
    )


class InstructionPageOut(ResponseModel):
    instructions: list[InstructionOut]
    next_after: int | None


@router.get(
    "/instructions", response_model=InstructionPageOut, summary="Instructions addressed to the caller"
)
def list_instructions(
    session: Session = DB,
    # An enterprise receives instructions only while its sharing agreement is in force.
    principal: Principal = allow_participant(*READERS),
    after: int = Query(0, ge=0, le=INT64_MAX, description="Cursor: the last seq you have."),
    limit: int = Query(100, ge=1, le=1000),
    status: str | None = None,
    kind: str | None = Query(None, pattern="^(apply|lift)$"),
    overdue: bool | None = None,
    entry_id: uuid.UUID | None = None,
    org_id: uuid.UUID | None = Query(None, description="Platform staff: one organisation's instructions."),
) -> InstructionPageOut:
    page = service.list_instructions(
        session, principal, after=after, limit=limit, status=status, kind=kind, overdue=overdue,
        entry_id=entry_id, owner_org_id=org_id,
    )  # fmt: skip
    return InstructionPageOut(
        instructions=[instruction_out(i) for i in page.instructions], next_after=page.next_after
    )


class BulkAckIn(StrictModel):
    ids: list[uuid.UUID] = Field(min_length=1, max_length=bulk.MAX_ITEMS, description="Instruction ids.")


class BulkFeedbackItemIn(FeedbackIn):
    id: uuid.UUID


class BulkFeedbackIn(StrictModel):
    items: list[BulkFeedbackItemIn] = Field(
        min_length=1, max_length=bulk.MAX_ITEMS, description="One report per instruction, each listed once."
    )


_FEEDBACK_FIELDS = {"id", "outcome", "reason", "executed_at", "confirmations", "accounts_affected"}


class BulkOut(ResponseModel):
    count: int
    instructions: list[InstructionOut]


@router.post(
    "/instructions/ack",
    response_model=BulkOut,
    summary="Acknowledge many instructions (批量确认): all or none; a refusal names each item (ids[i])",
)
def acknowledge_many(
    body: BulkAckIn, session: Session = DB, principal: Principal = allow_participant(*ADDRESSEES)
) -> BulkOut:
    done = bulk.acknowledge_many(session, principal, body.ids)
    return BulkOut(count=len(done), instructions=[instruction_out(i) for i in done])


@router.post(
    "/instructions/feedback",
    response_model=BulkOut,
    summary="Report many executions (批量反馈): all or none; a refusal names each item (items[i])",
)
def feedback_many(
    body: BulkFeedbackIn, session: Session = DB, principal: Principal = allow_participant(*ADDRESSEES)
) -> BulkOut:
    items = [
        bulk.FeedbackItem(**i.model_dump(include=_FEEDBACK_FIELDS), receipt=i.receipt) for i in body.items
    ]
    done = bulk.report_many(session, principal, items)
    return BulkOut(count=len(done), instructions=[instruction_out(i) for i in done])


@router.post(
    "/instructions/{instruction_id}/ack", response_model=InstructionOut, summary="Acknowledge (repeat-safe)"
)
def acknowledge(
    instruction_id: uuid.UUID, session: Session = DB, principal: Principal = allow_participant(*ADDRESSEES)
) -> InstructionOut:
    i = service.get_instruction(session, instruction_id, principal)
    return instruction_out(service.acknowledge(session, principal, i))


@router.post(
    "/instructions/{instruction_id}/feedback", response_model=InstructionOut, summary="Report execution"
)
def feedback(
    instruction_id: uuid.UUID,
    body: FeedbackIn,
    session: Session = DB,
    principal: Principal = allow_participant(*ADDRESSEES),
) -> InstructionOut:
    i = service.get_instruction(session, instruction_id, principal)
    reported = service.report(
        session, principal, i, outcome=body.outcome, reason=body.reason, executed_at=body.executed_at,
        confirmations=body.confirmations, receipt=body.receipt, accounts_affected=body.accounts_affected,
    )  # fmt: skip
    return instruction_out(reported)


@router.get("/policy", summary="The active grading policy")
def get_policy(session: Session = DB, _: Principal = allow(*READERS)) -> dict[str, Any]:
    policy = service.active_policy(session)
    return policy.model_dump(mode="json")


@router.post("/policies", summary="Load a new policy version (YAML body)", status_code=201)
def load_policy(
    request_body: str = Body(..., media_type="application/yaml"),
    session: Session = DB,
    principal: Principal = allow(R.platform_admin, fresh=True),
) -> dict[str, Any]:
    try:
        row = service.load_policy(session, principal.actor, request_body, "policy.yaml")
    except PolicyError as exc:
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "policy", "type": "policy", "message": str(exc)}]
        ) from exc
    return {"version": row.version, "active": row.active, "loaded_at": row.loaded_at.isoformat()}


@router.post(
    "/policies/check",
    summary="Check a policy (YAML body) against the 基础清单 and show what it would change (a dry run)",
)
def check_policy(
    request_body: str = Body(..., media_type="application/yaml"),
    details: bool = Query(False, description="Name the entries per organisation and measure."),
    session: Session = DB,
    _: Principal = allow(R.platform_admin),
) -> dict[str, Any]:
    """422 naming the line, the key and the rule it breaks for a policy that is not valid or grants a
    measure beyond the 基础清单; else what grading the entries in force under it would change: the
    entries graded differently and, per organisation, the instructions newly applied or lifted by
    measure (sanctions.impact). Nothing is written."""
    try:
        policy = checked_policy(request_body, "policy.yaml")
    except PolicyError as exc:
        raise ValidationProblem(
            str(exc), errors=[{"in": "body", "field": "policy", "type": "policy", "message": str(exc)}]
        ) from exc
    impact = policy_impact(session, policy, china_today())
    return {"valid": True, "version": policy.version, "impact": impact.to_dict(details=details)}


@router.get("/catalogues/measures", summary="The 13 measures, department measures and scenes")
def catalogue(_: Principal = allow(*READERS)) -> dict[str, Any]:
    """With the kinds of department and the 基础清单 (what each measure may be used for)."""
    cat = measure_catalogue()
    return {
        "measures": [m.model_dump(mode="json") for m in cat.measures.values()],
        "department_measures": [d.model_dump(mode="json") for d in cat.department_measures.values()],
        "scenes": [s.model_dump(mode="json") for s in cat.scenes.values()],
        "department_kinds": [k.model_dump(mode="json") for k in department_kinds().values()],
        "basic_list": [i.model_dump(mode="json") for i in basic_list().items.values()],
    }
