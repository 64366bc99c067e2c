"""The semantic checks of a parsed definition: duplicates, references that name nothing, and the phase graph."""

from __future__ import annotations

from collections.abc import Iterator

from pathway.definition.model import Offset, PathwayDefinition

Loc = tuple[int | str, ...]


def semantic_problems(d: PathwayDefinition) -> Iterator[tuple[Loc, str]]:
    """Every problem a well-formed definition can still have, each with its location path and message."""
    yield from _duplicates(d)
    yield from _references(d)
    yield from _graph(d)


def _duplicates(d: PathwayDefinition) -> Iterator[tuple[Loc, str]]:
    for name, items, attr in (("checkpoints", d.checkpoints, "code"), ("phases", d.phases, "id")):
        seen: set[str] = set()
        for i, item in enumerate(items):
            value = getattr(item, attr)
            if value in seen:
                yield (name, i, attr), f"duplicate {attr} '{value}'"
            seen.add(value)
    seen_triggers: set[str] = set()
    for i, t in enumerate(d.transitions):
        if t.trigger in seen_triggers:
            yield ("transitions", i, "trigger"), f"duplicate trigger '{t.trigger}' (list several sources instead)"
        seen_triggers.add(t.trigger)
    clash = set(d.roles) & set(d.agencies)
    for name in sorted(clash):
        yield ("agencies", name), f"'{name}' is both a role and an agency"
    for name, agency in d.agencies.items():
        for j, scope in enumerate(agency.scopes):
            if scope not in d.consent_scopes:
                yield ("agencies", name, "scopes", j), f"unknown consent scope '{scope}'"
        for j, basis in enumerate(agency.legal_bases):
            if basis not in d.legal_bases:
                yield ("agencies", name, "legal_bases", j), f"unknown legal basis '{basis}'"


def _references(d: PathwayDefinition) -> Iterator[tuple[Loc, str]]:
    phases, codes = set(d.phase_order), set(d.checkpoint)
    owners = set(d.roles) | set(d.agencies)
    for i, c in enumerate(d.checkpoints):
        at: Loc = ("checkpoints", i)
        for j, p in enumerate(c.phases):
            if p not in phases:
                yield (*at, "phases", j), f"unknown phase '{p}'"
            elif p in d.final_phases and c.completed_by != "close":
                yield (*at, "phases", j), f"phase '{p}' is final: no checkpoint can be worked there"
        for j, owner in enumerate(c.owners):
            if owner not in owners:
                yield (*at, "owner"), f"unknown owner '{owner}' (not a role or an agency)"
        for j, need in enumerate(c.needs):
            if need not in codes:
                yield (*at, "needs", j), f"unknown checkpoint '{need}'"
            elif need == c.code:
                yield (*at, "needs", j), "a checkpoint cannot need itself"
        for j, cond in enumerate(c.when):
            if cond not in d.conditions:
                yield (*at, "when", j), f"unknown condition '{cond}'"
        if c.deadline is not None:
            kind = d.anchor_kind(c.deadline.after)
            if kind is None:
                yield (*at, "deadline", "after"), (
                    f"deadline anchored on nothing: '{c.deadline.after}' is not first_contact, a checkpoint, "
                    "a milestone or consent.<agency>"
                )
            elif c.deadline.after == c.code:
                yield (*at, "deadline", "after"), "a deadline cannot be anchored on its own checkpoint"
            elif c.deadline.amount < 0 and kind != "milestone":
                yield (*at, "deadline"), "a negative offset needs a milestone anchor (a planned date)"
        if c.completed_by == "handover" and c.handover is None:
            yield (*at, "handover"), "completed_by: handover needs a handover section (agency and scope)"
        if c.handover is not None:
            for agency in c.handover.agencies:
                if agency not in d.agencies:
                    yield (*at, "handover", "agency"), f"unknown agency '{agency}'"
            for cond in c.handover.warn_when:
                if cond not in d.conditions:
                    yield (*at, "handover", "warn_when", cond), f"unknown condition '{cond}'"
            for j, scope in enumerate(c.handover.scope):
                if scope not in d.consent_scopes:
                    yield (*at, "handover", "scope", j), f"unknown consent scope '{scope}'"
                for agency in c.handover.agencies:
                    if agency in d.agencies and not d.agencies[agency].receives(scope):
                        yield (*at, "handover", "scope", j), f"agency '{agency}' may not receive '{scope}'"
        if c.repeat and c.deadline is None:
            yield (*at, "repeat"), "a repeating checkpoint needs a deadline for its first occurrence"
        for j, rule in enumerate(c.repeat[:-1]):
            if rule.times is None:
                yield (*at, "repeat", j, "times"), "only the last repeat rule may run until closure"
        if c.completed_by in ("open", "close") and c.skippable:
            yield (*at, "skippable"), f"a checkpoint completed by '{c.completed_by}' cannot be skippable"
    for at, ladder in [(("reminders",), d.reminders)] + [
        (("checkpoints", i, "reminders"), c.reminders) for i, c in enumerate(d.checkpoints) if c.reminders
    ]:
        hours = [_rough_hours(r.at) for r in ladder]
        if hours != sorted(hours):
            yield at, "list the rungs of a reminder ladder from the earliest to the latest"
    for kind in ("open", "close"):
        found = [i for i, c in enumerate(d.checkpoints) if c.completed_by == kind]
        for i in found[1:]:
            yield ("checkpoints", i, "completed_by"), f"only one checkpoint may be completed by '{kind}'"
    for i, t in enumerate(d.transitions):
        at = ("transitions", i)
        for j, s in enumerate(t.sources):
            if s not in phases:
                yield (*at, "source"), f"unknown phase '{s}'"
            elif s in d.final_phases:
                yield (*at, "source"), f"phase '{s}' is final: nothing leaves it"
        if t.dest not in phases:
            yield (*at, "dest"), f"unknown phase '{t.dest}'"
        for j, need in enumerate(t.requires):
            if need not in codes:
                yield (*at, "requires", j), f"unknown checkpoint '{need}'"
        if t.records is not None and t.records not in d.milestones:
            yield (*at, "records"), f"unknown milestone '{t.records}'"
    if d.phases[0].final:
        yield ("phases", 0, "final"), "the first phase is where cases start; it cannot be final"
    if not d.final_phases:
        yield ("phases",), "no final phase: a case could never be closed"


def _rough_hours(offset: Offset) -> float:
    return offset.amount * {"hours": 1.0, "days": 24.0, "working_days": 24.0 * 7 / 5}[offset.unit.value]


def _graph(d: PathwayDefinition) -> Iterator[tuple[Loc, str]]:
    phases = set(d.phase_order)
    edges: dict[str, set[str]] = {p: set() for p in phases}
    for t in d.transitions:
        for s in t.sources:
            if s in edges and t.dest in phases:
                edges[s].add(t.dest)
    reachable = _closure({d.initial_phase}, edges)
    reverse: dict[str, set[str]] = {p: set() for p in phases}
    for s, dests in edges.items():
        for dest in dests:
            reverse[dest].add(s)
    reaches_final = _closure(set(d.final_phases), reverse)
    for i, p in enumerate(d.phases):
        if p.id not in reachable:
            yield ("phases", i, "id"), f"phase '{p.id}' cannot be reached from '{d.initial_phase}'"
        elif p.id not in reaches_final:
            in_cycle = p.id in _closure(edges[p.id], edges)
            yield ("phases", i, "id"), (
                f"cycle with no exit: phase '{p.id}' loops without a path to a final phase"
                if in_cycle
                else f"no path to closure from phase '{p.id}'"
            )
    # A checkpoint is unreachable if none of its phases is, or if its needs (or its anchor) loop back to it.
    depends = {
        c.code: set(c.needs) | ({c.deadline.after} if c.deadline and c.deadline.after in d.checkpoint else set())
        for c in d.checkpoints
    }
    for i, c in enumerate(d.checkpoints):
        if c.phases and not any(p in reachable for p in c.phases if p in phases):
            yield ("checkpoints", i, "phases"), f"checkpoint '{c.code}' is unreachable: none of its phases can be reached"
        elif c.code in _closure(depends.get(c.code, set()), depends):
            yield ("checkpoints", i, "needs"), f"checkpoint '{c.code}' is unreachable: it depends on itself in a cycle"


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
