"""What every detector yields: findings with a score, evidence and a behaviour code.

A finding is a *candidate*: an enterprise reviews it and may submit it to the platform, where it
becomes an entry with basis `enterprise_finding` and status `submitted` (never published directly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Behaviour codes of DESIGN.md §1; the platform's catalogue is the authority, these are the ones
# detectors can produce.
BEHAVIOURS = (
    "malicious_registration",
    "order_brushing",
    "fake_review",
    "review_deletion",
    "subsidy_brushing",
    "personal_data_trade",
    "empty_parcel",
)


@dataclass
class Finding:
    """One suspected instance of 炒信 found in an enterprise's own data."""

    detector: str  # e.g. "order-brushing", "dense-blocks"
    behaviour: str  # one of BEHAVIOURS
    subject_kind: str  # platform_account | unit | courier_company | courier_staff | ...
    subject_ids: list[str]  # the enterprise's own ids of the suspected subject(s)
    score: float  # higher is more suspicious; detector-specific scale, documented per detector
    summary: str  # one line a risk analyst can read
    evidence: dict[str, Any] = field(default_factory=dict)  # orders, windows, accounts, shared attributes

    def __post_init__(self) -> None:
        if self.behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour code {self.behaviour!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
