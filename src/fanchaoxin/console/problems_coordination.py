"""Sentences for the coordination problems (#22), merged into console.problems: codes → catalogue message ids,
and field names → words. Their msgids live in locales/*/LC_MESSAGES/coordination.po."""

from __future__ import annotations

from fanchaoxin.console.i18n import N_

MESSAGES: dict[str, str] = {
    "coordination.bad_month": N_("Enter a month as YYYY-MM, e.g. 2026-11 (you entered {got})."),
    "coordination.bad_date": N_("Enter a date as YYYY-MM-DD, e.g. 2026-11-01 (you entered {got})."),
    "coordination.end_before_start": N_("The last day {until} is before the first day {from}."),
    "coordination.month_and_days": N_("Give either a month or a first and last day, not both."),
}
FIELDS: dict[str, str] = {
    "month": N_("Month"),
    "start": N_("First day"),
    "end": N_("Last day"),
}
