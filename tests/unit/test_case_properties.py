"""Random sequences of valid and invalid operations on cases of the shipped pathway keep the case sound.

After every operation: a refused one changed nothing; the version counts the events; every step is in a
lifecycle state, with ``ended_at`` set exactly when it has ended; a checkpoint has at most one open occurrence;
a closed case has nothing open. At the end, replaying the events rebuilds the same case.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from pathway.case import GENESIS, Case, replay
from pathway.case import commands as do
from pathway.definition import PathwayDefinition, load_definition
from pathway.errors import DomainError
from pathway.machine import STEP_STATES

# Module level rather than a fixture: a hypothesis state machine does not take pytest fixtures.
DEFINITION = load_definition(Path(__file__).resolve().parents[2] / "definitions" / "krisesenter.yaml")
START = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)  # Monday morning

# Every name comes with a few that are wrong, so that refused operations are exercised too.
CODES = [c.code for c in DEFINITION.checkpoints] + ["A1", "A2", "K99", ""]
TRIGGERS = [t.trigger for t in DEFINITION.transitions] + ["teleport"]
CONDITIONS = [*DEFINITION.conditions, "pets"]
MILESTONES = [*DEFINITION.milestones, "wedding"]
AGENCIES = [*DEFINITION.agencies, "bank"]
SCOPES = [*DEFINITION.consent_scopes, "diary"]
OWNERS = [*DEFINITION.roles, *DEFINITION.agencies, "neighbour"]
OUTCOMES = [*DEFINITION.outcomes, "happy"]
LEGAL_BASES = [None, None, "avert_crime", "child_welfare_duty", "gut_feeling"]
STATUSES = ["accepted", "declined", "completed", "lost"]

TOO_LONG = "x" * 2001  # MAX_TEXT + 1
reasons = st.sampled_from([None, "", "  ", "the person asked for it", TOO_LONG])
some_reason = st.sampled_from(["the person asked for it", "went back", "in hospital"])
actors = st.sampled_from(["coordinator-1", "coordinator-1", "police-contact", "", " "])
gaps = st.integers(min_value=1, max_value=3 * 24 * 60)  # minutes until the next operation


def resolve(pathway_id: str, version: int) -> PathwayDefinition:
    assert (pathway_id, version) == DEFINITION.key
    return DEFINITION


class CaseLifecycle(RuleBasedStateMachine):
    case: Case
    now: datetime

    @initialize(
        conditions=st.sets(st.sampled_from(list(DEFINITION.conditions))),
        backdate=st.sampled_from([0, 30, 600]),
        stage=st.sampled_from(["intake", "support", "support", "after_stay"]),
        consent_to=st.sets(st.sampled_from(["police", "nav"])),
    )
    def open_case(self, conditions: set[str], backdate: int, stage: str, consent_to: set[str]) -> None:
        self.now = START
        first_contact = START - timedelta(minutes=backdate)
        self.case = Case.open(
            DEFINITION, case_id=uuid.UUID(int=42), reference="PROP-1", unit="bergen",
            first_contact_at=first_contact, actor="coordinator-1", at=START, conditions=conditions,
            reason="registered late" if backdate > 60 else None,
        )
        # Random runs are short: start some of them further along, through the same checked operations.
        for agency in sorted(consent_to):
            self.attempt(5, lambda c, at, agency=agency: c.execute(do.RecordConsent(agency, scope=list(DEFINITION.consent_scopes), given=True), actor="coordinator-1", at=at))
        if stage != "intake":
            for code in ("K1", "K2"):
                self.attempt(60, lambda c, at, code=code: c.execute(do.CompleteStep(code), actor="coordinator-1", at=at))
            self.attempt(60, lambda c, at: c.execute(do.Advance("start_support"), actor="coordinator-1", at=at))
        if stage == "after_stay":
            self.attempt(60 * 24, lambda c, at: c.execute(do.Advance("move_out"), actor="coordinator-1", at=at))
        assert self.case.phase == stage

    # -- running one operation --------------------------------------------------------------------------

    def attempt(self, gap: int, operation: Callable[[Case, datetime], Any]) -> None:
        """Run ``operation`` a little later; if the case refuses it, nothing may have changed."""
        self.now += timedelta(minutes=gap)
        before, events, head = self.case.snapshot(), list(self.case.new_events), self.case.head_hash
        try:
            operation(self.case, self.now)
        except DomainError:
            assert self.case.snapshot() == before, "a refused operation changed the case"
            assert self.case.new_events == events and self.case.head_hash == head, "a refused operation left an event"
        else:
            assert len(self.case.new_events) == len(events) + 1, "an operation must append exactly one event"

    # -- the operations ---------------------------------------------------------------------------------

    @rule(gap=gaps, code=st.sampled_from(CODES), actor=actors, note=reasons)
    def complete(self, gap: int, code: str, actor: str, note: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.CompleteStep(code, note=note), actor=actor, at=at))

    @rule(gap=gaps, index=st.integers(0, 20))
    def complete_an_open_step(self, gap: int, index: int) -> None:
        # Picking among the open steps makes valid completions common enough to move cases along.
        def operation(c: Case, at: datetime) -> None:
            open_steps = c.open_steps() or c.steps
            c.execute(do.CompleteStep(open_steps[index % len(open_steps)].code), actor="coordinator-1", at=at)

        self.attempt(gap, operation)

    @rule(gap=gaps, code=st.sampled_from(CODES), reason=reasons)
    def skip(self, gap: int, code: str, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.SkipStep(code, reason=reason), actor="coordinator-1", at=at))  # type: ignore[arg-type]

    @rule(gap=gaps, owner=st.sampled_from(OWNERS), title=st.sampled_from(["Call the GP", ""]),
          due_hours=st.integers(-24, 24 * 30), reason=reasons)
    def add_step(self, gap: int, owner: str, title: str, due_hours: int, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.AddStep(title=title, owner=owner, due_at=at + timedelta(hours=due_hours), reason=reason), actor="coordinator-1", at=at))  # type: ignore[arg-type]

    @rule(gap=gaps, reason=reasons)
    def pause(self, gap: int, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Pause(reason=reason), actor="coordinator-1", at=at))  # type: ignore[arg-type]

    @rule(gap=gaps, reason=reasons)
    def resume(self, gap: int, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Resume(reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, trigger=st.sampled_from(TRIGGERS), reason=reasons)
    def advance(self, gap: int, trigger: str, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Advance(trigger, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, trigger=st.sampled_from(TRIGGERS), reason=some_reason)
    def advance_with_a_reason(self, gap: int, trigger: str, reason: str) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Advance(trigger, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, name=st.sampled_from(MILESTONES), days=st.integers(-30, 60))
    def record_milestone(self, gap: int, name: str, days: int) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.RecordMilestone(name, when=at + timedelta(days=days)), actor="coordinator-1", at=at))

    @rule(gap=gaps, agency=st.sampled_from(AGENCIES), scope=st.sets(st.sampled_from(SCOPES), max_size=5),
          given=st.booleans(), reason=reasons)
    def record_consent(self, gap: int, agency: str, scope: set[str], given: bool, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.RecordConsent(agency, scope=sorted(scope), given=given, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, agency=st.sampled_from(list(DEFINITION.agencies)))
    def record_full_consent(self, gap: int, agency: str) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.RecordConsent(agency, scope=list(DEFINITION.consent_scopes), given=True), actor="coordinator-1", at=at))

    @rule(gap=gaps, coordinator=st.sampled_from(["coord-2", "coord-3", "", " "]), reason=reasons)
    def assign_coordinator(self, gap: int, coordinator: str, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.AssignCoordinator(coordinator, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, name=st.sampled_from(CONDITIONS), value=st.booleans(), reason=reasons)
    def set_condition(self, gap: int, name: str, value: bool, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.SetCondition(name, value, reason=reason), actor="coordinator-1", at=at))  # type: ignore[arg-type]

    @rule(gap=gaps, code=st.sampled_from(["K6", "K7", "K6", "K7", "K1", "K99"]),
          legal_basis=st.sampled_from(LEGAL_BASES), reason=reasons)
    def create_handover(self, gap: int, code: str, legal_basis: str | None, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.CreateHandover(code, legal_basis=legal_basis, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, index=st.integers(0, 2), status=st.sampled_from(STATUSES), note=reasons)
    def update_handover(self, gap: int, index: int, status: str, note: str | None) -> None:
        def operation(c: Case, at: datetime) -> None:
            task_id = c.handovers[index].id if index < len(c.handovers) else uuid.UUID(int=index)
            c.execute(do.UpdateHandover(task_id, status, note=note), actor="police-contact", at=at)

        self.attempt(gap, operation)

    @rule(gap=gaps, outcome=st.sampled_from(OUTCOMES), reason=reasons)
    def close(self, gap: int, outcome: str, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Close(outcome, reason=reason), actor="coordinator-1", at=at))

    @rule(gap=gaps, municipality=st.sampled_from(["Askøy", ""]), reason=reasons)
    def transfer(self, gap: int, municipality: str, reason: str | None) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.Transfer(municipality, reason=reason), actor="coordinator-1", at=at))  # type: ignore[arg-type]

    @rule(gap=gaps, fields=st.sets(st.sampled_from(["phone", "address", "name"])))
    def note_person_change(self, gap: int, fields: set[str]) -> None:
        self.attempt(gap, lambda c, at: c.execute(do.NotePersonChange(fields), actor="coordinator-1", at=at))

    # -- what must always hold --------------------------------------------------------------------------

    @invariant()
    def the_version_counts_the_events_and_the_chain_is_linked(self) -> None:
        events = self.case.new_events
        assert self.case.version == len(events)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert [e.prev_hash for e in events] == [GENESIS] + [e.hash for e in events[:-1]]
        assert self.case.head_hash == events[-1].hash

    @invariant()
    def every_step_is_in_a_lifecycle_state_and_ended_exactly_when_it_ended(self) -> None:
        for step in self.case.steps:
            assert step.state in STEP_STATES
            if step.is_open:
                assert step.ended_at is None and step.ended_by is None, step
            else:
                assert step.ended_at is not None and step.ended_by, step
            if step.state == "active" and step.activated_at is not None:
                assert step.activated_at >= step.created_at

    @invariant()
    def a_checkpoint_has_at_most_one_open_occurrence(self) -> None:
        open_codes = Counter(s.code for s in self.case.steps if s.is_open)
        assert all(n == 1 for n in open_codes.values()), open_codes
        occurrences = Counter((s.code, s.occurrence) for s in self.case.steps)
        assert all(n == 1 for n in occurrences.values()), occurrences
        open_tasks = Counter(t.code for t in self.case.handovers if t.is_open)
        assert all(n == 1 for n in open_tasks.values()), open_tasks

    @invariant()
    def every_checkpoint_that_applies_now_has_a_live_occurrence(self) -> None:
        if self.case.is_closed:
            return
        for checkpoint in DEFINITION.checkpoints:
            if self.case.phase in checkpoint.phases and set(checkpoint.when) <= self.case.conditions:
                latest = max((s for s in self.case.steps if s.code == checkpoint.code),
                             key=lambda s: s.occurrence, default=None)
                assert latest is not None and latest.state != "cancelled", (checkpoint.code, latest)

    @invariant()
    def a_closed_case_has_nothing_open(self) -> None:
        if self.case.is_closed:
            assert self.case.open_steps() == []
            assert not any(t.is_open for t in self.case.handovers)
            assert self.case.paused_since is None and self.case.outcome in DEFINITION.outcomes
            assert self.case.allowed_operations() == []

    @invariant()
    def handovers_without_a_legal_basis_had_consent(self) -> None:
        for task in self.case.handovers:
            if task.basis == "consent":
                assert task.scope, "a consent-based task names the scope it may share"

    def teardown(self) -> None:
        case = getattr(self, "case", None)
        if case is None:
            return
        rebuilt = replay(case.new_events, resolve)
        assert rebuilt.digest() == case.digest()
        assert rebuilt.snapshot() == case.snapshot()


CaseLifecycle.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_random_operations_keep_a_case_sound_and_replayable = CaseLifecycle.TestCase
