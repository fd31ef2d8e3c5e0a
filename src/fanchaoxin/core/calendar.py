"""Deadlines in PRC working days (工作日), holidays and adjusted working weekends (调休) included.

The official calendar comes from the `chinese-calendar` package, which knows the years the State
Council has announced. For a year it does not know yet, Monday to Friday are taken as working days
and a warning is logged once per year, so a deadline is never silently wrong without a trace.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
_warned_years: set[int] = set()


def is_working_day(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        if day.year not in _warned_years:
            _warned_years.add(day.year)
            log.warning(
                "The official holiday calendar for %s is not known to chinese-calendar; "
                "counting Monday to Friday as working days for that year",
                day.year,
            )
        return day.weekday() < 5


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (start itself not counted).

    `add_working_days(friday, 1)` is the next working Monday; across the National Day holiday it
    skips the whole Golden Week and counts the adjusted working Saturday or Sunday.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    remaining = days
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (0 when end <= start)."""
    count = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return count


def china_today(now: datetime | None = None) -> date:
    """Deadlines are counted on the calendar of Beijing time, whatever the server's zone."""
    now = now or datetime.now(UTC)
    return now.astimezone(SHANGHAI).date()


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")
