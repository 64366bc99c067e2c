"""Parsing and validating pathway definitions: every problem is reported at once, with its line and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from pathway.definition import PathwayDefinition, json_schema, load_definition, parse_definition
from pathway.errors import DefinitionError, Problem
from tests.unit.conftest import VERSION_LINE

# A small valid pathway: three phases in a row, one checkpoint. Variants below break it in one place each.
MINIMAL = """\
id: mini
version: 1
title: {nb: Mini, en: Mini}
roles:
  worker: {nb: Arbeider, en: Worker}
outcomes:
  done: {nb: Ferdig, en: Done}
phases:
  - id: start
    title: {nb: Start, en: Start}
  - id: middle
    title: {nb: Midt, en: Middle}
  - id: end
    title: {nb: Slutt, en: End}
    final: true
transitions:
  - {trigger: go, source: start, dest: middle}
  - {trigger: finish, source: middle, dest: end}
checkpoints:
  - code: C1
    name: {nb: Første, en: First}
    phases: [start]
    owner: worker
    deadline: {after: first_contact, hours: 24}
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based number of the line holding the ``nth`` occurrence of ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} not in the text")


def column_of(text: str, needle: str) -> int:
    """The 1-based column where ``needle`` starts on its line."""
    return text.splitlines()[line_of(text, needle) - 1].index(needle) + 1


def problems_of(text: str, filename: str = "broken.yaml") -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, filename=filename)
    assert caught.value.problems, "a DefinitionError must list at least one problem"
    return caught.value.problems


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur exactly once to make an unambiguous variant"
    return text.replace(old, new)


def only(problems: list[Problem], field: str) -> Problem:
    matching = [p for p in problems if p.field == field]
    assert len(matching) == 1, f"expected one problem on {field}, got {[str(p) for p in problems]}"
    return matching[0]


# -- the shipped definition --------------------------------------------------------------------------------


def test_the_shipped_definition_validates(definition: PathwayDefinition) -> None:
    assert definition.id == "krisesenter"
    # K14 (health care or another service, since v2) and K15 (first contact after a police referral, since v3) come
    # before closure, which stays last.
    assert [c.code for c in definition.checkpoints] == [*(f"K{n}" for n in range(13)), "K14", "K15", "K13"]
    assert [p.id for p in definition.phases] == ["intake", "support", "after_stay", "closed"]
    assert definition.final_phases == {"closed"}


def test_the_shipped_definition_keeps_its_source_and_its_hash(
    definition: PathwayDefinition, shipped_text: str
) -> None:
    assert definition.sha256 == hashlib.sha256(shipped_text.encode("utf-8")).hexdigest()
    assert definition.source == shipped_text


def test_the_shipped_deadlines_follow_the_domain_brief(definition: PathwayDefinition) -> None:
    k = definition.checkpoint
    assert (k["K1"].deadline.after, k["K1"].deadline.hours) == ("first_contact", 24)
    assert (k["K2"].deadline.after, k["K2"].deadline.hours) == ("first_contact", 24)
    assert (k["K3"].deadline.after, k["K3"].deadline.working_days) == ("first_contact", 2)
    assert (k["K5"].deadline.after, k["K5"].deadline.working_days) == ("first_contact", 1)
    assert k["K5"].when == ("children",) and k["K5"].handover is None  # the child-welfare notice: the child's B2
    assert (k["K6"].deadline.after, k["K6"].handover.agency) == ("consent.police", "police")
    assert (k["K7"].deadline.after, k["K7"].handover.agency) == ("consent.nav", "nav")
    assert (k["K8"].deadline.after, k["K8"].deadline.working_days) == ("K3", 10)
    assert k["K0"].completed_by == "open" and k["K13"].completed_by == "close"


def test_a_parsed_definition_is_frozen(definition: PathwayDefinition) -> None:
    with pytest.raises(ValidationError):
        definition.version = 2  # type: ignore[misc]


def test_the_minimal_pathway_used_by_these_tests_is_valid() -> None:
    assert parse_definition(MINIMAL).id == "mini"


def test_a_problem_reads_as_file_line_column_field_message() -> None:
    problem = Problem("k.yaml", 12, 5, "checkpoints[2].code", "duplicate code 'K1'")
    assert str(problem) == "k.yaml:12:5: checkpoints[2].code: duplicate code 'K1'"


def test_a_missing_file_is_a_definition_error_not_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(tmp_path / "nowhere.yaml")
    assert caught.value.problems[0].field == "(file)"


# -- broken definitions: each problem points at its line and field ---------------------------------------


def test_an_unknown_checkpoint_in_needs_is_reported_on_its_line(shipped_text: str) -> None:
    text = edit(shipped_text, "needs: [K4]\n    completed_by: handover\n    handover:\n      agency: police",
                "needs: [K44]\n    completed_by: handover\n    handover:\n      agency: police")
    problem = only(problems_of(text), "checkpoints[6].needs[0]")
    assert problem.line == line_of(text, "needs: [K44]")
    assert problem.column == column_of(text, "K44")
    assert "K44" in problem.message
    assert problem.file == "broken.yaml"


def test_an_unknown_checkpoint_in_transition_requires_is_reported_on_its_line(shipped_text: str) -> None:
    text = edit(shipped_text, "requires: [K1, K2]", "requires: [K1, K22]")
    problem = only(problems_of(text), "transitions[0].requires[1]")
    assert problem.line == line_of(text, "K22")
    assert problem.column == column_of(text, "K22")
    assert "K22" in problem.message


def test_a_duplicate_checkpoint_code_is_reported_on_the_second_one(shipped_text: str) -> None:
    text = edit(shipped_text, "  - code: K2\n", "  - code: K1\n")
    problem = only(problems_of(text), "checkpoints[2].code")
    assert problem.line == line_of(text, "- code: K1", nth=2)
    assert "duplicate" in problem.message and "K1" in problem.message


def test_a_missing_english_translation_is_reported_on_its_text(shipped_text: str) -> None:
    text = edit(
        shipped_text,
        "{nb: Koordinator tildelt, en: Coordinator assigned}",
        "{nb: Koordinator tildelt}",
    )
    problem = only(problems_of(text), "checkpoints[3].name.en")
    assert problem.line == line_of(text, "{nb: Koordinator tildelt}")
    assert "required" in problem.message.lower()


def test_a_checkpoint_in_an_unreachable_phase_is_reported_with_the_phase() -> None:
    text = edit(MINIMAL, "  - id: end\n", "  - id: island\n    title: {nb: Øy, en: Island}\n  - id: end\n")
    text = edit(text, "  - {trigger: finish", "  - {trigger: leave, source: island, dest: end}\n  - {trigger: finish")
    text += "  - code: C2\n    name: {nb: Andre, en: Second}\n    phases: [island]\n    owner: worker\n"
    problems = problems_of(text)
    phase = only(problems, "phases[2].id")
    assert phase.line == line_of(text, "- id: island")
    assert "cannot be reached" in phase.message
    checkpoint = only(problems, "checkpoints[1].phases")
    assert checkpoint.line == line_of(text, "phases: [island]")
    assert "C2" in checkpoint.message and "unreachable" in checkpoint.message


def test_a_phase_with_no_path_to_closure_is_reported() -> None:
    text = edit(MINIMAL, "  - id: end\n", "  - id: limbo\n    title: {nb: Limbo, en: Limbo}\n  - id: end\n")
    text = edit(text, "  - {trigger: finish", "  - {trigger: stall, source: start, dest: limbo}\n  - {trigger: finish")
    problem = only(problems_of(text), "phases[2].id")
    assert problem.line == line_of(text, "- id: limbo")
    assert "no path to closure" in problem.message and "limbo" in problem.message


def test_a_cycle_with_no_exit_is_reported_for_each_phase_in_it() -> None:
    text = edit(
        MINIMAL, "  - id: end\n",
        "  - id: loop_a\n    title: {nb: A, en: A}\n  - id: loop_b\n    title: {nb: B, en: B}\n  - id: end\n",
    )
    text = edit(
        text, "  - {trigger: finish",
        "  - {trigger: spin, source: middle, dest: loop_a}\n"
        "  - {trigger: turn, source: loop_a, dest: loop_b}\n"
        "  - {trigger: turn_back, source: loop_b, dest: loop_a}\n"
        "  - {trigger: finish",
    )
    problems = problems_of(text)
    for index, phase in ((2, "loop_a"), (3, "loop_b")):
        problem = only(problems, f"phases[{index}].id")
        assert problem.line == line_of(text, f"- id: {phase}")
        assert "cycle with no exit" in problem.message
    assert not any(p.field == "phases[1].id" for p in problems), "middle still reaches the end"


def test_removing_the_closing_transition_leaves_every_phase_without_closure(shipped_text: str) -> None:
    text = edit(shipped_text, "  - {trigger: close, source: after_stay, dest: closed}\n", "")
    fields = {p.field for p in problems_of(text)}
    assert {"phases[0].id", "phases[1].id", "phases[2].id", "phases[3].id"} <= fields


def test_a_deadline_anchored_on_nothing_is_reported_on_after(shipped_text: str) -> None:
    text = edit(shipped_text, "deadline: {after: K3, working_days: 10}", "deadline: {after: K33, working_days: 10}")
    problem = only(problems_of(text), "checkpoints[8].deadline.after")
    assert problem.line == line_of(text, "after: K33")
    assert problem.column == column_of(text, "after: K33")
    assert "anchored on nothing" in problem.message


def test_a_consent_anchor_must_name_a_known_agency(shipped_text: str) -> None:
    text = edit(shipped_text, "after: consent.nav,", "after: consent.bank,")
    problem = only(problems_of(text), "checkpoints[7].deadline.after")
    assert problem.line == line_of(text, "consent.bank")


def test_an_unknown_key_is_reported_on_its_line(shipped_text: str) -> None:
    text = edit(shipped_text, "    completed_by: open\n", "    completed_by: open\n    colour: red\n")
    problem = only(problems_of(text), "checkpoints[0].colour")
    assert problem.line == line_of(text, "colour: red")
    assert problem.column == column_of(text, "colour")
    assert "not permitted" in problem.message


def test_a_wrongly_typed_union_field_is_named_without_validator_internals(shipped_text: str) -> None:
    text = edit(shipped_text, "    owner: police\n", "    owner: 5\n")
    problems = problems_of(text)
    assert problems and all(p.field == "checkpoints[6].owner" for p in problems), [str(p) for p in problems]
    assert all(p.line == line_of(text, "owner: 5") for p in problems)


def test_bad_yaml_syntax_is_reported_where_the_parser_stopped(shipped_text: str) -> None:
    text = edit(shipped_text, "  nb: Pakkeforløp for", "  nb: Pakkeforløp: for")
    (problem,) = problems_of(text)
    assert problem.field == "(yaml)"
    assert problem.line == line_of(text, "Pakkeforløp: for")
    assert problem.column == column_of(text, ": for")
    assert "mapping values" in problem.message


def test_a_duplicate_yaml_key_is_refused(shipped_text: str) -> None:
    text = edit(shipped_text, VERSION_LINE, VERSION_LINE + "version: 99\n")
    (problem,) = problems_of(text)
    assert problem.field == "(yaml)" and "duplicate" in problem.message


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    (problem,) = problems_of("- just\n- a list\n")
    assert problem.field == "(document)"


# -- several problems at once ------------------------------------------------------------------------------


def test_several_semantic_problems_are_reported_together_in_one_error(shipped_text: str) -> None:
    text = edit(shipped_text, "requires: [K1, K2]", "requires: [K1, K22]")
    text = edit(text, "  - code: K2\n", "  - code: K1\n")
    text = edit(text, "deadline: {after: K3, working_days: 10}", "deadline: {after: K33, working_days: 10}")
    text = edit(text, "    when: [shelter_stay]\n", "    when: [shelter]\n")
    problems = problems_of(text)
    by_field = {p.field: p for p in problems}
    assert by_field["transitions[0].requires[1]"].line == line_of(text, "K22")
    assert by_field["checkpoints[2].code"].line == line_of(text, "- code: K1", nth=2)
    assert by_field["checkpoints[8].deadline.after"].line == line_of(text, "after: K33")
    assert by_field["checkpoints[10].when[0]"].line == line_of(text, "when: [shelter]")
    assert len(problems) >= 4


def test_several_schema_problems_are_reported_together_in_one_error(shipped_text: str) -> None:
    text = edit(shipped_text, "{nb: Koordinator tildelt, en: Coordinator assigned}", "{nb: Koordinator tildelt}")
    text = edit(text, "    completed_by: open\n", "    completed_by: open\n    colour: red\n")
    text = edit(text, VERSION_LINE, "version: 0\n")
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, filename="k.yaml")
    fields = {p.field for p in caught.value.problems}
    assert {"checkpoints[3].name.en", "checkpoints[0].colour", "version"} <= fields
    # The message lists them all, one per line.
    assert len(str(caught.value).splitlines()) == len(caught.value.problems)


# -- the JSON schema ---------------------------------------------------------------------------------------


def test_the_json_schema_describes_checkpoints_and_hides_internal_fields() -> None:
    schema = json_schema()
    assert isinstance(schema, dict)
    assert "checkpoints" in schema["properties"]
    assert {"phases", "transitions"} <= set(schema["properties"])
    assert "sha256" not in schema["properties"] and "source" not in schema["properties"]
    assert schema["$schema"].startswith("https://json-schema.org/")


def test_an_alias_bomb_is_refused_before_anything_is_built() -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for prev, name in zip("abcdef", "bcdefg"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(DefinitionError) as caught:
        parse_definition("\n".join(lines), filename="bomb.yaml")
    assert "alias bomb" in str(caught.value) and caught.value.problems[0].file == "bomb.yaml"


def test_a_python_tag_is_data_not_code(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "ran"
    text = f'id: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, filename="tag.yaml")
    assert not marker.exists()
    assert any(p.field == "id" for p in caught.value.problems)


def test_shared_ladders_through_anchors_are_fine(shipped_text: str) -> None:
    assert "&urgent" in shipped_text and "*urgent" in shipped_text
    parse_definition(shipped_text)
