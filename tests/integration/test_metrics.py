"""Timeliness figures over a small known data set built through the real services, on SQLite and PostgreSQL.

Fourteen cases opened on Monday 2 November 2026 in one unit (synthetic: no person data beyond made-up names):

- K1 (24 h): cases 0–6 done after 1–7 h; case 7 paused for a day, then done 27.5 h after first contact (3.5 h
  on the clock, the deadline moved to 48 h); cases 8–11 done late after 30–33 h with a deviation note;
  cases 12 and 13 not done (overdue).
- K2 (24 h): cases 0–6 late after 26 h, all noting a wait for an interpreter (written in several ways); case 7
  after 28 h (4 h on the clock); cases 8–11 after 12 h.
- K3 (coordinator, 2 working days): cases 0–9 assigned after 20 h; 10–13 never (overdue).
- Closed after 5 days: cases 0–4 safe housing, 5–6 returned to the abuser, 7 declined. Case 13 has been paused
  since 10 November (its K12 deadline, 30 November, fell inside the pause: not overdue).
- Cases 12 and 13 are new contacts of the people of cases 0 and 1 (repeat contact).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import date, datetime, timedelta, timezone
from typing import Any

import openpyxl
import pytest

from pathway.case.commands import AssignCoordinator, Close, CompleteStep, Pause, Resume
from pathway import services
from pathway.bootstrap import Forlop
from pathway.case import Case
from pathway.metrics import HIDDEN, OTHER, SMALL, CaseFigures, IntervalFigures, Report, export, timeliness
from pathway.metrics.export import to_csv, to_xlsx
from pathway.people import PersonRecord

UTC = timezone.utc
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # Monday 2 November 2026, 09:00 in Oslo
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
UNIT = "testenhet"
NAMES = {0: "Testperson En", 1: "Testperson To", 12: "Testperson En", 13: "Testperson To"}
K1_LATE_NOTES = {8: "Personen svarte ikke", 9: "Personen svarte ikke", 10: "Personen svarte ikke", 11: "Annet"}
K2_LATE_NOTES = ["Ventet på tolk", "ventet på tolk", "Ventet  på tolk ", "Ventet på tolk", "Ventet på tolk",
                 "VENTET PÅ TOLK", "Ventet på tolk"]
OUTCOMES = {0: "safe_housing", 1: "safe_housing", 2: "safe_housing", 3: "safe_housing", 4: "safe_housing",
            5: "returned_to_abuser", 6: "returned_to_abuser", 7: "declined"}


def open_case(core: Forlop, at: datetime, unit: str = UNIT, name: str | None = None) -> str:
    person = PersonRecord(name=name) if name else None
    return services.open_case(
        uow=core.uow(), pathway_id="krisesenter", unit=unit, first_contact_at=at, actor="koordinator",
        keys=core.keys, index_key=core.settings.index_key, reference_prefix="TST", person=person, at=at,
    ).reference


def change(core: Forlop, ref: str, fn) -> Case:  # type: ignore[no-untyped-def]
    case, _ = services.change_case(uow=core.uow(), reference=ref, expected_version=None, change=fn)
    return case


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


def build(core: Forlop) -> None:
    refs = {}
    for i in range(14):
        refs[i] = open_case(core, T0 + hours(i), name=NAMES.get(i))
    for i, ref in refs.items():
        opened = T0 + hours(i)
        if i <= 6:
            change(core, ref, lambda c, at=opened + hours(i + 1): c.execute(CompleteStep("K1"), actor="k", at=at))
            change(core, ref, lambda c, at=opened + hours(26), n=K2_LATE_NOTES[i]:
                   c.execute(CompleteStep("K2", note=n), actor="k", at=at))
        elif i == 7:
            change(core, ref, lambda c, at=opened + hours(0.5): c.execute(Pause(reason="på sykehus"), actor="k", at=at))
            change(core, ref, lambda c, at=opened + hours(24.5): c.execute(Resume(), actor="k", at=at))
            change(core, ref, lambda c, at=opened + hours(27.5): c.execute(CompleteStep("K1"), actor="k", at=at))
            change(core, ref, lambda c, at=opened + hours(28): c.execute(CompleteStep("K2"), actor="k", at=at))
        elif i <= 11:
            change(core, ref, lambda c, at=opened + hours(12): c.execute(CompleteStep("K2"), actor="k", at=at))
            change(core, ref, lambda c, at=opened + hours(30 + i - 8), n=K1_LATE_NOTES[i]:
                   c.execute(CompleteStep("K1", note=n), actor="k", at=at))
        if i <= 9:
            change(core, ref, lambda c, at=opened + hours(20): c.execute(AssignCoordinator("koordinator"), actor="leder", at=at))
        if i in OUTCOMES:
            change(core, ref, lambda c, at=opened + timedelta(days=5), o=OUTCOMES[i]:
                   c.execute(Close(o, reason="avsluttet"), actor="k", at=at))
    change(core, refs[13], lambda c: c.execute(Pause(reason="borte"), actor="k", at=datetime(2026, 11, 10, 8, tzinfo=UTC)))


def report(core: Forlop, period: str = "month", start: date = date(2026, 11, 1), end: date = date(2026, 11, 30),
           unit: str | None = None) -> Report:
    return timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period,  # type: ignore[arg-type]
                      start=start, end=end, unit=unit, now=NOW)


def row(r: Report, checkpoint: str, period: str = "2026-11", repeat: bool = False) -> IntervalFigures:
    return next(x for x in r.intervals if x.checkpoint == checkpoint and x.period == period
                and (x.interval == f"{checkpoint}→{checkpoint}") == repeat)


def cases(r: Report, period: str = "2026-11", pathway: str = "krisesenter") -> CaseFigures:
    """The adult pathway's case figures of a period (every registered pathway has its own row, the child's too)."""
    return next(x for x in r.cases if x.period == period and x.pathway == pathway)


@pytest.fixture
def built(core: Forlop) -> Forlop:
    build(core)
    return core


def test_the_known_data_set_gives_the_exact_figures(built: Forlop) -> None:
    r = report(built)
    assert r.periods == ("2026-11",) and r.unit is None and r.generated_at == NOW

    k1 = row(r, "K1")
    assert (k1.interval, k1.deadline) == ("K0→K1", "24 hours")
    assert k1.completed == 12
    # By deadline (3 November for all 14): 0-7 on time (the paused case's deadline moved a day), 8-11 late, 12 and
    # 13 open past it (13's pause began after its deadline): 8 of 14. Late and open are "<5"; their sum, 6, is no
    # secret (it names neither).
    assert (k1.due, k1.done_on_time, k1.done_late, k1.overdue_now) == (14, 8, SMALL, SMALL)
    assert k1.within_deadline_share == 0.571
    # leads 1..7 h, the paused case 3.5 h (27.5 h less the day paused), late 30..33 h
    assert k1.median_hours == 5.5  # 6.5 if the paused day were counted
    assert k1.p90_hours == 31.9
    assert k1.overdue_now == SMALL  # cases 12 and 13
    assert k1.deviation_reasons == {OTHER: SMALL}  # 3 + 1 notes: no reason given 5 times

    k2 = row(r, "K2")
    # 0-6 late, 7 and 8-11 on time, 12 and 13 open past the deadline: 14 = 5 + 7 + "<5" would give the 2 away, so
    # the smallest shown count of the three is hidden too, and with it the share.
    assert (k2.due, k2.done_on_time, k2.done_late, k2.overdue_now) == (14, HIDDEN, 7, SMALL)
    assert (k2.completed, k2.within_deadline_share) == (12, None)
    assert (k2.median_hours, k2.p90_hours) == (26.0, 26.0)
    assert k2.deviation_reasons == {"Ventet på tolk": 7}  # the same reason, however it was written

    k3 = row(r, "K3")
    assert (k3.interval, k3.deadline, k3.completed, k3.within_deadline_share) == ("K0→K3", "2 working days", 10, 0.714)
    assert (k3.median_hours, k3.p90_hours, k3.overdue_now) == (20.0, 20.0, SMALL)
    # 10 on time, 0 late, 4 open: 14 - 10 - 0 would give the 4 away, so the 0 is "<5" (the cheapest complement)
    assert (k3.due, k3.done_on_time, k3.done_late) == (14, 10, SMALL)

    k4 = row(r, "K4")  # none done, 6 open past the deadline (the 8 closed cases' K4 was cancelled): 0 %, not 100 %
    assert (k4.completed, k4.within_deadline_share, k4.median_hours, k4.overdue_now) == (0, 0.0, None, 6)
    k12 = row(r, "K12")
    assert (k12.interval, k12.completed, k12.overdue_now) == ("K0→K12", 0, 5)  # case 13's clock stands still
    assert row(r, "K12", repeat=True).deadline == "every 28 days ×2, then every 42 days"

    c = cases(r)
    # 10 assigned in time, 0 late, 4 not yet and overdue: the 0 is hidden too, so the 4 cannot be worked out
    assert (c.opened, c.coordinator_decided, c.coordinator_within_share) == (14, 14, 0.714)
    assert c.closed == 8
    assert c.outcomes == {"safe_housing": 5, "returned_to_abuser": SMALL, "moved_away": 0, "declined": SMALL,
                          "transferred": 0, "ended_early": 0}
    assert c.returned_to_abuser_share is None  # it would give the suppressed count away
    assert (c.repeat_contact, c.repeat_contact_share) == (SMALL, None)


def test_months_tertials_and_units_agree(built: Forlop) -> None:
    months = report(built, start=date(2026, 9, 1), end=date(2026, 12, 31))
    assert months.periods == ("2026-09", "2026-10", "2026-11", "2026-12")
    tertial = report(built, period="tertial", start=date(2026, 11, 15), end=date(2026, 11, 15))
    assert tertial.periods == ("2026-T3",)
    one_unit = report(built, unit=UNIT)
    other_unit = report(built, unit="annen enhet")
    for checkpoint in ("K1", "K2", "K3", "K4", "K12"):
        nov = row(months, checkpoint)
        assert row(tertial, checkpoint, "2026-T3") == IntervalFigures(**{
            **{f: getattr(nov, f) for f in IntervalFigures.__slots__}, "period": "2026-T3"})
        assert row(one_unit, checkpoint) == IntervalFigures(**{
            **{f: getattr(nov, f) for f in IntervalFigures.__slots__}, "unit": UNIT})
        for month in ("2026-09", "2026-10", "2026-12"):
            empty = row(months, checkpoint, month)
            assert (empty.completed, empty.within_deadline_share, empty.overdue_now) == (0, None, 0)
        nothing = row(other_unit, checkpoint)
        assert (nothing.completed, nothing.overdue_now, nothing.median_hours) == (0, 0, None)
    assert cases(tertial, "2026-T3").outcomes == cases(months).outcomes
    assert cases(one_unit).closed == 8 and cases(other_unit).closed == 0


def test_a_small_unit_cannot_be_worked_out_from_all_units_minus_the_others(core: Forlop) -> None:
    refs = [open_case(core, T0 + hours(i), unit="stor") for i in range(6)]
    refs += [open_case(core, T0 + hours(i), unit="liten") for i in range(2)]
    for i, ref in enumerate(refs):  # all late, all for the same reason
        change(core, ref, lambda c, at=T0 + hours(i + 30): c.execute(CompleteStep("K1", note="Ventet på tolk"), actor="k", at=at))
    everyone = row(report(core), "K1")
    small = row(report(core, unit="liten"), "K1")
    big = row(report(core, unit="stor"), "K1")
    assert everyone.completed == 8 and small.completed == SMALL
    assert big.completed == HIDDEN  # 8 - 6 would give the small unit's 2 away
    assert big.within_deadline_share is None and big.median_hours is None
    # the reason is named for all units, so it cannot be named with its count for the big unit either
    # each reason that may be named (here given 8 times, in 8 cases) is a count in every row, suppressed with the rest
    assert everyone.deviation_reasons == {"Ventet på tolk": 8}
    assert big.deviation_reasons == {"Ventet på tolk": HIDDEN} and small.deviation_reasons == {"Ventet på tolk": SMALL}
    # and the big unit's tertial minus its other months does not give its November back either
    big_months = report(core, unit="stor", start=date(2026, 9, 1), end=date(2026, 12, 31))
    big_tertial = row(report(core, period="tertial", unit="stor"), "K1", "2026-T3")
    visible = [row(big_months, "K1", m).completed for m in ("2026-09", "2026-10", "2026-12")]
    assert not (isinstance(big_tertial.completed, int) and all(isinstance(v, int) for v in visible))


def test_the_csv_and_the_workbook_carry_the_same_figures_as_the_json(built: Forlop) -> None:
    for r in (report(built, start=date(2026, 9, 1), end=date(2026, 12, 31)), report(built, unit=UNIT),
              report(built, period="tertial")):
        expected = figures_in_json(json.loads(json.dumps(dataclasses.asdict(r), default=str)))  # as the API answers
        assert SMALL in expected.values() and 0.571 in expected.values()  # suppressed counts and shares too
        body = to_csv(r)
        in_csv: dict[str, list[dict[str, Any]]] = {}
        for line in csv.DictReader(io.StringIO(body.decode("utf-8-sig"))):
            in_csv.setdefault(line.pop(export.TABLE), []).append({k: _value(v) for k, v in line.items()})
        assert figures_in_tables(in_csv) == expected
        book = openpyxl.load_workbook(io.BytesIO(to_xlsx(r)))
        in_book = {s.title: [dict(zip([c.value for c in s[1]], row)) for row in s.iter_rows(min_row=2, values_only=True)]
                   for s in book}
        assert figures_in_tables(in_book) == expected
        numbers = [v for rows in in_book.values() for row in rows for v in row.values() if not isinstance(v, str)]
        assert 12 in numbers and 0.571 in numbers and 31.9 in numbers  # numbers, not text
        not_over = {row[export.PERIOD] for row in in_book[export.INTERVALS] if row[export.NOT_OVER] == "yes"}
        assert not_over == set(r.partial)
        everything = body.decode("utf-8-sig") + repr(in_book)
        assert "Testperson" not in everything and "TST-" not in everything  # aggregates only: no name, no reference


# The columns of each table's figures, by their field in the JSON.
INTERVAL_FIELDS = {"completed": export.DONE, "median_hours": export.MEDIAN, "p90_hours": export.P90,
                   "due": export.DUE, "done_on_time": export.ON_TIME, "done_late": export.LATE,
                   "overdue_now": export.OVERDUE, "within_deadline_share": export.SHARE}
CASE_FIELDS = {"opened": export.OPENED, "coordinator_decided": export.DECIDED,
               "coordinator_within_share": export.COORDINATOR, "closed": export.CLOSED,
               "returned_to_abuser_share": export.RETURNED, "repeat_contact": export.REPEAT,
               "repeat_contact_share": export.REPEAT_SHARE}


def figures_in_json(j: dict[str, Any]) -> dict[tuple[Any, ...], Any]:
    found: dict[tuple[Any, ...], Any] = {}
    for x in j["intervals"]:
        where = (x["pathway"], x["period"], x["unit"], x["interval"])
        found |= {("interval", *where, f): x[f] for f in INTERVAL_FIELDS}
        found |= {("reason", *where, reason): n for reason, n in x["deviation_reasons"].items()}
    for table in ("cases", "by_unit"):
        for c in j[table]:
            where = (c["pathway"], c["period"], c["unit"])
            found |= {(table, *where, f): c[f] for f in CASE_FIELDS}
            found |= {("outcome", *where, code): n for code, n in c["outcomes"].items()}
    return found


def figures_in_tables(tables: dict[str, list[dict[str, Any]]]) -> dict[tuple[Any, ...], Any]:
    def where(row: dict[str, Any]) -> tuple[Any, ...]:
        return row[export.PATHWAY], row[export.PERIOD], None if row[export.UNIT] == "All units" else row[export.UNIT]

    found: dict[tuple[Any, ...], Any] = {}
    for row in tables[export.INTERVALS]:
        found |= {("interval", *where(row), row[export.INTERVAL], f): row[h] for f, h in INTERVAL_FIELDS.items()}
    for row in tables[export.REASONS]:
        found[("reason", *where(row), row[export.INTERVAL], row[export.REASON])] = row[export.COUNT]
    for table, name in (("cases", export.CASES), ("by_unit", export.BY_UNIT)):
        for row in tables.get(name, []):
            found |= {(table, *where(row), f): row[h] for f, h in CASE_FIELDS.items()}
    for row in tables[export.OUTCOMES]:
        found[("outcome", *where(row), row[export.OUTCOME_CODE])] = row[export.COUNT]
    return found


def _value(cell: str) -> Any:
    """A CSV cell as the JSON has it: empty is null, a number a number, the rest text."""
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def test_periods_and_arguments_are_checked(core: Forlop) -> None:
    with pytest.raises(ValueError, match="naive"):
        timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="month", start=date(2026, 11, 1),
                   end=date(2026, 11, 30), now=datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="unknown period"):
        timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="week",  # type: ignore[arg-type]
                   start=date(2026, 11, 1), end=date(2026, 11, 30), now=NOW)
    with pytest.raises(ValueError, match="before start"):
        report(core, start=date(2026, 11, 30), end=date(2026, 11, 1))
    empty = report(core)
    assert all(x.completed == 0 and x.overdue_now == 0 for x in empty.intervals)
    assert cases(empty).opened == 0


def test_one_breakdown_gives_every_units_report_as_timeliness_does(core: Forlop) -> None:
    from pathway.demo import seed_demo
    from pathway.metrics import breakdown, reports_for_all_units

    seed_demo(core, cases=60, seed=1, now=NOW)
    start, end = date(2025, 12, 1), date(2026, 12, 1)
    whole = breakdown(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, start=start, end=end, now=NOW)
    assert len(whole.units) >= 3
    for period in ("month", "tertial"):
        reports = reports_for_all_units(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period=period,
                                        start=start, end=end, now=NOW)
        assert set(reports) == {*whole.units, None}
        for unit, from_breakdown in reports.items():
            assert from_breakdown == report(core, period, start, end, unit=unit)
            assert from_breakdown == whole.report(period, unit)  # type: ignore[arg-type]
        assert any(r.completed not in (0, SMALL) for r in reports[None].intervals)  # figures, not only zeros
