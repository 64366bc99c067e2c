"""The pathway of one case as an SVG diagram: the phases left to right, the current one marked, and under each
phase its checkpoints marked done, skipped, overdue, open or not yet started (by a symbol and a word as well as
by colour)."""

from __future__ import annotations

from dataclasses import dataclass
from api.schemas import CaseDetail
from pathway.definition import PathwayDefinition

BOX_W = 190
GAP = 36
HEAD_H = 44
ROW_H = 22

# state -> (css class, symbol); the word comes from the page's language
MARKS = {"done": ("cp-done", "✓"), "skipped": ("cp-skipped", "–"), "cancelled": ("cp-skipped", "×"),
         "overdue": ("cp-overdue", "!"), "active": ("cp-active", "●"), "pending": ("cp-active", "○"),
         "not started": ("cp-future", "·")}


@dataclass(frozen=True)
class Mark:
    code: str
    state: str
    css: str
    symbol: str
    x: float
    y: float


@dataclass(frozen=True)
class PhaseBox:
    id: str
    title: str
    current: bool
    x: float
    height: float
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    phases: tuple[PhaseBox, ...]
    arrows: tuple[tuple[float, float, float], ...]  # (x1, x2, y)
    summary: dict[str, int]


def checkpoint_states(detail: CaseDetail) -> dict[str, str]:
    """Each checkpoint's state on the case: its newest occurrence, and overdue when an open one is late."""
    states: dict[str, str] = {}
    for step in detail.steps:
        if step.adhoc:
            continue
        state = "overdue" if step.overdue else step.state
        if states.get(step.code) != "overdue":
            states[step.code] = state
    return states


def build(definition: PathwayDefinition, detail: CaseDetail, lang: str) -> Diagram:
    states = checkpoint_states(detail)
    placed: set[str] = set()
    boxes = []
    for i, phase in enumerate(definition.phases):
        marks: list[Mark] = []
        for c in definition.checkpoints:
            if c.code in placed or c.phases[0] != phase.id:
                continue
            placed.add(c.code)
            state = states.get(c.code, "not started")
            css, symbol = MARKS.get(state, MARKS["active"])
            marks.append(Mark(c.code, state, css, symbol, 12 + i * (BOX_W + GAP), HEAD_H + 16 + len(marks) * ROW_H))
        boxes.append(PhaseBox(phase.id, phase.title.en if lang == "en" else phase.title.nb,
                              phase.id == detail.phase, i * (BOX_W + GAP) + 2, HEAD_H + 12 + len(marks) * ROW_H,
                              tuple(marks)))
    height = max(b.height for b in boxes) + 8
    arrows = tuple((b.x + BOX_W, b.x + BOX_W + GAP - 4, HEAD_H / 2 + 2) for b in boxes[:-1])
    summary: dict[str, int] = {}
    for state in states.values():
        summary[state] = summary.get(state, 0) + 1
    return Diagram(len(boxes) * (BOX_W + GAP), height, tuple(boxes), arrows, summary)
