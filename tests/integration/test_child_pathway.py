"""The engine runs the child pathway (definitions/barn.yaml) beside the adult's, on SQLite and PostgreSQL: a case on
``barn`` opens with its own steps and deadlines, the case list and the managers' report can be filtered by pathway,
and a child pathway's intervals appear in the report under that pathway, like the adult's."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from pathway import services
from pathway.bootstrap import Forlop
from pathway.case.commands import CompleteStep
from pathway.errors import InvalidArgument
from pathway.metrics.view import read_report
from pathway.views.cases import case_list

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday 09:00 in Oslo, no holidays near
UNIT = "testenhet"
SPAN = (date(2026, 11, 1), date(2026, 11, 30))


def open_case(core: Forlop, pathway: str, at: datetime = T0) -> str:
    return services.open_case(
        uow=core.uow(), pathway_id=pathway, unit=UNIT, first_contact_at=at, actor="k1", keys=core.keys,
        index_key=core.settings.index_key, reference_prefix="TST", at=at).reference


def complete(core: Forlop, reference: str, code: str, at: datetime) -> None:
    services.execute(uow=core.uow(), reference=reference, expected_version=None, command=CompleteStep(code),
                     actor="k1", at=at)


def test_every_shipped_definition_is_registered_at_bootstrap(core: Forlop) -> None:
    assert {(p, v) for p, v, _ in core.catalog.versions()} >= {("barn", 1), ("krisesenter", core.catalog.latest(
        "krisesenter").version)}


def test_a_case_on_the_child_pathway_opens_with_its_own_steps_and_deadlines(core: Forlop) -> None:
    reference = open_case(core, "barn")
    with core.uow(read_only=True) as uow:
        case = uow.cases.get(reference)
    assert case.definition.key == ("barn", 1) and case.phase == "intake"
    steps = {s.code: s for s in case.steps}
    assert steps["B0"].state == "done"
    due = {code: s.due_at for code, s in steps.items() if s.due_at is not None}
    assert due == {"B1": T0 + timedelta(days=2), "B2": T0 + timedelta(days=1), "B3": T0 + timedelta(days=7),
                   "B4": T0 + timedelta(days=7)}
    assert "B5" not in steps  # after moving out only: made when the phase is entered
    assert not any(code.startswith("K") for code in steps)


def test_the_case_list_names_each_cases_pathway_and_keeps_one_pathway_when_asked(core: Forlop) -> None:
    adult, child = open_case(core, "krisesenter"), open_case(core, "barn")
    now = T0 + timedelta(hours=1)
    with core.engine.connect() as conn:
        every = {c["reference"]: c["pathway"] for c in case_list(conn, unit=UNIT, now=now, limit=None).items}
        children = [c["reference"] for c in case_list(conn, unit=UNIT, now=now, limit=None, pathway="barn").items]
        adults = [c["reference"] for c in case_list(conn, unit=UNIT, now=now, limit=None, pathway="krisesenter",
                                                    count=True).items]
    assert every == {adult: "krisesenter", child: "barn"}
    assert children == [child] and adults == [adult]


def test_a_pathway_filter_names_a_registered_pathway(core: Forlop) -> None:
    assert core.catalog.named("barn").id == "barn"
    with pytest.raises(InvalidArgument) as caught:
        core.catalog.named("nope")
    assert caught.value.field == "pathway"
    assert "barn" in str(caught.value) and "krisesenter" in str(caught.value) and "nope" not in str(caught.value)
    with pytest.raises(InvalidArgument):
        read_report(core, UNIT, "month", *SPAN, pathway="nope")


def test_a_child_pathways_interval_appears_in_the_report_under_its_pathway_and_the_filter_keeps_one(
        core: Forlop) -> None:
    # five children had their own conversation on time (a count under 5 would be hidden), and one adult case
    children = [open_case(core, "barn", T0 + timedelta(minutes=i)) for i in range(5)]
    for i, reference in enumerate(children):
        complete(core, reference, "B1", T0 + timedelta(hours=20 + i))
    open_case(core, "krisesenter")

    def rows(pathway: str | None) -> dict[tuple[str, str], object]:
        report = read_report(core, UNIT, "month", *SPAN, pathway=pathway)
        return {(r.pathway, r.interval): r for r in report.intervals if r.period == "2026-11"}

    every = rows(None)
    b1 = every["barn", "B0→B1"]
    assert (b1.completed, b1.done_on_time, b1.within_deadline_share) == (5, 5, 1.0)  # type: ignore[attr-defined]
    assert 20 <= b1.median_hours <= 24  # type: ignore[attr-defined]
    assert ("krisesenter", "K0→K1") in every and ("barn", "B5+") not in every
    assert {p for p, _ in rows("barn")} == {"barn"} and rows("barn")["barn", "B0→B1"] == b1
    assert {p for p, _ in rows("krisesenter")} == {"krisesenter"}
    report = read_report(core, UNIT, "month", *SPAN, pathway="barn")
    assert report.pathway == "barn" and {c.pathway for c in report.cases} == {"barn"}
    [november] = [c for c in report.cases if c.period == "2026-11"]
    assert november.opened == 5
