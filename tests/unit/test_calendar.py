"""Deadline arithmetic: Norwegian working days, calendar days and DST in Europe/Oslo.

Expected dates are facts from the Norwegian calendar (Easter 2026 = 5 April, Easter 2027 =
28 March; Ascension = Easter + 39 days, Whit Monday = Easter + 50 days; DST 2026 starts
29 March 02:00 CET and ends 25 October 03:00 CEST, both at 01:00 UTC).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pathway.calendar import (
    OSLO, Unit, add_working_time, is_working_day, shift, working_days_between, working_time_between,
)

UTC = timezone.utc


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- is_working_day -----------------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 1),  # New Year's Day
        date(2026, 4, 2),  # Maundy Thursday
        date(2026, 4, 3),  # Good Friday
        date(2026, 4, 6),  # Easter Monday
        date(2026, 5, 1),  # Labour Day
        date(2026, 5, 14),  # Ascension Day
        date(2026, 5, 25),  # Whit Monday
        date(2026, 12, 25),  # Christmas Day
        date(2027, 5, 17),  # Constitution Day (and Whit Monday) on a Monday
        date(2025, 12, 25),  # Christmas Day, Thursday
        date(2025, 12, 26),  # Boxing Day, Friday
    ],
)
def test_weekday_public_holidays_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5
    assert not is_working_day(day)


def test_weekends_are_not_working_days() -> None:
    assert not is_working_day(date(2026, 3, 7))  # Saturday
    assert not is_working_day(date(2026, 3, 8))  # Sunday


def test_ordinary_weekdays_are_working_days() -> None:
    assert all(is_working_day(date(2026, 3, d)) for d in range(9, 14))  # Mon 9 – Fri 13 March


def test_christmas_eve_and_new_years_eve_are_working_days_in_norway() -> None:
    assert is_working_day(date(2025, 12, 24))  # Wednesday, not a public holiday
    assert is_working_day(date(2025, 12, 31))  # Wednesday, not a public holiday


def test_the_day_after_a_sunday_17_may_is_a_working_day() -> None:
    # Norway has no substitute holiday when 17 May falls on a Sunday (2026).
    assert is_working_day(date(2026, 5, 18))


# --- shift: working days ------------------------------------------------------------


def test_one_working_day_after_friday_is_monday() -> None:
    assert shift(oslo(2026, 3, 6, 15), 1, Unit.WORKING_DAYS) == oslo(2026, 3, 9, 15)


def test_one_working_day_after_saturday_is_monday_at_the_same_time() -> None:
    assert shift(oslo(2026, 3, 7, 10), 1, Unit.WORKING_DAYS) == oslo(2026, 3, 9, 10)


def test_one_working_day_after_the_wednesday_before_easter_is_the_tuesday_after() -> None:
    assert shift(oslo(2026, 4, 1, 9), 1, Unit.WORKING_DAYS) == oslo(2026, 4, 7, 9)


def test_three_working_days_before_the_tuesday_after_easter_skip_the_easter_holidays() -> None:
    # Back over Easter Monday, Good Friday and Maundy Thursday: Wed 1, Tue 31 Mar, Mon 30 Mar.
    assert shift(oslo(2026, 4, 7, 12), -3, Unit.WORKING_DAYS) == oslo(2026, 3, 30, 12)


def test_one_working_day_before_monday_is_friday() -> None:
    assert shift(oslo(2026, 3, 9, 8), -1, Unit.WORKING_DAYS) == oslo(2026, 3, 6, 8)


def test_one_working_day_before_sunday_is_friday() -> None:
    assert shift(oslo(2026, 3, 8, 8), -1, Unit.WORKING_DAYS) == oslo(2026, 3, 6, 8)


def test_zero_working_days_returns_the_start_in_utc() -> None:
    start = oslo(2026, 3, 7, 10)  # a Saturday: zero does not snap to a working day
    result = shift(start, 0, Unit.WORKING_DAYS)
    assert result == start and result.tzinfo is UTC


def test_one_working_day_after_the_friday_before_a_monday_17_may_is_tuesday() -> None:
    assert shift(oslo(2027, 5, 14, 9), 1, Unit.WORKING_DAYS) == oslo(2027, 5, 18, 9)


def test_one_working_day_after_the_friday_before_a_sunday_17_may_is_monday() -> None:
    assert shift(oslo(2026, 5, 15, 9), 1, Unit.WORKING_DAYS) == oslo(2026, 5, 18, 9)


def test_one_working_day_after_the_eve_of_ascension_day_is_friday() -> None:
    assert shift(oslo(2026, 5, 13, 9), 1, Unit.WORKING_DAYS) == oslo(2026, 5, 15, 9)


def test_one_working_day_after_the_friday_before_whit_monday_is_tuesday() -> None:
    assert shift(oslo(2026, 5, 22, 9), 1, Unit.WORKING_DAYS) == oslo(2026, 5, 26, 9)


def test_one_working_day_after_23_december_is_christmas_eve() -> None:
    assert shift(oslo(2025, 12, 23, 9), 1, Unit.WORKING_DAYS) == oslo(2025, 12, 24, 9)


def test_one_working_day_after_christmas_eve_skips_christmas_and_the_weekend() -> None:
    assert shift(oslo(2025, 12, 24, 9), 1, Unit.WORKING_DAYS) == oslo(2025, 12, 29, 9)


def test_one_working_day_after_new_years_eve_skips_new_years_day() -> None:
    assert shift(oslo(2025, 12, 31, 9), 1, Unit.WORKING_DAYS) == oslo(2026, 1, 2, 9)


def test_working_days_follow_the_oslo_date_not_the_utc_date() -> None:
    # Fri 23:30 UTC is already Saturday 00:30 in Oslo, so +1 is Monday 00:30 Oslo.
    assert shift(utc(2026, 3, 6, 23, 30), 1, Unit.WORKING_DAYS) == oslo(2026, 3, 9, 0, 30)


def test_working_days_across_the_spring_dst_change_keep_the_wall_clock() -> None:
    # Fri 27 Mar 09:00 CET (08:00 UTC) + 1 = Mon 30 Mar 09:00 CEST (07:00 UTC).
    assert shift(oslo(2026, 3, 27, 9), 1, Unit.WORKING_DAYS) == utc(2026, 3, 30, 7)


# --- shift: hours and calendar days across DST ---------------------------------------


def test_24_hours_across_the_spring_dst_change_are_24_real_hours() -> None:
    start = oslo(2026, 3, 28, 12)  # 11:00 UTC, CET
    result = shift(start, 24, Unit.HOURS)
    assert result == utc(2026, 3, 29, 11)
    assert result.astimezone(OSLO).hour == 13  # wall clock moved by the lost hour


def test_24_hours_across_the_autumn_dst_change_are_24_real_hours() -> None:
    start = oslo(2026, 10, 24, 12)  # 10:00 UTC, CEST
    result = shift(start, 24, Unit.HOURS)
    assert result == utc(2026, 10, 25, 10)
    assert result.astimezone(OSLO).hour == 11


def test_one_day_across_the_spring_dst_change_keeps_the_wall_clock_and_lasts_23_hours() -> None:
    start = oslo(2026, 3, 28, 12)
    result = shift(start, 1, Unit.DAYS)
    assert result == utc(2026, 3, 29, 10)  # 12:00 CEST
    assert result - start == timedelta(hours=23)


def test_one_day_across_the_autumn_dst_change_keeps_the_wall_clock_and_lasts_25_hours() -> None:
    start = oslo(2026, 10, 24, 12)
    result = shift(start, 1, Unit.DAYS)
    assert result == utc(2026, 10, 25, 11)  # 12:00 CET
    assert result - start == timedelta(hours=25)


def test_one_day_into_the_spring_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist on 29 March 2026 in Oslo; it becomes 03:30 CEST (01:30 UTC).
    assert shift(oslo(2026, 3, 28, 2, 30), 1, Unit.DAYS) == utc(2026, 3, 29, 1, 30)


def test_one_day_into_the_repeated_autumn_hour_takes_the_first_occurrence() -> None:
    # 02:30 happens twice on 25 October 2026; the first one is CEST (00:30 UTC).
    assert shift(oslo(2026, 10, 24, 2, 30), 1, Unit.DAYS) == utc(2026, 10, 25, 0, 30)


def test_negative_days_count_backwards_on_the_wall_clock() -> None:
    assert shift(oslo(2026, 3, 30, 8), -2, Unit.DAYS) == oslo(2026, 3, 28, 8)


# --- shift: contract ----------------------------------------------------------------


@pytest.mark.parametrize("unit", list(Unit))
def test_naive_datetimes_are_refused(unit: Unit) -> None:
    with pytest.raises(ValueError, match="naive"):
        shift(datetime(2026, 3, 6, 15), 1, unit)


def test_unknown_units_are_refused() -> None:
    with pytest.raises(ValueError):
        shift(oslo(2026, 3, 6, 15), 1, "weeks")  # type: ignore[arg-type]


@pytest.mark.parametrize("unit", list(Unit))
@pytest.mark.parametrize("amount", [-3, 0, 1, 30])
def test_results_are_always_utc_aware(unit: Unit, amount: int) -> None:
    start = datetime(2026, 3, 6, 15, tzinfo=ZoneInfo("America/New_York"))
    result = shift(start, amount, unit)
    assert result.tzinfo is UTC


def test_units_accept_their_string_values() -> None:
    assert shift(oslo(2026, 3, 6, 15), 1, "working_days") == oslo(2026, 3, 9, 15)  # type: ignore[arg-type]


# --- working_days_between -----------------------------------------------------------


def test_working_days_between_monday_and_the_tuesday_after_easter_are_three() -> None:
    # Tue 31 Mar, Wed 1 Apr and Tue 7 Apr; Thu, Fri, weekend and Easter Monday do not count.
    assert working_days_between(oslo(2026, 3, 30, 9), oslo(2026, 4, 7, 9)) == 3


def test_working_days_between_is_negative_when_end_is_before_start() -> None:
    assert working_days_between(oslo(2026, 4, 7, 9), oslo(2026, 3, 30, 9)) == -3


def test_working_days_between_the_same_day_is_zero() -> None:
    assert working_days_between(oslo(2026, 3, 9, 8), oslo(2026, 3, 9, 17)) == 0


def test_working_days_between_friday_and_monday_is_one() -> None:
    assert working_days_between(oslo(2026, 3, 6, 17), oslo(2026, 3, 9, 8)) == 1


def test_working_days_between_christmas_eve_and_new_years_eve_2025() -> None:
    # 25, 26 Dec are holidays, 27/28 the weekend: Mon 29, Tue 30, Wed 31 remain.
    assert working_days_between(oslo(2025, 12, 24, 9), oslo(2025, 12, 31, 9)) == 3


def test_norway_has_253_working_days_in_2026() -> None:
    # 261 weekdays minus the 8 holidays on weekdays (1 Jan, 2, 3, 6 Apr, 1, 14, 25 May, 25 Dec).
    assert working_days_between(oslo(2025, 12, 31, 12), oslo(2026, 12, 31, 12)) == 253


def test_working_days_between_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        working_days_between(datetime(2026, 3, 6), oslo(2026, 3, 9))


# --- properties ---------------------------------------------------------------------

aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2090, 12, 31),
    timezones=st.sampled_from(
        [UTC, OSLO, ZoneInfo("America/New_York"), ZoneInfo("Pacific/Auckland"), timezone(timedelta(hours=5, minutes=30))]
    ),
)


@settings(deadline=None)  # the first lookup of a year builds its holiday set
@given(x=aware_datetimes, n=st.integers(min_value=0, max_value=30))
def test_shifting_forward_lands_on_a_working_day_exactly_n_working_days_later(x: datetime, n: int) -> None:
    result = shift(x, n, Unit.WORKING_DAYS)
    assert result.tzinfo is UTC
    if n != 0:
        assert is_working_day(result.astimezone(OSLO).date())
        assert result > x
    assert working_days_between(x, result) == n


@settings(deadline=None)
@given(x=aware_datetimes, n=st.integers(min_value=1, max_value=30))
def test_shifting_backwards_lands_on_a_working_day_before_the_start(x: datetime, n: int) -> None:
    result = shift(x, -n, Unit.WORKING_DAYS)
    assert result.tzinfo is UTC and result < x
    assert is_working_day(result.astimezone(OSLO).date())
    # The n-1 working days stepped over, plus the start day itself if it is a working day.
    start_counts = is_working_day(x.astimezone(OSLO).date())
    assert working_days_between(result, x) == n - 1 + start_counts


# --- pauses on working-day deadlines: the paused working time, added back in working time -----------------------


def moved_by_pause(start: datetime, working_days: int, paused_from: datetime, paused_to: datetime) -> datetime:
    due = shift(start, working_days, Unit.WORKING_DAYS)
    return add_working_time(due, working_time_between(paused_from, paused_to))


def test_a_pause_tuesday_to_thursday_on_three_working_days_from_monday_lands_on_the_next_monday() -> None:
    # Mon 5 Jan 2026 10:00 + 3 working days = Thu 8 Jan 10:00; two working days paused: Mon 12 Jan, not Sat 10 Jan.
    assert shift(oslo(2026, 1, 5, 10), 3, Unit.WORKING_DAYS) == oslo(2026, 1, 8, 10)
    assert working_time_between(oslo(2026, 1, 6, 10), oslo(2026, 1, 8, 10)) == timedelta(days=2)
    assert moved_by_pause(oslo(2026, 1, 5, 10), 3, oslo(2026, 1, 6, 10), oslo(2026, 1, 8, 10)) == oslo(2026, 1, 12, 10)


def test_a_pause_across_a_public_holiday_counts_neither_the_holiday_nor_lands_on_one() -> None:
    # Ascension Day is Thu 14 May 2026. Mon 11 May 10:00 + 3 working days = Fri 15 May 10:00. Paused Tue 12 10:00
    # to Fri 15 10:00: Tuesday 14 h, Wednesday 24 h, Friday 10 h = two working days. Due Tue 19 May 10:00.
    assert shift(oslo(2026, 5, 11, 10), 3, Unit.WORKING_DAYS) == oslo(2026, 5, 15, 10)
    assert working_time_between(oslo(2026, 5, 12, 10), oslo(2026, 5, 15, 10)) == timedelta(days=2)
    assert moved_by_pause(oslo(2026, 5, 11, 10), 3, oslo(2026, 5, 12, 10), oslo(2026, 5, 15, 10)) == oslo(2026, 5, 19, 10)
    # Due Wed 13 May 10:00 with one working day to add back: over Ascension to Fri 15 May 10:00.
    assert add_working_time(oslo(2026, 5, 13, 10), timedelta(days=1)) == oslo(2026, 5, 15, 10)


def test_a_pause_across_the_spring_change_keeps_the_wall_clock() -> None:
    # Clocks go forward on Sun 29 Mar 2026. Mon 23 Mar 10:00 CET + 3 working days = Thu 26 Mar 10:00; paused Wed 25
    # 10:00 to Fri 27 10:00 (two working days): due Mon 30 Mar 10:00 CEST, 08:00 UTC (09:00 UTC before the change).
    due = moved_by_pause(oslo(2026, 3, 23, 10), 3, oslo(2026, 3, 25, 10), oslo(2026, 3, 27, 10))
    assert due == oslo(2026, 3, 30, 10) == utc(2026, 3, 30, 8)
    assert shift(oslo(2026, 3, 23, 10), 3, Unit.WORKING_DAYS) == utc(2026, 3, 26, 9)


def test_paused_time_on_weekends_and_holidays_does_not_count() -> None:
    assert working_time_between(oslo(2026, 1, 9, 16), oslo(2026, 1, 12, 8)) == timedelta(hours=16)  # Fri 16 - Mon 8
    assert working_time_between(oslo(2026, 1, 10, 9), oslo(2026, 1, 11, 20)) == timedelta(0)  # a weekend
    assert working_time_between(oslo(2026, 1, 12, 8), oslo(2026, 1, 9, 16)) == timedelta(0)  # the wrong way round
    assert working_time_between(oslo(2026, 12, 24, 12), oslo(2026, 12, 28, 12)) == timedelta(hours=24)  # 24th: 12 h


def test_working_time_that_uses_up_a_friday_goes_on_to_monday_midnight_not_saturday() -> None:
    assert add_working_time(oslo(2026, 1, 9, 14), timedelta(hours=10)) == oslo(2026, 1, 12, 0)
    assert add_working_time(oslo(2026, 1, 10, 14), timedelta(hours=3)) == oslo(2026, 1, 12, 3), "from a Saturday"
    assert add_working_time(oslo(2026, 1, 10, 14), timedelta(0)) == oslo(2026, 1, 10, 14), "nothing to add back"


@settings(deadline=None)
@given(x=aware_datetimes, hours=st.integers(min_value=1, max_value=24 * 40))
def test_adding_working_time_lands_on_a_working_day_that_much_working_time_later(x: datetime, hours: int) -> None:
    result = add_working_time(x, timedelta(hours=hours))
    assert is_working_day(result.astimezone(OSLO).date())
    assert working_time_between(x, result) == timedelta(hours=hours)
