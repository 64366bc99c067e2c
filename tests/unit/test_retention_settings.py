"""The retention settings: five years by default, a unit's own period from FORLOP_RETENTION_DAYS_BY_UNIT, and values
that cannot be meant (no days, an unknown unit, words for a number) refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pathway.settings import Settings


def test_five_years_by_default_and_a_units_own_period_where_it_has_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORLOP_RETENTION_DAYS_BY_UNIT", "askoy=3650, voss=1096")
    settings = Settings()
    assert settings.retention_days == 1826
    assert settings.retention_days_by_unit == {"askoy": 3650, "voss": 1096}
    assert (settings.retention_days_of("askoy"), settings.retention_days_of("bergen-nord")) == (3650, 1826)


@pytest.mark.parametrize("env", [
    {"FORLOP_RETENTION_DAYS": "0"},
    {"FORLOP_RETENTION_DAYS": "-5"},
    {"FORLOP_RETENTION_DAYS_BY_UNIT": "nowhere=30"},
    {"FORLOP_RETENTION_DAYS_BY_UNIT": "askoy=ten"},
    {"FORLOP_RETENTION_DAYS_BY_UNIT": "askoy=0"},
    {"FORLOP_RETENTION_DAYS_BY_UNIT": "askoy"},
])
def test_a_period_that_cannot_be_meant_is_refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()
