"""How late or how soon, in bokmål and English, and the end of the week in Oslo: at fixed moments, among them a
change of daylight-saving time, New Year and a leap day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from api.web.i18n import translator
from api.web.urgency import how_late
from pathway.views.deadlines import week_end

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=OSLO)  # Thursday


def oslo(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)  # type: ignore[misc]


@pytest.mark.parametrize(("due", "nb", "en"), [
    (oslo(2026, 11, 23, 12, 0), "3 dager over frist", "3 days overdue"),  # Monday noon: 70 hours, three days
    (oslo(2026, 11, 25, 9, 0), "1 dag over frist", "1 day overdue"),
    (oslo(2026, 11, 26, 5, 0), "5 timer over frist", "5 hours overdue"),
    (oslo(2026, 11, 25, 11, 0), "23 timer over frist", "23 hours overdue"),  # yesterday, but under a day
    (oslo(2026, 11, 26, 9, 40), "under en time over frist", "less than an hour overdue"),
    (oslo(2026, 11, 26, 13, 0), "frist i dag, om 3 timer", "due today, in 3 hours"),
    (oslo(2026, 11, 26, 11, 0), "frist i dag, om 1 time", "due today, in 1 hour"),
    (oslo(2026, 11, 26, 10, 30), "frist i dag, om under en time", "due today, in less than an hour"),
    (oslo(2026, 11, 27, 8, 0), "frist om 22 timer", "due in 22 hours"),  # tomorrow, under a day
    (oslo(2026, 11, 28, 10, 0), "frist om 2 dager", "due in 2 days"),
    (oslo(2026, 11, 27, 10, 0), "frist om 1 dag", "due in 1 day"),
])
def test_how_late_or_soon_in_both_languages(due: datetime, nb: str, en: str) -> None:
    assert how_late(due, NOW, translator("nb")) == nb
    assert how_late(due, NOW, translator("en")) == en


def test_days_are_calendar_days_in_oslo_across_a_change_of_daylight_saving_time() -> None:
    now = oslo(2027, 3, 27, 12, 0)  # Saturday; the clocks go forward on Sunday night
    due = oslo(2027, 3, 29, 12, 0)  # 47 hours later, two calendar days
    assert due.astimezone(timezone.utc) - now.astimezone(timezone.utc) == timedelta(hours=47)
    assert how_late(due, now, translator("nb")) == "frist om 2 dager"
    assert how_late(now, due, translator("nb")) == "2 dager over frist"


@pytest.mark.parametrize(("now", "end"), [
    (oslo(2026, 11, 26, 10, 0), oslo(2026, 11, 30, 0, 0)),  # Thursday
    (oslo(2026, 11, 30, 0, 0), oslo(2026, 12, 7, 0, 0)),  # Monday midnight begins a week
    (oslo(2026, 11, 29, 23, 59), oslo(2026, 11, 30, 0, 0)),  # Sunday's last minute
    (datetime(2026, 11, 29, 23, 30, tzinfo=timezone.utc), oslo(2026, 12, 7, 0, 0)),  # Sunday in UTC, Monday in Oslo
    (oslo(2027, 3, 24, 12, 0), oslo(2027, 3, 29, 0, 0)),  # the week summer time begins
    (oslo(2027, 10, 28, 12, 0), oslo(2027, 11, 1, 0, 0)),  # the week it ends
    (oslo(2026, 12, 31, 23, 0), oslo(2027, 1, 4, 0, 0)),  # New Year's Eve, a Thursday
    (oslo(2027, 12, 31, 23, 0), oslo(2028, 1, 3, 0, 0)),  # a Friday in ISO week 52
    (oslo(2028, 2, 29, 12, 0), oslo(2028, 3, 6, 0, 0)),  # a leap day
])
def test_the_week_ends_at_monday_midnight_in_oslo(now: datetime, end: datetime) -> None:
    assert week_end(now) == end
    assert week_end(now).tzinfo == timezone.utc
    assert now < week_end(now) <= now + timedelta(days=7)
