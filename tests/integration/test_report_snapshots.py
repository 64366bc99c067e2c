"""The managers' default report answered from a background snapshot, on SQLite and PostgreSQL: the snapshot
equals the live report, a stale one or a custom span is computed live, and the scheduler runs the job."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pathway import metrics, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.demo import seed_demo
from pathway.metrics.snapshots import ALL_UNITS, read_snapshot
from pathway.metrics.view import read_report as _report
from pathway.scheduler import build_scheduler, run_report_snapshots
from pathway.store.tables import snapshot_t

UTC = timezone.utc


def manager(unit: str | None) -> User:
    return User(id=uuid.uuid4(), username="leder-test", role="manager", unit=unit, agency=None, language="nb")


@pytest.fixture
def seeded(core: Forlop) -> Forlop:
    seed_demo(core, cases=60, seed=1)
    return core


def live(core: Forlop, period: str, unit: str | None, now: datetime) -> metrics.Report:
    start, end = metrics.default_span(now)
    return metrics.timeliness(engine=core.engine, resolve=core.catalog.resolve, period=period,  # type: ignore[arg-type]
                              start=start, end=end, unit=unit, now=now)


def age_snapshots(core: Forlop, by: timedelta) -> datetime:
    """Make every snapshot older by ``by``; returns their new computed_at."""
    with core.engine.begin() as conn:
        computed_at = conn.execute(sa.select(snapshot_t.c.computed_at)).scalars().first()
        conn.execute(snapshot_t.update().values(computed_at=computed_at - by))
    return computed_at - by


def test_the_job_stores_every_units_report_equal_to_the_live_one(seeded: Forlop) -> None:
    services.add_user(engine=seeded.engine, username="leder-ny", role="manager", unit="ny-enhet")  # no cases yet
    now = datetime.now(UTC)
    written = run_report_snapshots(seeded, now=now)
    start, end = metrics.default_span(now)  # the day in Oslo (at 00:30 on 1 January, UTC is still in December)
    units = metrics.breakdown(engine=seeded.engine, resolve=seeded.catalog.resolve, start=start, end=end,
                              now=now).units
    assert "ny-enhet" not in units
    assert written == 2 * (len(units) + 2)  # month and tertial: every unit, the new one and all units
    for period in ("month", "tertial"):
        for unit in (units[0], "ny-enhet", None):
            stored = read_snapshot(seeded.engine, period=period, start=start, end=end, unit=unit, not_before=now)
            assert stored == live(seeded, period, unit, now)
            assert stored is not None and isinstance(stored.intervals[0], metrics.IntervalFigures)
    with seeded.engine.connect() as conn:
        assert ALL_UNITS in conn.execute(sa.select(snapshot_t.c.unit)).scalars().all()


def test_the_default_report_is_answered_from_a_fresh_snapshot(seeded: Forlop) -> None:
    run_report_snapshots(seeded)
    computed_at = age_snapshots(seeded, timedelta(minutes=5))  # younger than 2 x 15 minutes
    start, end = metrics.default_span(computed_at)
    unit = metrics.breakdown(engine=seeded.engine, resolve=seeded.catalog.resolve, start=start, end=end,
                             now=computed_at).units[0]
    for scope, expected_unit in (("unit", unit), ("all", None)):
        answer = _report(seeded, manager(unit), "month", None, None, scope)
        assert answer.generated_at == computed_at
        assert answer.unit == expected_unit
        assert answer == live(seeded, "month", expected_unit, computed_at)


def test_a_snapshot_older_than_twice_the_interval_is_not_used(seeded: Forlop) -> None:
    run_report_snapshots(seeded)
    stale = age_snapshots(seeded, timedelta(minutes=31))
    before = datetime.now(UTC)
    answer = _report(seeded, manager(None), "tertial", None, None, "all")
    assert answer.generated_at >= before > stale  # computed live, now
    assert answer == live(seeded, "tertial", None, answer.generated_at)


def test_a_custom_span_is_always_computed_live(seeded: Forlop) -> None:
    run_report_snapshots(seeded)
    computed_at = age_snapshots(seeded, timedelta(minutes=1))
    start, end = metrics.default_span(computed_at)
    answer = _report(seeded, manager(None), "month", start, end, "all")  # the default span, but asked for
    assert answer.generated_at > computed_at


def test_snapshots_off_means_live_and_no_job(seeded: Forlop) -> None:
    run_report_snapshots(seeded)
    computed_at = age_snapshots(seeded, timedelta(minutes=1))
    assert "run_report_snapshots" in {job.id for job in build_scheduler(seeded).get_jobs()}
    seeded.settings.report_snapshot_minutes = 0
    assert _report(seeded, manager(None), "month", None, None, "all").generated_at > computed_at
    assert "run_report_snapshots" not in {job.id for job in build_scheduler(seeded).get_jobs()}
