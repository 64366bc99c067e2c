"""The managers' report answered from stored blocks (one per tertial), on SQLite and PostgreSQL: any span the
blocks give equals the live report, the job keeps them fresh, a stale or missing block is computed when asked for,
and with the blocks off every report is computed live."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from pathway import metrics, policy, services
from pathway.accounts import User
from pathway.bootstrap import Forlop
from pathway.demo import seed_demo
from pathway.metrics.snapshots import ALL_UNITS, BLOCK, EVERY_UNIT, blocks_report
from pathway.metrics.view import read_report as _report
from pathway.scheduler import build_scheduler, run_report_snapshots
from pathway.store.tables import snapshot_t

UTC = timezone.utc
MAX_AGE = timedelta(minutes=30)


def manager(unit: str | None) -> User:
    return User(id=uuid.uuid4(), username="leder-test", role="manager", unit=unit, agency=None, language="nb")


@pytest.fixture
def seeded(core: Forlop) -> Forlop:
    seed_demo(core, cases=60, seed=1)
    return core


def live(core: Forlop, period: str, unit: str | None, now: datetime, start: date | None = None,
         end: date | None = None) -> metrics.Report:
    if start is None or end is None:
        start, end = metrics.default_span(now)
    return metrics.timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period,  # type: ignore[arg-type]
                              start=start, end=end, unit=unit, now=now)


def from_blocks(core: Forlop, period: str, unit: str | None, now: datetime, start: date | None = None,
                end: date | None = None) -> metrics.Report:
    if start is None or end is None:
        start, end = metrics.default_span(now)
    return blocks_report(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period,  # type: ignore[arg-type]
                         start=start, end=end, unit=unit, now=now, max_age=MAX_AGE)


def computed_at(core: Forlop) -> dict[date, datetime]:
    with core.engine.connect() as conn:
        return dict(conn.execute(sa.select(snapshot_t.c.period_start, sa.func.min(snapshot_t.c.computed_at))
                                 .where(snapshot_t.c.period == BLOCK).group_by(snapshot_t.c.period_start)).all())


def age_blocks(core: Forlop, by: timedelta) -> None:
    for start, at in computed_at(core).items():
        with core.engine.begin() as conn:
            conn.execute(snapshot_t.update().where(snapshot_t.c.period_start == start).values(computed_at=at - by))


def test_the_job_stores_a_block_per_tertial_of_three_years_that_gives_the_live_report(seeded: Forlop) -> None:
    services.add_user(engine=seeded.engine, username="leder-ny", role="manager", unit="ny-enhet")  # no cases yet
    now = datetime.now(UTC)
    assert run_report_snapshots(seeded, now=now) > 0
    tertials = computed_at(seeded)
    assert len(tertials) >= 9 and set(tertials.values()) == {now}  # three years and the current tertial
    start, end = metrics.default_span(now)
    units = metrics.breakdown(engine=seeded.engine, resolve=seeded.catalog.resolve, keys=seeded.keys, start=start, end=end,
                              now=now).units
    assert "ny-enhet" not in units and len(units) >= 2
    for period in ("month", "tertial"):
        for unit in (units[0], "ny-enhet", None):
            stored = from_blocks(seeded, period, unit, now)
            assert stored == live(seeded, period, unit, now)
            assert isinstance(stored.intervals[0], metrics.IntervalFigures)
    everyone = from_blocks(seeded, "month", None, now)
    assert {c.unit for c in everyone.by_unit} == set(units)  # the comparison per unit, each unit's own figures
    own = from_blocks(seeded, "month", units[0], now)
    beside = [c for c in everyone.by_unit if c.unit == units[0]]  # the tertials the unit has figures in
    # per pathway: a unit may have an adult's case in a tertial and no child's
    assert beside and beside == [c for c in own.cases if (c.pathway, c.period) in {(b.pathway, b.period) for b in beside}]
    with seeded.engine.connect() as conn:
        keys = set(conn.execute(sa.select(snapshot_t.c.unit)).scalars())
    assert {ALL_UNITS, EVERY_UNIT, "ny-enhet", *units} <= keys
    assert run_report_snapshots(seeded, now=now + timedelta(minutes=15)) > 0  # the current tertial again
    again = computed_at(seeded)
    assert sorted(again.values())[-1] == now + timedelta(minutes=15) and sorted(again.values())[0] == now


def test_any_span_is_answered_from_the_blocks_as_the_live_report_would_answer_it(seeded: Forlop) -> None:
    now = datetime.now(UTC)
    run_report_snapshots(seeded, now=now)
    age_blocks(seeded, timedelta(minutes=5))
    today = metrics.default_span(now)[1]
    spans = [(today.replace(day=1) - timedelta(days=200), today - timedelta(days=40)),
             (today - timedelta(days=3 * 365), today - timedelta(days=2 * 365))]
    for start, end in spans:
        for period, scope in (("month", "all"), ("tertial", "unit")):
            unit = policy.report_unit(manager("bergen-sentrum"), scope)  # type: ignore[arg-type]
            answer = _report(seeded, unit, period, start, end)  # type: ignore[arg-type]
            assert answer.generated_at == now - timedelta(minutes=5)  # from the blocks, not computed now
            assert answer == live(seeded, period, None if scope == "all" else "bergen-sentrum",
                                  answer.generated_at, start, end)


def test_a_stale_or_missing_block_is_computed_when_asked_for_and_not_stored(seeded: Forlop) -> None:
    now = datetime.now(UTC)
    run_report_snapshots(seeded, now=now)
    age_blocks(seeded, MAX_AGE + timedelta(minutes=1))  # stale: the current tertial (and one over <31 days); not older
    stored = computed_at(seeded)
    before = datetime.now(UTC)
    answer = _report(seeded, None, "tertial", None, None)
    assert computed_at(seeded) == stored  # a read never writes: only the job does
    assert answer.generated_at < before  # the past tertials' blocks are still served
    current = metrics.period_key(before, "tertial")
    assert answer.cases[-1].period == current
    assert answer.cases[-1] == live(seeded, "tertial", None, datetime.now(UTC)).cases[-1]  # the current one: now
    with seeded.engine.begin() as conn:
        conn.execute(snapshot_t.delete())
    fresh = _report(seeded, None, "month", None, None)
    assert fresh.generated_at >= before and computed_at(seeded) == {}


def test_blocks_off_means_live_and_no_job(seeded: Forlop) -> None:
    now = datetime.now(UTC)
    run_report_snapshots(seeded, now=now)
    age_blocks(seeded, timedelta(minutes=1))
    assert "run_report_snapshots" in {job.id for job in build_scheduler(seeded).get_jobs()}
    seeded.settings.report_snapshot_minutes = 0
    assert _report(seeded, None, "month", None, None).generated_at > now
    assert "run_report_snapshots" not in {job.id for job in build_scheduler(seeded).get_jobs()}
