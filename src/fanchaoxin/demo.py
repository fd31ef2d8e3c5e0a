"""Demo data for `make run` / `fcx serve --demo`: the platform, two departments, three enterprises.

Loaded once, on an empty database; the keys are printed that one time only (they are stored hashed).
All names and numbers are fictitious; the USCCs carry valid check characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from rich.console import Console
from sqlalchemy import select

from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database
from fanchaoxin.orgs import service
from fanchaoxin.orgs.models import BusinessType, Organisation, OrgKind, Role

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
        "roles": [Role.department_officer],
    },
    {
        "kind": OrgKind.department,
        "name": "中国人民银行示范市分行",
        "name_en": "People's Bank of China, Demo City Branch",
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


def load_demo(db: Database) -> list[DemoKey] | None:
    """Create the demo organisations and keys; `None` when the database already has a platform."""
    with db.session() as session:
        if session.scalar(select(Organisation.id).where(Organisation.kind == OrgKind.platform.value)):
            return None
        keys: list[DemoKey] = []
        for spec in ORGANISATIONS:
            spec = dict(spec)
            roles = spec.pop("roles")
            org = service.create_organisation(session, DEMO_ACTOR, **spec)  # type: ignore[arg-type]
            for role in roles:  # type: ignore[attr-defined]
                issued = service.create_key(session, DEMO_ACTOR, org, role, label=f"demo {role.value}")
                keys.append(DemoKey(org.name, role.value, issued.secret))
        return keys


def print_demo(console: Console, keys: list[DemoKey] | None) -> None:
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
