"""Demo data for `make run` / `fcx serve --demo`: the platform, two departments, three enterprises.

Loaded once, on an empty database; the keys are printed that one time only (they are stored hashed).
All names and numbers are fictitious; the USCCs carry valid check characters.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta

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
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.auth import Principal
from fanchaoxin.core.calendar import china_today
from fanchaoxin.core.db import Database
from fanchaoxin.core.roles import BusinessType, OrgKind, Role
from fanchaoxin.orgs import service
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
