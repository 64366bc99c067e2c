"""Compile definitions into ``transitions`` machines: one per definition version, shared by every case.

Cases are never bound to a machine (no ``add_model``): an operation fires the shared machine's event on the
case object directly (``machine.events[name].trigger(case)``), so the cost of an operation does not depend on
how many cases exist. Deadlines are rows in the database found by the scheduler, never ``Timeout`` states.
"""

from __future__ import annotations

from dataclasses import dataclass
from threading import Lock
from typing import Any

from transitions import Machine, MachineError

from pathway.definition import PathwayDefinition

# The small lifecycle every step (checkpoint occurrence or ad-hoc step) goes through.
STEP_STATES = ("pending", "active", "done", "skipped", "cancelled")
OPEN_STEP_STATES = frozenset({"pending", "active"})
# The after-callbacks are methods of the step: they stamp it from the trigger's ``at`` (and ``actor``).
STEP_TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "activate", "source": "pending", "dest": "active", "after": "on_activate"},
    {"trigger": "complete", "source": "active", "dest": "done", "after": "on_end"},
    {"trigger": "skip", "source": ["pending", "active"], "dest": "skipped", "after": "on_end"},
    {"trigger": "cancel", "source": ["pending", "active"], "dest": "cancelled", "after": "on_end"},
]
CLOSE_EARLY = "_close_early"  # not a valid identifier in a definition, so it cannot clash with one

STEP_MACHINE = Machine(
    model=None,
    states=list(STEP_STATES),
    transitions=STEP_TRANSITIONS,
    initial="pending",
    auto_transitions=False,
    send_event=True,
    model_attribute="state",
)


@dataclass(frozen=True, slots=True)
class CompiledPathway:
    """A definition and the phase machine compiled from it."""

    definition: PathwayDefinition
    machine: Machine

    def triggers(self, phase: str) -> list[str]:
        """The phase transitions that leave ``phase`` (the internal close-early one excluded)."""
        return [t for t in self.machine.get_triggers(phase) if t != CLOSE_EARLY]

    def fire(self, trigger: str, model: object, **context: Any) -> bool:
        """Fire a phase transition on a case. The case's ``guard`` condition raises the domain's error when the
        transition is not allowed now; ``MachineError`` means the trigger does not leave the current phase."""
        event = self.machine.events.get(trigger)
        if event is None:
            raise MachineError(f"no trigger '{trigger}'")
        return bool(event.trigger(model, **context))


def step_transition(trigger: str, step: object, **context: Any) -> None:
    """Move a step through its lifecycle; raises ``MachineError`` when the step is not in a source state.
    ``context`` (``at``, ``actor``) reaches the step's after-callback."""
    STEP_MACHINE.events[trigger].trigger(step, **context)


_cache: dict[tuple[str, int, str], CompiledPathway] = {}
_lock = Lock()


def compile_pathway(definition: PathwayDefinition) -> CompiledPathway:
    """The compiled machine for a definition version, built on first use and cached."""
    key = (definition.id, definition.version, definition.sha256)
    compiled = _cache.get(key)
    if compiled is None:
        with _lock:
            compiled = _cache.get(key) or _build(definition)
            _cache[key] = compiled
    return compiled


def _build(definition: PathwayDefinition) -> CompiledPathway:
    final = sorted(definition.final_phases, key=definition.phase_order.__getitem__)
    open_phases = [p.id for p in definition.phases if not p.final]
    transitions = [
        {
            "trigger": t.trigger,
            "source": list(t.sources),
            "dest": t.dest,
            # resolved on the case object by name: the guard raises the reason a transition is refused, the
            # after-callback stamps what the transition records
            "conditions": ["guard"],
            "after": ["entered"],
        }
        for t in definition.transitions
    ]
    transitions.append({"trigger": CLOSE_EARLY, "source": open_phases, "dest": final[0], "conditions": ["guard"]})
    machine = Machine(
        model=None,
        states=[p.id for p in definition.phases],
        transitions=transitions,
        initial=definition.initial_phase,
        auto_transitions=False,
        send_event=True,
        model_attribute="phase",
    )
    return CompiledPathway(definition=definition, machine=machine)


def mermaid(definition: PathwayDefinition, *, lang: str = "nb") -> str:
    """The pathway as a Mermaid state diagram: phases, their transitions and the checkpoints in each phase."""

    def esc(text: str) -> str:
        return text.replace('"', "'").replace(";", ",").replace(":", " -")

    lines = ["stateDiagram-v2", "    direction LR"]
    for phase in definition.phases:
        lines.append(f'    state "{esc(phase.title.get(lang))}" as {phase.id}')
    lines.append(f"    [*] --> {definition.initial_phase}")
    for t in definition.transitions:
        label = ("↩ " if t.kind == "return" else "") + t.trigger
        if t.requires:
            label += f" [{', '.join(t.requires)}]"
        for source in t.sources:
            lines.append(f"    {source} --> {t.dest}: {esc(label)}")
    for final in sorted(definition.final_phases):
        lines.append(f"    {final} --> [*]")
    for phase in definition.phases:
        codes = [c for c in definition.checkpoints if c.phases[0] == phase.id]
        if not codes:
            continue
        lines.append(f"    note right of {phase.id}")
        for c in codes:
            extra = f" (needs {', '.join(c.needs)})" if c.needs else ""
            lines.append(f"        {c.code} {esc(c.name.get(lang))}{esc(extra)}")
        lines.append("    end note")
    return "\n".join(lines) + "\n"
