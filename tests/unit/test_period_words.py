"""A report's period key read once (``periods.period_parts``), for its figures and for its words."""

from __future__ import annotations

import pytest

from api.web.i18n import period_words
from pathway.metrics.periods import months_of, period_parts

pytestmark = pytest.mark.any_date


@pytest.mark.parametrize(("key", "parts"), [("2026-11", (2026, 11, 1)), ("2026-T1", (2026, 1, 4)),
                                            ("2026-T3", (2026, 9, 4))])
def test_a_period_key_is_its_year_first_month_and_length(key: str, parts: tuple[int, int, int]) -> None:
    assert period_parts(key) == parts
    assert len(months_of(key)) == parts[2]


@pytest.mark.parametrize(("key", "nb", "short", "en"), [
    ("2026-11", "november 2026", "nov 26", "November 2026"), ("2026-01", "januar 2026", "jan 26", "January 2026"),
    ("2026-T3", "3. tertial 2026", "T3 26", "T3 2026"), ("2026-T1", "1. tertial 2026", "T1 26", "T1 2026"),
])
def test_a_period_in_words(key: str, nb: str, short: str, en: str) -> None:
    assert period_words(key, "nb") == nb
    assert period_words(key, "nb", short=True) == short
    assert period_words(key, "en") == en
    assert period_words(key, "nb", partial=True) == f"{nb} (så langt)"


@pytest.mark.parametrize("key", ["2026-13", "2026-T4", "2026-00", "26-11", "2026", "x", ""])
def test_a_key_that_is_no_period_stays_itself(key: str) -> None:
    with pytest.raises(ValueError):
        period_parts(key)
    assert period_words(key, "nb") == key
