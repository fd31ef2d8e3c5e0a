"""The notice before listing (告知书): produced when the notice period opens, delivered, recorded.

国办发〔2020〕49号: before a subject is listed it is told the facts, the basis, the measures that will
apply, how the listing ends and the remedies, and it may state its case and defend itself (陈述申辩).
Opening an entry's notice period (`workflows.entries.take_step`, action `open_notice`) calls
`issue_notice`, which

1. grades the entry now under the active policy, to say which measures will apply (the measures are
   fixed at publication, under the policy active then: the notice says so);
2. freezes what the notice says in a `Notice` row (`content`, sealed: it names the subject) with its
   number (`GZ20261205-XXXXXXXX`), its period and where it goes — rendering the HTML and the PDF from
   that record, so both say the same and say it as it was issued (`notice_models`);
3. delivers it to the subject's contact (`Entry.subject_contact`): by e-mail with the PDF attached
   (`appeals.notify`), else by SMS (`appeals.sms`), both after the commit with a receipt that records
   `sent` or `failed`; with neither, the notice is a printable letter (the PDF, addressed to the postal
   address given) and its status `letter_required` tells the reviewer to post it.

A failed delivery never blocks the step: it is recorded (status, audit) and shown to the reviewer,
who can print the letter instead.
"""

from __future__ import annotations

import io
import logging
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, ListFlowable, ListItem, Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus import Table as PdfTable
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from fanchaoxin.appeals.cases import new_number
from fanchaoxin.appeals.notice_models import Notice
from fanchaoxin.appeals.notify import MailFile, Message, Receipt, queue
from fanchaoxin.appeals.sms import Sms, queue_sms
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import NoticeSummaryOut
from fanchaoxin.core import audit
from fanchaoxin.core.audit import SYSTEM, Actor
from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.core.db import utcnow
from fanchaoxin.core.errors import Conflict, NotFound, ValidationProblem
from fanchaoxin.core.identifiers import IdentifierError, mask, mask_person_name
from fanchaoxin.core.settings import get_settings
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions.policy import measure_catalogue
from fanchaoxin.sanctions.service import active_policy, graded_measures
from fanchaoxin.subjects.models import LiableLink, Subject

log = logging.getLogger(__name__)

NOTICE_PREFIX = "GZ"  # 告知
# Where the subject answers: the public form (and the API route behind it), printed on the notice.
STATEMENT_FORM_PATH = "/console/public/statement"
STATEMENT_API_PATH = "/v1/public/statements"
OBJECTION_FORM_PATH = "/console/public/objection"
REPAIR_FORM_PATH = "/console/public/repair"
PLATFORM_NAME = "全国信用信息共享平台（反炒信子系统）"
ACTION_PLAN = "《关于对电子商务及分享经济领域炒信行为相关失信主体实施联合惩戒的行动计划》"
GUIDANCE_2020 = (
    "《国务院办公厅关于进一步完善失信约束制度构建诚信建设长效机制的指导意见》（国办发〔2020〕49号）"
)

# How the notice names what the catalogues and enums only code (the notice is a Chinese legal text).
IDENTIFIER_ZH = {
    "uscc": "统一社会信用代码",
    "resident_id": "居民身份证号码",
    "phone": "手机号码",
    "email": "电子邮箱",
    "domain": "网站域名",
    "app": "移动应用包名",
    "platform_account": "平台账号",
    "social_account": "社交媒体账号",
    "device": "设备标识",
    "courier_staff": "寄递物流从业人员工号",
    "waybill_prefix": "运单号前缀",
}
ROLE_ZH = {"organizer": "组织者", "participant": "参与者", "facilitator": "帮助者"}
SERVICE_ZH = {
    "account": "账号服务",
    "data": "数据服务",
    "technical": "技术服务",
    "logistics": "物流服务",
    "funding": "资金服务",
    "information_spreading": "信息传播服务",
}
LIABLE_ROLE_ZH = {
    "legal_representative": "法定代表人",
    "principal": "主要负责人",
    "directly_responsible": "直接责任人",
}


# --- what the notice says -------------------------------------------------------------------------------


def _masked(type_: str, value: str) -> str:
    try:
        return mask(type_, value)
    except IdentifierError:
        return "***"


def mask_address(address: str) -> str:
    """A postal address as the notice's record shows where a letter goes: the first 6 characters."""
    text = address.strip()
    return text[:6] + "****" if len(text) > 6 else "****"


def _subject_as_told(entry: Entry) -> dict[str, Any]:
    """The subject as the submission named it (what the notice is about), identifiers masked."""
    sent = entry.submitted_subject or {
        "kind": entry.subject.kind,
        "name": entry.subject.name,
        "identifiers": [{"type": i.type, "value": i.value} for i in entry.subject.identifiers],
    }
    kind = catalogues().subject_kinds.get(sent["kind"])
    return {
        "kind": sent["kind"],
        "kind_zh": kind.zh if kind else sent["kind"],
        "name": sent["name"],
        "identifiers": [
            {"type": IDENTIFIER_ZH.get(i["type"], i["type"]), "value": _masked(i["type"], i["value"])}
            for i in sent["identifiers"]
        ],
    }


def _liable_persons(session: Session, entry: Entry) -> list[dict[str, str]]:
    """The persons the submission names to be listed with the unit, their names masked."""
    rows = session.execute(
        select(LiableLink.role, Subject.name)
        .join(Subject, Subject.id == LiableLink.person_id)
        .where(LiableLink.entry_id == entry.id)
        .order_by(LiableLink.role, LiableLink.created_at)
    )
    return [{"role": LIABLE_ROLE_ZH.get(role, role), "name": mask_person_name(name)} for role, name in rows]


def _measures_now(session: Session, entry: Entry) -> tuple[str, list[dict[str, Any]]]:
    """(policy version, the measures the active policy gives the entry today), by their plan number,
    each with the actions it names (the plan's words) and the points measure 5 would deduct."""
    policy = active_policy(session)
    measures = measure_catalogue().measures
    out = []
    for g in graded_measures(policy, entry):
        m = measures[g["code"]]
        named = set(g["actions"])
        out.append(
            {
                "number": m.number,
                "code": g["code"],
                "name": m.zh,
                "actions": [a.zh for a in m.actions if a.code in named],
                "points": g["params"].get("points"),
            }
        )
    return policy.version, out


def notice_content(
    session: Session, entry: Entry, *, number: str, issued_on: date, ends_on: date
) -> dict[str, Any]:
    """What the notice says, as a record frozen at issue (JSON-able; the HTML and PDF render it)."""
    cat = catalogues()
    severity = cat.severities[entry.severity]
    basis = cat.bases[entry.basis]
    org = session.get(Organisation, entry.owner_org_id)
    contact = entry.subject_contact or {}
    subject = _subject_as_told(entry)
    policy_version, measures = _measures_now(session, entry)
    settings = get_settings()
    base = settings.public_base_url.rstrip("/")
    return {
        "number": number,
        "issued_on": issued_on.isoformat(),
        "ends_on": ends_on.isoformat(),
        "organisation": org.name if org is not None else "",
        "subject": subject,
        "addressee": contact.get("addressee") or subject["name"],
        "postal_address": contact.get("postal_address"),
        # In the catalogue's order, as the action plan lists them.
        "behaviours": [b.zh for code, b in cat.behaviours.items() if code in entry.behaviours],
        "role": ROLE_ZH.get(entry.role, entry.role),
        "services": [SERVICE_ZH.get(s, s) for s in entry.services or []],
        "occurred_from": entry.occurred_from.isoformat() if entry.occurred_from else None,
        "occurred_to": entry.occurred_to.isoformat() if entry.occurred_to else None,
        "facts": entry.facts,
        "gains": dict(entry.gains or {}),
        "basis": {
            "code": entry.basis,
            "name": basis.zh,
            "document_number": entry.document_number,
            "issuing_authority": entry.issuing_authority,
            "document_date": entry.document_date.isoformat() if entry.document_date else None,
        },
        "severity": {
            "code": entry.severity,
            "name": severity.zh,
            "min_months": severity.min_months,
            "max_months": severity.max_months,
        },
        "policy_version": policy_version,
        "measures": measures,
        "liable_persons": _liable_persons(session, entry),
        "links": {
            "statement": base + STATEMENT_FORM_PATH,
            "statement_api": STATEMENT_API_PATH,
            "objection": base + OBJECTION_FORM_PATH,
            "repair": base + REPAIR_FORM_PATH,
        },
        "objection_working_days": settings.objection_decide_working_days,
    }


@dataclass(frozen=True)
class Section:
    """One numbered part of the notice: paragraphs, a numbered list, paragraphs after it."""

    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    closing: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoticeDocument:
    """The notice as it reads, in order: the one wording both the HTML and the PDF print."""

    title: str
    number: str
    addressee: tuple[str, ...]  # the letter's address block
    particulars: tuple[tuple[str, str], ...]  # (label, value) of the subject
    opening: str
    sections: tuple[Section, ...]
    signature: tuple[str, ...]


def _date_zh(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def _ending(severity: dict[str, Any]) -> tuple[str, ...]:
    low, high = severity["min_months"], severity["max_months"]
    repair = (
        f"公示满 {low} 个月后，当事人可作出信用承诺（信用承诺将一并公示）并提交已纠正失信行为的证明，"
        "申请信用修复；平台审核通过的，记录即移出，各参与企业解除惩戒措施。"
        if low
        else "公示后当事人即可作出信用承诺（信用承诺将一并公示）并提交已纠正失信行为的证明，申请信用修复；"
        "平台审核通过的，记录即移出，各参与企业解除惩戒措施。"
    )
    return (
        f"本记录失信程度为“{severity['name']}”，自公示之日起满 {high} 个月自动移出（到期移出），"
        "届时各参与企业解除依本记录采取的惩戒措施。",
        repair,
    )


def _measure_line(m: dict[str, Any]) -> str:
    line = f"{m['name']}（行动计划第 {m['number']} 项措施）"
    actions = "；".join(m.get("actions") or [])
    if actions:
        line += f"：{actions}"
    if m.get("points") is not None:
        line += f"（扣除 {m['points']} 分）"
    return line


def notice_document(content: dict[str, Any]) -> NoticeDocument:
    """The notice's wording from its frozen record (`notice_content`)."""
    subject = content["subject"]
    basis = content["basis"]
    ends = _date_zh(content["ends_on"])
    facts: list[str] = []
    behaviours = "、".join(content["behaviours"]) or "—"
    period = ""
    if content.get("occurred_from") or content.get("occurred_to"):
        period = (
            f"{_date_zh(content['occurred_from']) if content.get('occurred_from') else '—'}至"
            f"{_date_zh(content['occurred_to']) if content.get('occurred_to') else '—'}期间，"
        )
    role = content["role"] + (f"（提供{'、'.join(content['services'])}）" if content["services"] else "")
    facts.append(
        f"经{content['organisation']}监测发现并报送，{period}你方以{role}身份实施了{behaviours}行为。"
    )
    facts.append(f"具体事实：{content['facts'].strip()}")
    gains = content.get("gains") or {}
    if gains.get("brushed_orders") is not None or gains.get("points_gained") is not None:
        parts = []
        if gains.get("brushed_orders") is not None:
            parts.append(f"虚假交易 {gains['brushed_orders']} 笔")
        if gains.get("points_gained") is not None:
            parts.append(f"由此获得信用积分 {gains['points_gained']} 分")
        facts.append("经认定，" + "，".join(parts) + "。")
    doc = []
    if basis.get("document_number"):
        doc.append(f"文书编号：{basis['document_number']}")
    if basis.get("issuing_authority"):
        doc.append(f"作出单位：{basis['issuing_authority']}")
    if basis.get("document_date"):
        doc.append(f"文书日期：{_date_zh(basis['document_date'])}")
    grounds = (
        f"认定依据：{basis['name']}" + (f"（{'；'.join(doc)}）" if doc else "") + "。",
        f"依据{ACTION_PLAN}第一部分，上述行为属于“炒信”行为；依据该行动计划第二部分，"
        "参加联合行动的企业对“炒信黑名单”主体联合采取惩戒措施。"
        f"依据{GUIDANCE_2020}，列入前依法告知，当事人享有陈述、申辩的权利。",
    )
    measures = tuple(_measure_line(m) for m in content["measures"])
    measure_paragraphs = [
        f"本记录拟认定的失信程度为“{content['severity']['name']}”。按平台现行惩戒政策"
        f"（版本 {content['policy_version']}），列入后参加联合行动的企业将在各自业务范围内采取下列惩戒措施"
        "（最终措施以公示时平台有效的惩戒政策为准）：",
    ]
    if not measures:
        measure_paragraphs.append("按现行政策，本记录不适用惩戒措施，仅在参加联合行动的企业间共享。")
    liable: tuple[str, ...] = ()
    if content["liable_persons"]:
        persons = "、".join(f"{p['role']}{p['name']}" for p in content["liable_persons"])
        liable = (f"本记录公示时，{persons}将作为责任人一并列入，并由参加联合行动的企业采取相应惩戒措施。",)
    links = content["links"]
    remedies = (
        f"陈述申辩：对上述事实、依据或拟采取的措施有不同意见的，可于{ends}（含当日）前，"
        f"通过 {links['statement']}（接口 {links['statement_api']}）"
        f"填写本告知书编号 {content['number']} 和本主体的一项标识，提交陈述、申辩意见并附证据材料。"
        "平台审核人员在作出是否列入的决定时逐项答复；逾期未提交的，视为放弃陈述、申辩。",
        f"异议：记录公示后，认为记录有误的，可通过 {links['objection']} 提出异议，记录即标注为“有异议”，"
        f"平台在 {content['objection_working_days']} 个工作日内处理（需向报送单位核查的，依规定延长）。",
        f"信用修复：符合条件的，可通过 {links['repair']} 申请信用修复（见第四项）。",
    )
    particulars = [
        ("当事人", subject["name"]),
        ("主体类型", subject["kind_zh"]),
        *((i["type"], i["value"]) for i in subject["identifiers"]),
        ("报送单位", content["organisation"]),
        ("告知期", f"至{ends}（含当日）"),
    ]
    addressee = [f"{content['addressee']}："]
    if content.get("postal_address"):
        addressee.insert(0, f"{content['postal_address']}")
    return NoticeDocument(
        title="拟列入炒信黑名单告知书",
        number=content["number"],
        addressee=tuple(addressee),
        particulars=tuple(particulars),
        opening=f"{content['organisation']}报送了你方的“炒信”失信信息，{PLATFORM_NAME}拟将你方列入炒信黑名单，"
        "在参加联合行动的企业间共享并实施联合惩戒。现将有关事项告知如下：",
        sections=(
            Section("一、失信事实", tuple(facts)),
            Section("二、认定依据", grounds),
            Section("三、失信程度与拟采取的惩戒措施", tuple(measure_paragraphs), measures, liable),
            Section("四、移出与信用修复", _ending(content["severity"])),
            Section("五、权利救济", (), remedies),
        ),
        signature=(PLATFORM_NAME, f"报送单位：{content['organisation']}", _date_zh(content["issued_on"])),
    )


# --- HTML and PDF -----------------------------------------------------------------------------------------

_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# reportlab's built-in CID font for Simplified Chinese: the PDF viewer supplies the glyphs, so the
# platform ships no font file and the text stays extractable.
PDF_FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(PDF_FONT))
_BODY = ParagraphStyle("body", fontName=PDF_FONT, fontSize=10.5, leading=17, wordWrap="CJK", spaceAfter=4)
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=18, leading=26, alignment=1, spaceAfter=6)
_NUMBER = ParagraphStyle("number", parent=_BODY, alignment=1, spaceAfter=10)
_HEADING = ParagraphStyle("heading", parent=_BODY, fontSize=12, leading=20, spaceBefore=8)
_RIGHT = ParagraphStyle("right", parent=_BODY, alignment=2, spaceAfter=0)


def render_html(content: dict[str, Any]) -> str:
    """The notice as an HTML page (`templates/notice.html`)."""
    return _PAGES.get_template("notice.html").render(doc=notice_document(content))


def render_pdf(content: dict[str, Any]) -> bytes:
    """The notice as a printable A4 PDF (a letter, the e-mail's attachment)."""
    doc = notice_document(content)

    def p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
        return Paragraph(escape(text), style)

    story: list[Flowable] = [p(doc.title, _TITLE), p(f"编号：{doc.number}", _NUMBER)]
    story += [p(line) for line in doc.addressee]
    table = PdfTable([[p(k), p(v)] for k, v in doc.particulars], colWidths=[38 * mm, 122 * mm])
    story += [Spacer(1, 4), table, Spacer(1, 6), p(doc.opening)]
    for section in doc.sections:
        story.append(p(section.heading, _HEADING))
        story += [p(text) for text in section.paragraphs]
        if section.items:
            story.append(
                ListFlowable(
                    [ListItem(p(item), leftIndent=14) for item in section.items],
                    bulletType="1",
                    bulletFontName=PDF_FONT,
                    bulletFontSize=10.5,
                    leftIndent=14,
                )
            )
        story += [p(text) for text in section.closing]
    story.append(Spacer(1, 16))
    story += [p(line, _RIGHT) for line in doc.signature]
    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        title=f"{doc.title} {doc.number}",
        author=PLATFORM_NAME,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=22 * mm,
        bottomMargin=22 * mm,
        invariant=True,  # the same notice gives the same bytes (no creation time, no random id)
    ).build(story)
    return out.getvalue()


def notice_text(content: dict[str, Any]) -> str:
    """The notice as plain text (the e-mail's body)."""
    doc = notice_document(content)
    lines = [doc.title, f"编号：{doc.number}", "", *doc.addressee, ""]
    lines += [f"{k}：{v}" for k, v in doc.particulars]
    lines += ["", doc.opening]
    for section in doc.sections:
        lines += ["", section.heading, *section.paragraphs]
        lines += [f"{i}. {item}" for i, item in enumerate(section.items, start=1)]
        lines += section.closing
    lines += ["", *doc.signature]
    return "\n".join(lines)


def sms_text(content: dict[str, Any]) -> str:
    """The notice by SMS: who reported, what it means, the number and where to state one's case."""
    ends = _date_zh(content["ends_on"])
    return (
        f"【反炒信】{content['organisation']}报送你方炒信失信信息，平台拟将你方列入炒信黑名单"
        f"（告知书编号 {content['number']}）。如有异议，请于{ends}前在 {content['links']['statement']} "
        "提交陈述申辩；告知书全文可向平台索取。"
    )


# --- issuing and delivering ------------------------------------------------------------------------------


def delivery_plan(entry: Entry) -> tuple[str, str | None]:
    """How the notice goes to the subject — e-mail, else SMS, else a printed letter — and where (masked):
    what `issue_notice` does, and what the reviewer is told before opening the notice period."""
    contact = entry.subject_contact or {}
    if contact.get("email"):
        return "email", _masked("email", contact["email"])
    if contact.get("phone"):
        return "sms", _masked("phone", contact["phone"])
    address = contact.get("postal_address")
    return "letter", mask_address(address) if address else None


def issue_notice(session: Session, actor: Actor, entry: Entry, *, today: date) -> Notice:
    """Produce the notice of this entry and deliver it to the subject's contact (or print a letter)."""
    assert entry.notice_ends_on is not None, "the notice period opens before its notice is issued"
    number = new_number(NOTICE_PREFIX, today)
    content = notice_content(session, entry, number=number, issued_on=today, ends_on=entry.notice_ends_on)
    contact = entry.subject_contact or {}
    channel, to = delivery_plan(entry)
    status = "letter_required" if channel == "letter" else "queued"
    notice = Notice(
        number=number,
        entry_id=entry.id,
        issued_on=today,
        ends_on=entry.notice_ends_on,
        channel=channel,
        delivered_to=to,
        delivery_status=status,
        content=content,
        issued_by=actor.name,
    )
    session.add(notice)
    session.flush()
    audit.record(
        session,
        actor,
        "notice.issue",
        "notice",
        notice.id,
        after=notice.snapshot(),
        detail={
            "entry_id": str(entry.id),
            "number": number,
            "channel": channel,
            "delivery_status": status,
            "measures": [m["code"] for m in content["measures"]],
        },
    )
    bind = session.get_bind()
    # The receipt writes in a transaction of its own, after this one committed: on the engine.
    receipt = _receipt(bind.engine if isinstance(bind, Connection) else bind, notice.id)
    if channel == "email":
        queue(
            session,
            Message(
                to=contact["email"],
                subject=f"拟列入炒信黑名单告知书 Notice before listing ({number})",
                body=notice_text(content),
                case=number,
                event="notice.issued",
                files=(MailFile(f"{number}.pdf", "application/pdf", render_pdf(content)),),
                on_result=receipt,
            ),
        )
    elif channel == "sms":
        queue_sms(session, Sms(contact["phone"], sms_text(content), number, "notice.issued"), receipt)
    return notice


def _receipt(engine: Engine, notice_id: uuid.UUID) -> Receipt:
    """Record, after the commit, whether the notice's e-mail or SMS went out (its own transaction)."""

    def record(ok: bool, error: str | None) -> None:
        with Session(engine, expire_on_commit=False) as session:
            notice = session.get(Notice, notice_id)
            if notice is None:
                return
            before = notice.snapshot()
            notice.delivery_status = "sent" if ok else "failed"
            notice.delivered_at = utcnow() if ok else None
            notice.delivery_note = None if ok else f"{notice.channel} delivery failed: {error}"
            session.flush()
            audit.record(
                session,
                SYSTEM,
                "notice.delivered" if ok else "notice.delivery_failed",
                "notice",
                notice.id,
                before=before,
                after=notice.snapshot(),
                detail={"number": notice.number, "channel": notice.channel, "error": error},
            )
            session.commit()
        if not ok:
            log.warning("notice %s: delivery failed (%s)", notice_id, error)

    return record


# --- reading ---------------------------------------------------------------------------------------------


def notice_of(session: Session, entry_id: uuid.UUID) -> Notice | None:
    return session.scalar(select(Notice).where(Notice.entry_id == entry_id))


def get_notice(session: Session, entry_id: uuid.UUID) -> Notice:
    notice = notice_of(session, entry_id)
    if notice is None:
        raise NotFound(f"Entry {entry_id} has no notice (its notice period was never opened)")
    return notice


def record_letter_posted(
    session: Session, actor: Actor, entry_id: uuid.UUID, *, posted_on: date, reference: str, today: date
) -> Notice:
    """The reviewer posted the printed notice (no e-mail or phone, or their delivery failed): when, and the
    postal reference (挂号信 number) that proves it. The notice period itself is not moved."""
    notice = get_notice(session, entry_id)
    if notice.delivery_status not in ("letter_required", "failed"):
        raise Conflict(
            f"The notice was delivered ({notice.delivery_status}); there is no letter to record"
        )
    problems = []
    if posted_on > today:
        problems.append({"in": "body", "field": "posted_on", "message": "in the future"})
    elif posted_on < notice.issued_on:
        message = f"before the notice was issued, {notice.issued_on.isoformat()}"
        problems.append({"in": "body", "field": "posted_on", "message": message})
    reference = reference.strip()
    if not 3 <= len(reference) <= 100:
        problems.append(
            {"in": "body", "field": "reference", "message": "the postal reference, 3 to 100 characters"}
        )
    if problems:
        raise ValidationProblem("The letter's posting date or reference is not right", errors=problems)
    before = {"delivery_status": notice.delivery_status, "delivery_note": notice.delivery_note}
    notice.channel = "letter"
    notice.delivery_status = "letter_posted"
    notice.delivery_note = f"posted on {posted_on.isoformat()}, reference {reference}"
    notice.delivered_at = utcnow()
    session.flush()
    audit.record(
        session, actor, "notice.letter_posted", "notice", notice.id, before=before,
        after={"delivery_status": notice.delivery_status, "delivery_note": notice.delivery_note},
        detail={"entry_id": str(entry_id)},
    )  # fmt: skip
    return notice


def by_number(session: Session, number: str) -> Notice | None:
    return session.scalar(select(Notice).where(Notice.number == number.strip().upper()))


def summary(notice: Notice | None) -> NoticeSummaryOut | None:
    """What a reviewer is told of a notice: number, period, channel, where it went (masked), status.

    `letter_required` is also set when an e-mail or SMS failed: the reviewer then posts the letter.
    """
    return None if notice is None else describe(notice)


def describe(notice: Notice) -> NoticeSummaryOut:
    """`summary` of a notice that exists."""
    return NoticeSummaryOut(
        number=notice.number,
        issued_on=notice.issued_on,
        ends_on=notice.ends_on,
        channel=notice.channel,
        delivered_to=notice.delivered_to,
        delivery_status=notice.delivery_status,
        delivery_note=notice.delivery_note,
        delivered_at=notice.delivered_at,
        letter_required=notice.delivery_status in ("letter_required", "failed"),
    )


def summary_of(session: Session, entry_id: uuid.UUID) -> NoticeSummaryOut | None:
    return summary(notice_of(session, entry_id))
