"""Sample submissions for registry tests."""

from __future__ import annotations

import copy
from typing import Any

USCC_A = "91110000600037341L"
USCC_B = "91330100MA2D7K8Q9U"
RID_A = "11010519491231002X"
RID_B = "110101199003071233"


def unit_entry(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {
            "kind": "unit",
            "name": "北京某某网络科技有限责任公司",
            "identifiers": [{"type": "uscc", "value": USCC_A}],
        },
        "behaviours": ["order_brushing", "fake_review"],
        "role": "organizer",
        "severity": "general",
        "basis": "enterprise_finding",
        "facts": "组织刷单 1,200 笔，虚假评价 900 条。",
    }
    body.update(over)
    return copy.deepcopy(body)


def person_entry(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {
            "kind": "individual",
            "name": "张小三",
            "identifiers": [
                {"type": "resident_id", "value": RID_A},
                {"type": "phone", "value": "13800138000"},
            ],
        },
        "behaviours": ["order_brushing"],
        "role": "participant",
        "severity": "minor",
        "basis": "enterprise_finding",
        "facts": "参与刷单。",
    }
    body.update(over)
    return copy.deepcopy(body)


def judicial(**over: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "basis": "judicial_decision",
        "document_number": "(2026)京0105刑初123号",
        "issuing_authority": "北京市朝阳区人民法院",
        "severity": "serious",
    }
    defaults.update(over)
    return unit_entry(**defaults)
