"""Checkpoint intervals: a checkpoint with a deadline, named by the anchor its deadline counts from ("K0→K1"),
and the repeats of a repeating checkpoint ("K12→K12")."""

from __future__ import annotations

from dataclasses import dataclass

from pathway.definition import FIRST_CONTACT, Checkpoint, Offset, PathwayDefinition


@dataclass(frozen=True, slots=True)
class Interval:
    """A checkpoint with a deadline, named by its anchor: "K0→K1". ``repeat``: the 2nd, 3rd... occurrence of a
    repeating checkpoint, anchored on the one before ("K12→K12")."""

    pathway: str
    checkpoint: str
    repeat: bool
    name: str
    deadline: str
    order: int

    @property
    def id(self) -> str:
        return f"{self.checkpoint}{'+' if self.repeat else ''}"


def _offset_text(offset: Offset) -> str:
    unit = offset.unit.value.replace("_", " ")
    return f"{offset.amount} {unit[:-1] if abs(offset.amount) == 1 else unit}"


def _anchor_name(definition: PathwayDefinition, anchor: str) -> str:
    if anchor == FIRST_CONTACT:
        return next((c.code for c in definition.checkpoints if c.completed_by == "open"), FIRST_CONTACT)
    return anchor


def intervals(definition: PathwayDefinition) -> list[Interval]:
    """The intervals of a definition, in its checkpoint order: every checkpoint with a deadline, and the repeats."""
    found: list[Interval] = []
    for c in definition.checkpoints:
        if c.deadline is None:
            continue
        name = f"{_anchor_name(definition, c.deadline.after)}→{c.code}"
        found.append(Interval(definition.id, c.code, False, name, _offset_text(c.deadline), len(found)))
        if c.repeat:
            every = ", then ".join(
                f"every {_offset_text(r.every)}" + (f" ×{r.times}" if r.times else "") for r in c.repeat)
            found.append(Interval(definition.id, c.code, True, f"{c.code}→{c.code}", every, len(found)))
    return found


def offset_of(checkpoint: Checkpoint, occurrence: int) -> tuple[bool, Offset | None]:
    """Whether an occurrence of a checkpoint is a repeat, and the offset of its deadline (``None``: none)."""
    if checkpoint.repeat and occurrence > 1:
        return True, checkpoint.repeat_interval(occurrence)
    return False, checkpoint.deadline
