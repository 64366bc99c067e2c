"""The shipped child pathway (definitions/barn.yaml): it loads, validates and draws; the school is never told an
address; child welfare is told on the duty to inform; and a handover may warn whoever sends it, by a condition of
the case (``warn_when``, ``PathwayDefinition.handover_warnings``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.web import diagram
from pathway.case import Case
from pathway.case import commands as do
from pathway.cli import app
from pathway.definition import PathwayDefinition, load_definition, parse_definition
from pathway.errors import ConsentRequired, DefinitionError, InvalidArgument
from pathway.machine import mermaid

from tests.unit.test_definition import MINIMAL, line_of, problems_of

DEFINITIONS = Path(__file__).resolve().parents[2] / "definitions"
BARN = DEFINITIONS / "barn.yaml"
ACTOR = "barnekoordinator-1"
# What would tell where the child lives or stays: no scope a school may receive may be named like it.
ADDRESS_WORDS = ("address", "adresse", "location", "sted", "place", "centre", "senter", "shelter")


@pytest.fixture(scope="module")
def barn() -> PathwayDefinition:
    return load_definition(BARN)


def _open(barn: PathwayDefinition, start: datetime, conditions: tuple[str, ...] = ()) -> Case:
    return Case.open(barn, case_id=uuid.UUID(int=7), reference="VIR-2026-0007", unit="bergen",
                     first_contact_at=start, actor=ACTOR, at=start, conditions=list(conditions))


def test_the_child_pathway_loads_as_barn_version_1_with_every_text_in_both_languages(barn: PathwayDefinition) -> None:
    assert barn.key == ("barn", 1)
    assert [c.code for c in barn.checkpoints] == ["B0", "B1", "B2", "B3", "B4", "B5", "B6"]
    texts = [barn.title, *barn.roles.values(), *barn.agencies.values(), *barn.consent_scopes.values(),
             *barn.conditions.values(), *barn.milestones.values(), *barn.outcomes.values(),
             *(p.title for p in barn.phases), *(c.name for c in barn.checkpoints)]
    assert all(t.nb and t.en and t.nb != "" for t in texts)
    assert barn.roles["child_coordinator"].nb == "Barnekoordinator"


def test_its_checkpoint_codes_never_collide_with_the_adults(barn: PathwayDefinition) -> None:
    adult = load_definition(DEFINITIONS / "krisesenter.yaml")
    assert not set(barn.checkpoint) & set(adult.checkpoint)


def test_the_cli_validates_and_draws_it_in_both_languages() -> None:
    runner = CliRunner()
    validated = runner.invoke(app, ["validate", str(BARN)])
    assert validated.exit_code == 0, validated.output
    for lang, phase in (("nb", "Opphold og støtte"), ("en", "Stay and support")):
        drawn = runner.invoke(app, ["diagram", str(BARN), "--lang", lang])
        assert drawn.exit_code == 0, drawn.output
        assert drawn.output.startswith("stateDiagram-v2")
        assert phase in drawn.output and "B5" in drawn.output


def test_the_case_page_diagram_draws_it(barn: PathwayDefinition, start: datetime) -> None:
    case = _open(barn, start)
    svg = str(diagram.build(barn, case, "en").svg(lambda word: word, "x"))  # type: ignore[arg-type]
    assert "Stay and support" in svg and "Re-establishment" in svg
    assert mermaid(barn, lang="nb").count("-->") >= 6


def test_the_school_may_receive_the_childs_first_name_and_the_parents_safe_channel_and_nothing_else(
        barn: PathwayDefinition) -> None:
    handover = barn.checkpoint["B3"].handover
    assert handover is not None and handover.agencies == ("school",)
    assert barn.agencies["school"].nb == "Skole eller barnehage"
    assert barn.agencies["school"].en == "School or kindergarten"
    assert set(handover.scope) <= {"name", "contact"}
    assert set(barn.agencies["school"].scopes) <= {"name", "contact"}
    for scope in (*handover.scope, *barn.agencies["school"].scopes):
        words = f"{scope} {barn.consent_scopes[scope].nb} {barn.consent_scopes[scope].en}".lower()
        assert not any(w in words for w in ADDRESS_WORDS), scope
    assert barn.checkpoint["B3"].deadline is not None
    assert (barn.checkpoint["B3"].deadline.after, barn.checkpoint["B3"].deadline.working_days) == ("first_contact", 5)


def test_child_welfare_is_told_on_the_duty_to_inform_without_consent_and_with_a_reason(
        barn: PathwayDefinition, start: datetime) -> None:
    handover = barn.checkpoint["B2"].handover
    assert handover is not None and handover.agencies == ("child_welfare",)
    assert barn.legal_bases_for("child_welfare") == ("child_welfare_duty",)
    assert barn.legal_bases["child_welfare_duty"].law == "barnevernsloven § 13-2"
    case = _open(barn, start)
    at = start + timedelta(hours=1)
    with pytest.raises(InvalidArgument, match="reason"):
        case.execute(do.CreateHandover("B2", legal_basis="child_welfare_duty"), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("B2", legal_basis="child_welfare_duty", reason="barnet forteller om vold"),
                 actor=ACTOR, at=at)
    task = case.handovers[-1]
    assert (task.agency, task.basis, task.scope) == ("child_welfare", "child_welfare_duty", ())


def test_the_school_is_not_told_without_the_parents_consent_nor_on_a_legal_basis(
        barn: PathwayDefinition, start: datetime) -> None:
    case = _open(barn, start)
    at = start + timedelta(hours=1)
    with pytest.raises(ConsentRequired):
        case.execute(do.CreateHandover("B3"), actor=ACTOR, at=at)
    with pytest.raises(InvalidArgument, match="legal_basis"):
        case.execute(do.CreateHandover("B3", legal_basis="child_welfare_duty", reason="skolestart"), actor=ACTOR,
                     at=at)
    case.execute(do.RecordConsent("school", ("name", "contact")), actor=ACTOR, at=at)
    case.execute(do.CreateHandover("B3"), actor=ACTOR, at=at)
    assert case.handovers[-1].scope == ("name", "contact")


def test_the_deadlines_run_from_first_contact_in_working_days(barn: PathwayDefinition, start: datetime) -> None:
    case = _open(barn, start)  # Monday morning
    due = {s.code: s.due_at for s in case.steps if s.due_at is not None}
    assert due["B1"] == start + timedelta(days=2)  # two working days: Wednesday
    assert due["B2"] == start + timedelta(days=1)
    assert due["B3"] == start + timedelta(days=7)  # five working days: the Monday after
    assert "B5" not in due  # after moving out only


def test_the_follow_up_after_the_stay_repeats_every_six_weeks_for_six_months(barn: PathwayDefinition) -> None:
    b5 = barn.checkpoint["B5"]
    assert b5.deadline is not None and (b5.deadline.after, b5.deadline.days) == ("moved_out", 42)
    intervals = [b5.repeat_interval(n) for n in range(2, 7)]
    assert [i.days if i else None for i in intervals] == [42, 42, 42, None, None]  # 6, 12, 18 and 24 weeks


def test_closure_takes_an_outcome_that_fits_a_child(barn: PathwayDefinition) -> None:
    assert barn.checkpoint["B6"].completed_by == "close"
    assert {"back_in_school", "moved_with_parent", "transferred", "ended_early"} <= set(barn.outcomes)


# -- handover warnings -------------------------------------------------------------------------------------------


def test_the_school_handover_warns_when_the_other_parent_shares_parental_responsibility(
        barn: PathwayDefinition) -> None:
    [warning] = barn.handover_warnings("B3", {"shared_parental_responsibility"})
    assert "foreldreansvaret" in warning.get("nb")
    assert "parental responsibility" in warning.get("en")


def test_no_warning_without_the_condition_nor_for_a_checkpoint_without_one(barn: PathwayDefinition) -> None:
    assert barn.handover_warnings("B3", set()) == []
    assert barn.handover_warnings("B3", ["shelter_stay"]) == []
    assert barn.handover_warnings("B2", ["shared_parental_responsibility"]) == []  # child welfare: the law says so
    assert barn.handover_warnings("B1", ["shared_parental_responsibility"]) == []  # no handover
    assert barn.handover_warnings("K6", ["shared_parental_responsibility"]) == []  # not this pathway's


WARNED = MINIMAL.replace("roles:\n", """\
agencies:
  school: {nb: Skole, en: School}
consent_scopes:
  name: {nb: Navn, en: Name}
conditions:
  split: {nb: Delt, en: Split}
  other: {nb: Annet, en: Other}
roles:
""") + """\
    handover:
      agency: school
      scope: [name]
      warn_when:
        other: {nb: Først annet, en: Other first}
        split: {nb: Delt foreldreansvar, en: Shared responsibility}
"""


def test_the_warnings_of_every_condition_that_holds_come_in_the_definitions_order() -> None:
    d = parse_definition(WARNED)
    assert [w.en for w in d.handover_warnings("C1", ["split", "other"])] == ["Other first", "Shared responsibility"]
    assert [w.nb for w in d.handover_warnings("C1", ("split",))] == ["Delt foreldreansvar"]


def test_a_warning_for_an_unknown_condition_is_refused_at_its_line_and_field() -> None:
    text = WARNED.replace("        split: {nb: Delt foreldreansvar", "        splitt: {nb: Delt foreldreansvar")
    [problem] = problems_of(text, "warned.yaml")
    assert (problem.file, problem.line) == ("warned.yaml", line_of(text, "splitt:"))
    assert problem.field == "checkpoints[0].handover.warn_when.splitt"
    assert "unknown condition 'splitt'" in problem.message


def test_a_warning_needs_both_languages() -> None:
    text = WARNED.replace("{nb: Først annet, en: Other first}", "{nb: Først annet}")
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, filename="warned.yaml")
    problem = caught.value.problems[0]
    assert problem.field == "checkpoints[0].handover.warn_when.other.en"
    assert problem.line == line_of(text, "other: {nb: Først annet}")
