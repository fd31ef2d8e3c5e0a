"""Who takes part and in what role: organisation kinds, business types and roles (data, no tables).

These are the vocabulary every slice and the access rules share, so they live in core; the tables of
organisations and API keys are the `orgs` slice's.
"""

from __future__ import annotations

from enum import StrEnum


class OrgKind(StrEnum):
    """The three kinds of organisation in the joint action."""

    platform = "platform"  # 全国信用信息共享平台 反炒信子系统 (NDRC)
    department = "department"  # 政府部门: receive the blacklist, apply memoranda measures
    enterprise = "enterprise"  # 参与企业: monitor, report, apply the 13 measures


class BusinessType(StrEnum):
    """What a participating enterprise does; decides which measures it can implement."""

    ecommerce = "ecommerce"  # 电子商务
    sharing_economy = "sharing_economy"  # 共享经济
    logistics = "logistics"  # 寄递物流
    social_media = "social_media"  # 社交媒体
    search_ads = "search_ads"  # 搜索与广告
    internet_finance = "internet_finance"  # 互联网金融


class Role(StrEnum):
    """Who is calling. Every route names the roles it admits (core.auth)."""

    platform_admin = "platform_admin"
    platform_reviewer = "platform_reviewer"
    department_officer = "department_officer"
    enterprise_operator = "enterprise_operator"
    enterprise_node = "enterprise_node"  # a machine: the enterprise's `fcx node`
    auditor = "auditor"
    public = "public"  # no key at all


# A key's role must belong to its organisation's kind: a department can never hold a reviewer key.
ROLE_ORG_KIND: dict[Role, OrgKind] = {
    Role.platform_admin: OrgKind.platform,
    Role.platform_reviewer: OrgKind.platform,
    Role.auditor: OrgKind.platform,
    Role.department_officer: OrgKind.department,
    Role.enterprise_operator: OrgKind.enterprise,
    Role.enterprise_node: OrgKind.enterprise,
}
