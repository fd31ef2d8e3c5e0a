"""Demo data for `make run` / `fcx serve --demo`: the platform, two departments, three enterprises.

Loaded once, on an empty database; the keys are printed that one time only (they are stored hashed).
All names and numbers are fictitious; the USCCs carry valid check characters.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas
from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session

from fanchaoxin.appeals import repair, reports
from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.lifecycle import Action
from fanchaoxin.blacklist.models import Entry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.console.auth import create_user
from fanchaoxin.console.labels import label
from fanchaoxin.consultation import service as consultation
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import add_working_days, china_today
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import agreements, rulebook, service
from fanchaoxin.orgs.models import Organisation
from fanchaoxin.sanctions import service as sanctions
from fanchaoxin.sanctions.models import Instruction
from fanchaoxin.workflows import appeals as due_process
from fanchaoxin.workflows.entries import take_step
from fanchaoxin.workflows.jobs import run_jobs

DEMO_ACTOR = Actor("system:demo")

B = BusinessType

ORGANISATIONS: list[dict[str, object]] = [
    {
        "kind": OrgKind.platform,
        "name": "全国信用信息共享平台（反炒信子系统）",
        "name_en": "National Credit Information Sharing Platform (anti credit-hyping subsystem)",
        "roles": [Role.platform_admin, Role.platform_reviewer, Role.auditor],
    },
    {
        "kind": OrgKind.department,
        "name": "示范市市场监督管理局",
        "name_en": "Demo City Market Regulation Administration",
        "department_kind": "market_regulation",
        "roles": [Role.department_officer],
    },
    {
        "kind": OrgKind.department,
        "name": "中国人民银行示范市分行",
        "name_en": "People's Bank of China, Demo City Branch",
        "department_kind": "pboc",
        "roles": [Role.department_officer],
    },
    {
        "kind": OrgKind.enterprise,
        "name": "示例优选电子商务有限公司",
        "name_en": "Demo Select E-commerce Co., Ltd.",
        "uscc": "91330100MA2D7K8Q9U",
        "business_types": [B.ecommerce, B.internet_finance],
        "agreement_signed_on": date(2016, 11, 1),
        "declared_users": 50_000_000,
        "roles": [Role.enterprise_operator, Role.enterprise_node],
    },
    {
        "kind": OrgKind.enterprise,
        "name": "示例出行共享科技有限公司",
        "name_en": "Demo Ride Sharing Technology Co., Ltd.",
        "uscc": "91110108MA01W3NH6C",
        "business_types": [B.sharing_economy],
        "agreement_signed_on": date(2017, 3, 15),
        "declared_users": 20_000_000,
        "roles": [Role.enterprise_operator, Role.enterprise_node],
    },
    {
        "kind": OrgKind.enterprise,
        "name": "示例速递物流有限公司",
        "name_en": "Demo Express Logistics Co., Ltd.",
        "uscc": "91440300MA5G2R4T88",
        "business_types": [B.logistics],
        "agreement_signed_on": date(2017, 6, 1),
        "declared_users": 5_000_000,
        "roles": [Role.enterprise_operator, Role.enterprise_node],
    },
]


@dataclass
class DemoKey:
    organisation: str
    role: str
    secret: str


@dataclass
class DemoUser:
    organisation: str
    role: str
    username: str
    password: str


class DemoKeys(list[DemoKey]):
    """The demo's API keys, with the console users (`.users`) made alongside them."""

    users: list[DemoUser]


# One console user per role a person signs in with (the console's sign-in page).
DEMO_USERS: list[tuple[int, Role, str]] = [
    (0, Role.platform_admin, "admin"),
    (0, Role.platform_reviewer, "reviewer"),
    (0, Role.auditor, "auditor"),
    (1, Role.department_officer, "market"),
    (3, Role.enterprise_operator, "shop"),
    (4, Role.enterprise_operator, "ride"),
    (5, Role.enterprise_operator, "courier"),
]
CONSOLE_URL = "http://127.0.0.1:8000/console/"


def load_demo(db: Database) -> list[DemoKey] | None:
    """Create the demo organisations and keys; `None` when the database already has a platform."""
    with db.session() as session:
        if session.scalar(select(Organisation.id).where(Organisation.kind == OrgKind.platform.value)):
            return None
        keys = DemoKeys()
        orgs: list[Organisation] = []
        for spec in ORGANISATIONS:
            spec = dict(spec)
            roles = spec.pop("roles")
            org = service.create_organisation(session, DEMO_ACTOR, **spec)  # type: ignore[arg-type]
            orgs.append(org)
            for role in roles:  # type: ignore[attr-defined]
                named = "演示：" + label("role", role.value, "zh_CN")
                issued = service.create_key(session, DEMO_ACTOR, org, role, label=named)
                keys.append(DemoKey(org.name, role.value, issued.secret))
        _demo_entries(session, orgs)
        _demo_participation(session, orgs, china_today())
        keys.users = _demo_users(session, orgs)
        return keys


def _demo_users(session: Session, orgs: list[Organisation]) -> list[DemoUser]:
    """Console users with random passwords, printed once like the keys (only salted hashes are stored)."""

    users = []
    for index, role, username in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        org = orgs[index]
        create_user(session, DEMO_ACTOR, username=username, password=password, org=org, role=role)
        users.append(DemoUser(org.name, role.value, username, password))
    return users


def _demo_entries(session: Session, orgs: list[Organisation]) -> None:
    """One entry in every state of the lifecycle, from the enterprises and a department."""

    reviewer = Actor("system:demo-reviewer", orgs[0].id)
    market, ecommerce, ride, courier = orgs[1], orgs[3], orgs[4], orgs[5]
    today = china_today()

    def entry(org: Organisation, body: dict[str, object]) -> object:
        return registry.submit(
            session, Actor(f"system:demo:{org.name}", org.id), org.id, EntryIn.model_validate(body)
        )

    def steps(e: object, *actions: tuple[Action, str], day: object = None) -> None:
        for action, reason in actions:
            take_step(session, reviewer, e, action, reason=reason, today=day or today)  # type: ignore[arg-type]

    # submitted: an e-commerce platform's finding, just in
    entry(
        ecommerce,
        {
            "subject": {
                "kind": "platform_account",
                "name": "小明刷单工作室",
                "identifiers": [
                    {"type": "platform_account", "value": "demo-select:u88012345"},
                    {"type": "phone", "value": "13912345678"},
                ],
            },
            "behaviours": ["order_brushing", "fake_review"],
            "role": "organizer",
            "severity": "general",
            "basis": "enterprise_finding",
            "facts": "2026年10月组织 312 名买家对 14 家店铺刷单 2,140 笔并发布虚假好评。",
        },
    )
    # under review: a ride-sharing platform's subsidy brushing
    e = entry(
        ride,
        {
            "subject": {
                "kind": "individual",
                "name": "王建国",
                "identifiers": [{"type": "resident_id", "value": "11010519491231002X"}],
            },
            "behaviours": ["subsidy_brushing"],
            "role": "participant",
            "severity": "minor",
            "basis": "enterprise_finding",
            "facts": "司机账号与乘客账号串通虚构行程 86 单，骗取补贴 4,300 元。",
        },
    )
    steps(e, (Action.start_review, ""))
    # notice period: a courier company's empty parcels
    e = entry(
        courier,
        {
            "subject": {
                "kind": "courier_staff",
                "name": "赵六",
                "identifiers": [{"type": "courier_staff", "value": "91440300MA5G2R4T88:SZ-0451"}],
            },
            "behaviours": ["empty_parcel"],
            "role": "facilitator",
            "services": ["logistics"],
            "severity": "general",
            "basis": "enterprise_finding",
            "facts": "揽收空包裹 1,870 件，伪造物流记录。",
        },
    )
    steps(e, (Action.start_review, ""), (Action.open_notice, ""))
    # published, with its legal representative: an administrative penalty
    e = entry(
        market,
        {
            "subject": {
                "kind": "unit",
                "name": "示范市刷刷乐网络科技有限责任公司",
                "identifiers": [{"type": "uscc", "value": "91110000600037341L"}],
            },
            "behaviours": ["order_brushing", "personal_data_trade"],
            "role": "organizer",
            "severity": "serious",
            "basis": "administrative_penalty",
            "document_number": "示市监罚〔2026〕88号",
            "issuing_authority": "示范市市场监督管理局",
            "document_date": (today - timedelta(days=30)).isoformat(),
            "facts": "经营刷单平台，组织刷单 12 万余笔，倒卖买家个人信息 3 万余条。",
            "liable_persons": [
                {
                    "role": "legal_representative",
                    "name": "钱七",
                    "identifiers": [{"type": "resident_id", "value": "110101199003071233"}],
                }
            ],
        },
    )
    steps(e, (Action.start_review, ""), (Action.publish, ""))
    # disputed: published, then an objection was filed
    e = entry(
        ecommerce,
        {
            "subject": {
                "kind": "website",
                "name": "好评代写网",
                "identifiers": [{"type": "domain", "value": "haoping-daixie.example.cn"}],
            },
            "behaviours": ["fake_review"],
            "role": "facilitator",
            "services": ["information_spreading"],
            "severity": "general",
            "basis": "judicial_decision",
            "document_number": "(2026)示0105民初456号",
            "issuing_authority": "示范市第五区人民法院",
            "facts": "网站提供虚假评价代写服务。",
        },
    )
    steps(e, (Action.start_review, ""), (Action.publish, ""))
    disputed = e  # disputed through a real objection below (_demo_cases)
    # rejected
    e = entry(
        ride,
        {
            "subject": {
                "kind": "app",
                "name": "刷单助手",
                "identifiers": [{"type": "app", "value": "com.example.shuadan"}],
            },
            "behaviours": ["order_brushing"],
            "role": "facilitator",
            "services": ["technical"],
            "severity": "minor",
            "basis": "enterprise_finding",
            "facts": "应用提供自动下单脚本。",
        },
    )
    steps(e, (Action.start_review, ""), (Action.reject, "证据不足：未能证明应用与刷单行为的关联"))
    # revoked: published, then found to be wrong (恢复信誉)
    e = entry(
        market,
        {
            "subject": {
                "kind": "unit",
                "name": "示范市诚信优品商贸有限公司",
                "identifiers": [{"type": "uscc", "value": "91330100MA2D7K8Q9U"}],
            },
            "behaviours": ["review_deletion"],
            "role": "participant",
            "severity": "general",
            "basis": "administrative_penalty",
            "document_number": "示市监罚〔2026〕91号",
            "issuing_authority": "示范市市场监督管理局",
            "facts": "付费删除差评 40 条。",
        },
    )
    steps(e, (Action.start_review, ""), (Action.publish, ""), (Action.revoke, "行政处罚决定已被复议撤销"))
    # expired: published three months and a few days ago, minor severity
    e = entry(
        ecommerce,
        {
            "subject": {
                "kind": "social_account",
                "name": "刷单群主",
                "identifiers": [{"type": "social_account", "value": "weibo:shuadan_qunzhu"}],
            },
            "behaviours": ["order_brushing"],
            "role": "organizer",
            "severity": "minor",
            "basis": "judicial_decision",
            "document_number": "(2026)示0102刑初12号",
            "issuing_authority": "示范市第二区人民法院",
            "facts": "在社交媒体组建刷单群招募刷手。",
        },
    )
    long_ago = today - timedelta(days=100)
    steps(e, (Action.start_review, ""), (Action.publish, ""), day=long_ago)
    # published four months ago, general severity: the minimum period is over, the shop applied for repair
    repairable = entry(
        ecommerce,
        {
            "subject": {
                "kind": "platform_account",
                "name": "示例好物旗舰店",
                "identifiers": [{"type": "platform_account", "value": "demo-select:shop-2231"}],
            },
            "behaviours": ["order_brushing"],
            "role": "organizer",
            "severity": "general",
            "basis": "administrative_penalty",
            "document_number": "示市监罚〔2026〕118号",
            "issuing_authority": "示范市市场监督管理局",
            "facts": "店铺自行组织刷单 420 笔以提升销量排名，被处以罚款。",
        },
    )
    steps(repairable, (Action.start_review, ""), (Action.publish, ""), day=today - timedelta(days=125))
    run_jobs(session, today=today)
    _demo_feedback(session, orgs, today)
    _demo_cases(session, orgs, disputed, repairable)  # type: ignore[arg-type]


def _demo_cases(session: Session, orgs: list[Organisation], objected: Entry, repairable: Entry) -> None:
    """An open objection, credit-repair application and report, so that each queue has a case to work."""

    public = Actor("public:demo")
    ident = objected.subject.identifiers[0]
    due_process.file_objection(
        session,
        public,
        entry_id=objected.id,
        identifier_type=ident.type,
        identifier_value=ident.value,
        grounds="域名已于2026年3月转让他人，判决所涉代写服务发生在转让之后，请核实。",
        contact_email="objector@example.cn",
        channel="web",
    )
    ident = repairable.subject.identifiers[0]
    repair.file_repair(
        session,
        public,
        entry_id=repairable.id,
        identifier_type=ident.type,
        identifier_value=ident.value,
        commitment_accepted=True,
        commitment_text="本店承诺今后诚信经营，不再组织或参与任何刷单炒信行为，如有违反自愿接受加重惩戒。",
        rectification="已删除全部刷单订单的评价与销量，退还平台补贴，负责人完成诚信经营培训。",
        contact_email="repair@example.cn",
        channel="web",
    )
    reports.file_report(
        session,
        public,
        description="某店铺在微信群招募刷手，每单返现 5 元并要求五星好评，附群聊截图。",
        reported={"name": "示例好物旗舰店", "identifiers": []},
        behaviours=["order_brushing", "fake_review"],
        enterprise_org_id=orgs[3].id,
        contact_email=None,
        channel="web",
    )


def _demo_feedback(session: Session, orgs: list[Organisation], today: object) -> None:
    """Each kind of enterprise at a different point: all executed, partly not applicable, overdue."""

    def principal(org: Organisation) -> Principal:
        kind = OrgKind(org.kind)
        role = Role.department_officer if kind == OrgKind.department else Role.enterprise_node
        return Principal(role=role, org_id=org.id, org_kind=kind, key_prefix=f"demo-{role.value}")

    def mine(org: Organisation, kind: str) -> list[Instruction]:
        return list(
            session.scalars(
                select(Instruction)
                .where(Instruction.owner_org_id == org.id, Instruction.kind == kind)
                .order_by(Instruction.seq)
            )
        )

    market, _bank, ecommerce, ride, courier = orgs[1], orgs[2], orgs[3], orgs[4], orgs[5]

    def confirmed(ins: Instruction) -> dict[str, object]:
        """What an enterprise confirms of what it did (the instruction's feedback fields: marked, …)."""
        points = (ins.params or {}).get("points") or 36  # null: the points its own records show
        value = {"bool": True, "int": points, "str": f"诚信档案-{today.year}-{ins.seq:05d}", "date": today}
        return {f.field: value[f.type] for f in ins.feedback_fields()}

    # e-commerce: acknowledged and executed everything, lifts included
    for ins in mine(ecommerce, "apply") + mine(ecommerce, "lift"):
        sanctions.report(session, principal(ecommerce), ins, outcome="executed", confirmations=confirmed(ins))
    # ride sharing: acknowledged; one account not found with them, one failed, the rest executed
    for n, ins in enumerate(mine(ride, "apply")):
        if n == 0:
            sanctions.report(
                session, principal(ride), ins, outcome="not_applicable", reason="本平台无该主体账户"
            )
        elif n == 1:
            sanctions.report(
                session, principal(ride), ins, outcome="failed", reason="信用积分系统升级中，次日重试"
            )
        else:
            sanctions.acknowledge(session, principal(ride), ins)
    # the courier company has not acknowledged anything: its oldest instructions are overdue
    for ins in mine(courier, "apply")[:3]:
        ins.ack_due_on = today - timedelta(days=2)  # type: ignore[operator]
    # the market regulator acknowledged its memoranda measures
    for ins in mine(market, "apply"):
        sanctions.acknowledge(session, principal(market), ins)
    session.flush()


AGREEMENT_TITLE = "反炒信信息共享协议"
AGREEMENT_TEXT = "\n".join(
    (
        "第一条 为落实《关于对电子商务及分享经济领域炒信行为开展专项治理的通知》，共同开展反炒信联"
        "合行动，平台与参与企业签订本协议。",
        "第二条 平台向参与企业共享炒信黑名单中的市场共享名单，仅用于本企业依法依约对名单主体采取联"
        "合惩戒措施及防范炒信，不得用于其他目的，不得向第三方提供。",
        "第三条 参与企业通过盲化查询、变更订阅和企业节点获取名单信息，不得批量比对、枚举或留存与联"
        "合惩戒无关的个人信息；每次查询记入决策日志，接受平台审计。",
        "第四条 参与企业依据其与用户签订的协议及本企业规则，在其服务中实施联合惩戒措施，并在三个工"
        "作日内确认指令、如实反馈执行情况；其规则不允许实施的措施，应在企业规则中载明条款。",
        "第五条 参与企业发现炒信行为的，可依本协议报送平台，经审核后方可纳入名单；对其报送引发的异"
        "议，应在规定期限内核实答复。",
        "第六条 参与企业发生数据泄露或滥用查询的，平台可暂停其共享，直至整改完毕；参与企业可书面申"
        "请退出，退出后应删除已获取的名单信息。",
        "第七条 平台定期召开会商会议，与参与企业和有关部门研究解决联合行动中的问题；会商决定的督办"
        "事项，责任单位应按期办结。",
        "第八条 本协议新版本发布时，参与企业应在平台规定的日期前重新签署。",
    )
)
AGREEMENT_SUMMARY_EN = (
    "The shared list is used only to apply the joint punishment measures and prevent credit hyping, never "
    "passed on; queries are blinded, logged and audited; instructions are acknowledged within three working "
    "days and reported truthfully, as the enterprise's own rules allow; the platform may suspend an "
    "enterprise after a data breach or an abuse of queries; the enterprise may withdraw; consultations are "
    "held regularly; a new version is re-signed by the day the platform sets."
)
# (contact e-mail, signatory, title) of each demo organisation, by name
CONTACTS: dict[str, tuple[str, str, str]] = {
    "示例优选电子商务有限公司": ("risk@select.demo.example", "李明", "首席风控官"),
    "示例出行共享科技有限公司": ("compliance@ride.demo.example", "周婷", "合规总监"),
    "示例速递物流有限公司": ("legal@express.demo.example", "吴强", "法务负责人"),
    "示范市市场监督管理局": ("xinyong@amr.demo.example", "", ""),
    "中国人民银行示范市分行": ("zhengxin@pbc.demo.example", "", ""),
}


def _signed_agreement_pdf(org: Organisation, signatory: str, title: str, signed_on: date) -> bytes:
    """A demo stand-in for the scanned, signed agreement: the text with the signature block, as a PDF."""
    if "STSong-Light" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4)
    page.setFont("STSong-Light", 16)
    page.drawCentredString(A4[0] / 2, A4[1] - 25 * mm, AGREEMENT_TITLE + "（2026.1 版）")
    page.setFont("STSong-Light", 9)
    y = A4[1] - 40 * mm
    for line in AGREEMENT_TEXT.splitlines():
        for start in range(0, len(line), 48):
            page.drawString(20 * mm, y, line[start : start + 48])
            y -= 6 * mm
    y -= 10 * mm
    for text in (
        f"参与企业：{org.name}",
        f"签署人：{signatory}（{title}）",
        f"签署日期：{signed_on.isoformat()}",
    ):
        page.drawString(20 * mm, y, text)
        y -= 7 * mm
    page.showPage()
    page.save()
    return out.getvalue()


def _demo_participation(session: Session, orgs: list[Organisation], today: date) -> None:
    """Taking part (#22): the agreement signed by each enterprise, contact addresses, the ride-sharing
    company's rulebook (no credit points with it), a quarterly consultation held last quarter with its
    decision and action items (one overdue), and the next one scheduled with an enterprise's item."""
    _platform, _market, _bank, ecommerce, ride, courier = orgs[:6]
    for org in orgs:
        if org.name in CONTACTS:
            org.contact_email = CONTACTS[org.name][0]
    version = "2026.1"
    published = date(2026, 1, 5)
    agreements.publish_version(
        session, DEMO_ACTOR, version=version, title=AGREEMENT_TITLE, text_zh=AGREEMENT_TEXT,
        summary_en=AGREEMENT_SUMMARY_EN, published_on=published, today=published,
    )  # fmt: skip
    for org, signed_on in (
        (ecommerce, date(2026, 1, 12)),
        (ride, date(2026, 1, 20)),
        (courier, date(2026, 2, 3)),
    ):
        _email, signatory, title = CONTACTS[org.name]
        agreements.sign(
            session, DEMO_ACTOR, org, version=version, signatory=signatory, signatory_title=title,
            signed_on=signed_on, pdf=_signed_agreement_pdf(org, signatory, title, signed_on),
            filename=f"反炒信信息共享协议-{version}-{org.uscc}.pdf", today=signed_on,
        )  # fmt: skip
    rulebook.set_rulebook(
        session, DEMO_ACTOR, ride,
        [{"measure": "deduct_credit_points", "applicable": False,
          "clause": "《示例出行用户服务协议》第12条：本平台未设立信用积分体系，以账户限制代之。"},
         {"measure": "restrict_listings", "applicable": True,
          "clause": "《示例出行平台规则》第5.3条：可下架车主发布的服务信息。"}],
    )  # fmt: skip
    # Last quarter's meeting, held: a decision and two action items, one of them overdue.
    quarter_ago = today - timedelta(days=91)
    starts = datetime.combine(quarter_ago, time(2, 0), tzinfo=UTC)  # 10:00 Beijing time
    last = consultation.schedule_meeting(
        session, DEMO_ACTOR, kind="ad_hoc", title="反炒信联合行动专题会商（演示）", starts_at=starts,
        place="示范市发展改革委第三会议室", now=starts - timedelta(days=14),
    )  # fmt: skip
    item = consultation.raise_agenda_item(
        session, DEMO_ACTOR, courier.id, kind="data_quality", title="快递员标识中企业代码与工号格式不一",
        body="部分报送记录的快递员标识缺少企业统一社会信用代码，节点无法匹配。",
    )  # fmt: skip
    consultation.schedule_item(session, DEMO_ACTOR, item, last)
    consultation.hold_meeting(
        session, DEMO_ACTOR, last, minutes="到会：平台、市场监管局、三家参与企业。议定统一快递员标识格式。",
        now=starts + timedelta(hours=2),
    )  # fmt: skip
    decision = consultation.record_decision(
        session, DEMO_ACTOR, last,
        text="快递员标识统一为“企业统一社会信用代码:工号”，各企业于十个工作日内完成存量数据整改。",
        agenda_item_id=item.id,
    )  # fmt: skip
    for owner, title, due in (
        (courier, "完成存量快递员标识整改并重新报送", add_working_days(quarter_ago, 10)),
        (ecommerce, "在企业节点上线新版标识校验", add_working_days(today, 5)),
    ):
        consultation.add_action_item(
            session, DEMO_ACTOR, last, owner_org_id=owner.id, title=title, decision_id=decision.id,
            due_on=due, today=min(due, quarter_ago),
        )  # fmt: skip
    # The next one, scheduled for the coming quarter, with an item an enterprise raised.
    quarter = (today.month - 1) // 3 + 1
    year, next_quarter = (today.year, quarter + 1) if quarter < 4 else (today.year + 1, 1)
    first_month = date(year, 3 * next_quarter - 2, 15)
    upcoming = consultation.schedule_meeting(
        session, DEMO_ACTOR, kind="regular", period=f"{year}Q{next_quarter}",
        title=f"{year}年第{next_quarter}季度反炒信定期会商", place="示范市发展改革委第三会议室",
        starts_at=datetime.combine(first_month, time(2, 0), tzinfo=UTC),
    )  # fmt: skip
    raised = consultation.raise_agenda_item(
        session, DEMO_ACTOR, ecommerce.id, kind="disputed_measure", measure="restrict_promotions",
        title="限制促销措施的期限过长", body="一般炒信行为限制参加促销活动的期限，建议与信用修复期限衔接。",
    )  # fmt: skip
    consultation.schedule_item(session, DEMO_ACTOR, raised, upcoming)


def print_demo(console: Console, keys: list[DemoKey] | None, *, console_url: str = CONSOLE_URL) -> None:
    if keys is None:
        console.print(
            "Demo data already loaded; its API keys were printed when it was created. "
            "Make a new one with [bold]fcx key create --org NAME --role ROLE[/]."
        )
        return
    # Plain lines, never a table: a key cut to the terminal's width would be useless.
    console.print("[bold]Demo organisations and API keys[/] (shown once; only their hashes are stored):")
    for k in keys:
        console.print(f"  {k.role:<20} {k.secret}  {k.organisation}", soft_wrap=True, highlight=False)
    users = getattr(keys, "users", None)
    if users:
        console.print(
            f"[bold]Web console[/] {console_url} — sign in with (passwords shown once):",
            soft_wrap=True,
            highlight=False,
        )
        for u in users:
            line = f"  {u.username:<10} {u.password}  {u.role:<20} {u.organisation}"
            console.print(line, soft_wrap=True, highlight=False)
