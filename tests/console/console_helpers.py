"""Helpers shared by the console tests (TestClient and browser)."""

from __future__ import annotations

import re
from datetime import date

from fanchaoxin.blacklist import service as registry
from fanchaoxin.blacklist.schemas import EntryIn
from fanchaoxin.core.audit import Actor
from fanchaoxin.core.db import Database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def penalty_entry(
    db: Database,
    org_id,
    *,
    name: str = "示范测试刷单有限公司",
    uscc: str = "91350100M000100Y43",
    severity: str = "general",
):  # type: ignore[no-untyped-def]
    """A department's administrative penalty against a company: publishable right after review."""
    with db.session() as s:
        e = registry.submit(
            s,
            Actor("test:dept", org_id),
            org_id,
            EntryIn.model_validate(
                {
                    "subject": {
                        "kind": "unit",
                        "name": name,
                        "identifiers": [{"type": "uscc", "value": uscc}],
                    },
                    "behaviours": ["order_brushing"],
                    "role": "organizer",
                    "severity": severity,
                    "basis": "administrative_penalty",
                    "document_number": "测罚〔2026〕1号",
                    "issuing_authority": "示范市市场监督管理局",
                    "document_date": date(2026, 1, 5).isoformat(),
                    "facts": "组织刷单 300 笔。",
                }
            ),
        )
        return e.id
