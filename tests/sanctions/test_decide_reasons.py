"""Least disclosure in decision reasons (#14 point 6): an enterprise is told the severity, the measures
and the entry ids; a unit's behaviours too, a natural person's behaviours and liable role never."""

from __future__ import annotations

from datetime import date

import pytest

from fanchaoxin.core.catalogue import catalogues
from fanchaoxin.sanctions.decide import DecisionIndex, decide, index_entry

TODAY = date(2026, 3, 1)
MEASURES = [{"code": "deny_new_account"}, {"code": "block_or_delete_account"}]
PERSONAL = sorted(c for c, k in catalogues().subject_kinds.items() if k.personal)
UNITS = sorted(c for c, k in catalogues().subject_kinds.items() if not k.personal)


def _verdict(kind: str, *, liable_role: str | None = None, disputed: bool = False):  # type: ignore[no-untyped-def]
    index = DecisionIndex()
    entry = index_entry(
        entry_id="e-1", subject_kind=kind, severity="serious", behaviours=["order_brushing", "fake_review"],
        disputed=disputed, max_end_on=None, liable_role=liable_role, measures=MEASURES,
    )  # fmt: skip
    index.put(["k"], entry)
    return decide(index, ["k"], "account_registration", today=TODAY)


@pytest.mark.parametrize("kind", PERSONAL)
def test_a_natural_persons_reason_names_severity_and_measures_not_behaviours(kind: str) -> None:
    got = _verdict(kind, liable_role="legal_representative", disputed=True)
    (reason,) = got.reasons
    assert reason["entry_id"] == "e-1" and got.entry_ids == ["e-1"]
    assert "严重" in reason["zh"] and "serious" in reason["en"]
    assert "限制新设立账户" in reason["zh"] and "Refuse new accounts" in reason["en"]
    assert "异议处理中" in reason["zh"]
    for hidden in ("刷单", "虚假评价", "法定代表人", "legal_representative", "order_brushing"):
        assert hidden not in reason["zh"] and hidden not in reason["en"], hidden


@pytest.mark.parametrize("kind", UNITS)
def test_a_units_reason_keeps_its_behaviours(kind: str) -> None:
    (reason,) = _verdict(kind).reasons
    assert "刷单炒信" in reason["zh"] and "虚假评价" in reason["zh"] and "严重" in reason["zh"]


def test_an_unknown_kind_is_taken_as_a_person() -> None:
    (reason,) = _verdict("no_such_kind").reasons
    assert "刷单" not in reason["zh"]
