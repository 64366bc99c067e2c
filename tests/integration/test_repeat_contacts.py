"""Repeat contact (a person with a case in the 12 months before a new one, by the blind index of the name) in the
demo and in the managers' report, on SQLite and PostgreSQL. The report once showed 0 everywhere: every demo name
carried a running number, so no one ever came back."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, datetime, timezone

import sqlalchemy as sa

from pathway import services
from pathway.bootstrap import Forlop
from pathway.demo import seed_demo
from pathway.metrics import HIDDEN, SMALL, timeliness, to_csv
from pathway.metrics.periods import period_key
from pathway.store.tables import case_t, person_t

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)  # fixed: the demo's cases lie in the 400 days before


def test_the_demo_brings_people_back_and_each_return_is_flagged(core: Forlop) -> None:
    seed_demo(core, cases=80, seed=1, now=NOW)
    with core.engine.connect() as conn:
        rows = conn.execute(sa.select(case_t.c.reference, case_t.c.opened_at, case_t.c.repeat_contact,
                                      person_t.c.name_index).join(person_t, person_t.c.case_id == case_t.c.id)
                            .order_by(case_t.c.opened_at)).all()
    seen: set[str] = set()
    expected = {}
    for r in rows:  # in order of first contact: flagged exactly when the same person came before (all within 12 months)
        expected[r.reference] = r.name_index in seen
        seen.add(r.name_index)
    assert {r.reference: r.repeat_contact for r in rows} == expected
    assert sum(expected.values()) >= 5  # enough that a report can show them
    # a returning person is the same record, found by the same name
    again = next(r for r in rows if r.repeat_contact)
    person = services.read_person(uow=core.uow(), reference=again.reference, keys=core.keys)
    assert person is not None
    assert len(services.find_cases_by_name(uow=core.uow(), name=person.name, index_key=core.settings.index_key)) >= 2


def test_the_report_counts_every_repeat_contact_that_it_may_show(core: Forlop) -> None:
    seed_demo(core, cases=80, seed=1, now=NOW)
    with core.engine.connect() as conn:
        flagged = Counter(period_key(at, "tertial") for at in conn.execute(
            sa.select(case_t.c.opened_at).where(case_t.c.repeat_contact.is_(True))).scalars())
    report = timeliness(engine=core.engine, resolve=core.catalog.resolve, keys=core.keys, period="tertial",
                        start=date(2025, 9, 1), end=date(2026, 12, 31), unit=None, now=NOW)
    shown = {c.period: c.repeat_contact for c in report.cases}
    assert set(flagged) <= set(shown)
    for period, count in shown.items():
        n = flagged.get(period, 0)
        if count == SMALL:
            assert 0 <= n < 5
        elif count != HIDDEN:
            assert count == n, period
    assert any(isinstance(c, int) and c >= 5 for c in shown.values()), shown  # not 0 everywhere any more
    downloaded = csv.DictReader(io.StringIO(to_csv(report).decode("utf-8-sig")))
    assert any(row["Repeat contact"] not in ("0", SMALL, HIDDEN) for row in downloaded if row["Table"] == "Cases")
