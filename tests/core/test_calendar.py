"""PRC working days: holidays, adjusted weekends, and the fallback for unknown years."""

import logging
from datetime import date

from fanchaoxin.core.calendar import add_months, add_working_days, is_working_day, working_days_between


def test_national_day_golden_week_2025():
    # 2025: 1-8 October off; Sunday 28 September and Saturday 11 October are working days.
    assert not is_working_day(date(2025, 10, 1))
    assert not is_working_day(date(2025, 10, 8))
    assert is_working_day(date(2025, 9, 28))
    assert is_working_day(date(2025, 10, 11))
    # 5 working days after Tuesday 30 September 2025: 9, 10, 11 (Sat), 13, 14 October
    assert add_working_days(date(2025, 9, 30), 5) == date(2025, 10, 14)


def test_plain_week():
    assert add_working_days(date(2025, 11, 21), 1) == date(2025, 11, 24)  # Friday → Monday
    assert add_working_days(date(2025, 11, 24), 5) == date(2025, 12, 1)
    assert add_working_days(date(2025, 11, 24), 0) == date(2025, 11, 24)
    assert working_days_between(date(2025, 11, 24), date(2025, 12, 1)) == 5


def test_unknown_year_falls_back_to_weekdays_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="fanchaoxin.core.calendar"):
        assert is_working_day(date(2099, 1, 5))  # a Monday
        assert not is_working_day(date(2099, 1, 3))  # a Saturday
    assert "2099" in caplog.text
    assert add_working_days(date(2099, 1, 2), 1) == date(2099, 1, 5)


def test_add_months_clamps_to_month_end():
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 27), 36) == date(2029, 11, 27)
    assert add_months(date(2026, 11, 27), 3) == date(2027, 2, 27)
