"""Hand-computed figures for pauses, and one cell shown the same in every view, on SQLite and PostgreSQL.

Five cases opened on Monday 5 April 2027 09:00 (Oslo), K1 due 24 hours later. Case i (0–4) is paused i + 1 hours
after first contact and K1 is completed 30 hours after first contact, during the pause, which is never resumed:
lead times 1, 2, 3, 4 and 5 hours (the pause left out though it has not ended), median 3, p90 4.6 (linear between
the nearest ranks: 4 + 0.6 × (5 - 4)); every one on time (the clock stopped before the deadline). Resuming the cases
in June changes nothing about April.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from pathway.bootstrap import Forlop
from pathway.calendar import OSLO
from pathway.case.commands import CompleteStep, Pause, Resume
from pathway.demo import seed_demo
from pathway.metrics import timeliness
from pathway.store.tables import case_t
from tests.integration.test_metrics import change, open_case, row

OPENED = datetime(2027, 4, 5, 9, tzinfo=OSLO)
APRIL = (date(2027, 4, 1), date(2027, 4, 30))


def april(core: Forlop, now: datetime, period: str = "month", unit: str | None = None):  # type: ignore[no-untyped-def]
    return timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period,  # type: ignore[arg-type]
                      start=APRIL[0], end=APRIL[1], unit=unit, now=now)


def test_a_pause_still_running_at_completion_is_left_out_and_a_later_resume_changes_no_past_figure(
        core: Forlop) -> None:
    refs = []
    for i in range(5):
        ref = open_case(core, OPENED)
        change(core, ref, lambda c, at=OPENED + timedelta(hours=i + 1): c.execute(Pause(reason="borte"), actor="k", at=at))
        change(core, ref, lambda c: c.execute(CompleteStep("K1"), actor="k", at=OPENED + timedelta(hours=30)))
        refs.append(ref)
    may = datetime(2027, 5, 3, 12, tzinfo=timezone.utc)
    before = row(april(core, may), "K1", period="2027-04")
    assert (before.completed, before.median_hours, before.p90_hours) == (5, 3.0, 4.6)
    assert (before.due, before.done_on_time, before.done_late, before.overdue_now) == (5, 5, 0, 0)
    assert before.within_deadline_share == 1.0
    tertial = row(april(core, may, "tertial"), "K1", period="2027-T1")
    assert (tertial.completed, tertial.median_hours, tertial.p90_hours, tertial.within_deadline_share) == (
        5, 3.0, 4.6, 1.0)
    for ref in refs:  # resumed after the period
        change(core, ref, lambda c: c.execute(Resume(), actor="k", at=datetime(2027, 6, 1, 9, tzinfo=OSLO)))
    after = row(april(core, datetime(2027, 6, 2, 12, tzinfo=timezone.utc)), "K1", period="2027-04")
    assert after == before


def test_a_pause_resumed_after_the_period_leaves_its_paused_time_out_of_a_step_done_after_it(core: Forlop) -> None:
    # Paused 2 hours after first contact, resumed 3 days later (moving the deadline by 72 hours), K1 done an hour
    # after the resume: 3 hours on the clock, on time; the steps' deadline (3 days on) still lies in April.
    for _ in range(5):
        ref = open_case(core, OPENED)
        change(core, ref, lambda c: c.execute(Pause(reason="borte"), actor="k", at=OPENED + timedelta(hours=2)))
        change(core, ref, lambda c: c.execute(Resume(), actor="k", at=OPENED + timedelta(hours=74)))
        change(core, ref, lambda c: c.execute(CompleteStep("K1"), actor="k", at=OPENED + timedelta(hours=75)))
    figures = row(april(core, datetime(2027, 5, 3, 12, tzinfo=timezone.utc)), "K1", period="2027-04")
    assert (figures.completed, figures.median_hours, figures.p90_hours) == (5, 3.0, 3.0)
    assert (figures.due, figures.done_on_time, figures.within_deadline_share) == (5, 5, 1.0)


def test_a_unit_alone_and_all_units_show_every_cell_the_same(core: Forlop) -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    seed_demo(core, cases=60, seed=1, now=now)
    with core.engine.begin() as conn:  # one unit holds every case: all units are that unit
        conn.execute(sa.update(case_t).values(unit="eneste-enhet"))
    for period in ("month", "tertial"):
        args = dict(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period, start=date(2025, 12, 1),
                    end=date(2026, 11, 30), now=now)
        alone, everyone = timeliness(**args, unit="eneste-enhet"), timeliness(**args, unit=None)  # type: ignore[arg-type]
        assert len(alone.intervals) == len(everyone.intervals) > 0
        for mine, all_units in zip(alone.intervals, everyone.intervals, strict=True):
            assert mine == all_units.__class__(**{**{f: getattr(all_units, f) for f in all_units.__slots__},
                                                  "unit": "eneste-enhet"})
        for mine_c, all_c in zip(alone.cases, everyone.cases, strict=True):
            assert (mine_c.opened, mine_c.closed, mine_c.outcomes, mine_c.repeat_contact) == (
                all_c.opened, all_c.closed, all_c.outcomes, all_c.repeat_contact)
        assert any(isinstance(r.completed, int) and r.completed >= 5 for r in alone.intervals)
