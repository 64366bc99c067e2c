"""The compiled phase machine: one per definition version, shared by every case, never bound to one."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from transitions import MachineError

from pathway.case.commands import Advance, CompleteStep
from pathway.case import Case, Step
from pathway.definition import PathwayDefinition, parse_definition
from pathway.machine import STEP_MACHINE, STEP_STATES, compile_pathway, mermaid, step_transition
from tests.unit.conftest import VERSION_LINE


def test_compiling_the_same_definition_twice_gives_the_same_machine(definition: PathwayDefinition) -> None:
    assert compile_pathway(definition) is compile_pathway(definition)


def test_a_definition_parsed_again_from_the_same_text_shares_the_machine(
    definition: PathwayDefinition, shipped_text: str
) -> None:
    again = parse_definition(shipped_text)
    assert again is not definition
    assert compile_pathway(again) is compile_pathway(definition)


def test_another_version_of_the_pathway_gets_its_own_machine(
    definition: PathwayDefinition, shipped_text: str
) -> None:
    version_3 = parse_definition(shipped_text.replace(VERSION_LINE, "version: 99\n", 1))
    assert compile_pathway(version_3) is not compile_pathway(definition)
    assert compile_pathway(version_3).definition.version == 99


def test_the_machine_knows_every_phase_and_trigger(definition: PathwayDefinition) -> None:
    machine = compile_pathway(definition).machine
    assert set(machine.states) == {p.id for p in definition.phases}
    assert {t.trigger for t in definition.transitions} <= set(machine.events)


def test_triggers_from_a_phase_are_those_of_the_definition(definition: PathwayDefinition) -> None:
    compiled = compile_pathway(definition)
    assert compiled.triggers("intake") == ["start_support"]
    assert sorted(compiled.triggers("support")) == ["back_to_intake", "move_out"]
    assert sorted(compiled.triggers("after_stay")) == ["back_to_support", "close"]
    assert compiled.triggers("closed") == []


def test_firing_an_unknown_trigger_is_a_machine_error(definition: PathwayDefinition, case: Case) -> None:
    with pytest.raises(MachineError):
        compile_pathway(definition).fire("fly_away", case)


def test_a_thousand_cases_run_through_the_shared_machine_without_being_added_to_it(
    definition: PathwayDefinition, start: datetime
) -> None:
    compiled = compile_pathway(definition)
    machine_models = list(compiled.machine.models)
    step_models = list(STEP_MACHINE.models)
    cases = []
    for n in range(1000):
        at = start + timedelta(minutes=n)
        case = Case.open(
            definition, case_id=uuid.UUID(int=n + 1), reference=f"C-{n}", unit="bergen",
            first_contact_at=at, actor="coordinator-1", at=at,
        )
        case.execute(CompleteStep("K1"), actor="coordinator-1", at=at + timedelta(hours=1))
        case.execute(CompleteStep("K2"), actor="coordinator-1", at=at + timedelta(hours=1))
        case.execute(Advance("start_support"), actor="coordinator-1", at=at + timedelta(hours=2))
        cases.append(case)
    assert all(c.phase == "support" for c in cases)
    assert compiled.machine.models == machine_models == []
    assert STEP_MACHINE.models == step_models == []
    assert compile_pathway(definition) is compiled
    # transitions binds trigger methods onto models it manages; a case must not have any.
    assert not hasattr(cases[0], "start_support") and not hasattr(cases[0], "trigger")


def test_the_step_machine_drives_a_step_through_its_lifecycle(start: datetime) -> None:
    step = Step(id=uuid.uuid4(), code="X", occurrence=1, owner="worker", created_at=start)
    assert step.state == "pending" and STEP_STATES[0] == "pending"
    step_transition("activate", step, at=start)
    assert step.state == "active" and step.activated_at == start
    step_transition("complete", step, at=start + timedelta(hours=1), actor="worker")
    assert step.state == "done" and (step.ended_at, step.ended_by) == (start + timedelta(hours=1), "worker")
    with pytest.raises(MachineError):
        step_transition("cancel", step, at=start + timedelta(hours=2), actor="other")
    assert step.state == "done" and step.ended_by == "worker"


def test_a_pending_step_cannot_be_completed_without_being_activated(start: datetime) -> None:
    step = Step(id=uuid.uuid4(), code="X", occurrence=1, owner="worker", created_at=start)
    with pytest.raises(MachineError):
        step_transition("complete", step)
    assert step.state == "pending"


def test_mermaid_draws_every_phase_and_every_trigger(definition: PathwayDefinition) -> None:
    diagram = mermaid(definition)
    assert diagram.startswith("stateDiagram-v2")
    for phase in definition.phases:
        assert f" as {phase.id}" in diagram
    for t in definition.transitions:
        for source in t.sources:
            edge = next(line for line in diagram.splitlines() if line.strip().startswith(f"{source} --> {t.dest}:"))
            assert t.trigger in edge
    assert "[*] --> intake" in diagram and "closed --> [*]" in diagram


def test_mermaid_writes_titles_in_the_language_asked_for(definition: PathwayDefinition) -> None:
    assert '"Intake" as intake' in mermaid(definition, lang="en")
    assert '"Mottak" as intake' in mermaid(definition, lang="nb")
    # The note lists checkpoints with their names, needs included.
    assert "K6 Handover to the police (needs K4)" in mermaid(definition, lang="en")
