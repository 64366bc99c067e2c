"""When a working day's digest of overdue steps is due: the Oslo wall clock in every season, Norwegian working days
only, and a setting that cannot name another zone."""

from __future__ import annotations

from datetime import date, datetime, time, timezone

import pytest
from pydantic import ValidationError

from pathway.settings import Settings
from pathway.store.digest import digest_day

SEVEN = time(7, 0)


@pytest.mark.parametrize(("now", "day"), [
    (datetime(2026, 11, 26, 5, 59, tzinfo=timezone.utc), None),  # Thursday 06:59 in Oslo (winter, UTC+1)
    (datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc), date(2026, 11, 26)),
    (datetime(2026, 6, 15, 4, 59, tzinfo=timezone.utc), None),  # Monday 06:59 in Oslo (summer, UTC+2)
    (datetime(2026, 6, 15, 5, 0, tzinfo=timezone.utc), date(2026, 6, 15)),
    (datetime(2026, 11, 26, 22, 59, tzinfo=timezone.utc), date(2026, 11, 26)),  # 23:59 in Oslo: still that day
    (datetime(2026, 11, 26, 23, 0, tzinfo=timezone.utc), None),  # Friday 00:00 in Oslo: before 07:00
    (datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc), None),  # Saturday
    (datetime(2027, 5, 17, 12, 0, tzinfo=timezone.utc), None),  # Monday, Grunnlovsdag
    (datetime(2026, 12, 24, 12, 0, tzinfo=timezone.utc), date(2026, 12, 24)),  # julaften is a working day
])
def test_the_digest_is_due_from_the_hour_in_oslo_on_working_days_only(now: datetime, day: date | None) -> None:
    assert digest_day(now, SEVEN) == day


def test_the_hour_is_a_setting_in_oslo_time_without_an_offset() -> None:
    assert Settings().manager_digest_at == SEVEN
    assert Settings(manager_digest_at="06:30").manager_digest_at == time(6, 30)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="FORLOP_MANAGER_DIGEST_AT"):
        Settings(manager_digest_at="06:30+01:00")  # type: ignore[arg-type]
