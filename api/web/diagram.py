"""The pathway of one case as an SVG diagram: the phases left to right, the current one marked, and under each
phase its checkpoints marked done, skipped, overdue, open or not yet started (by a symbol and a word as well as
by colour). A phase's name is shown whole: it wraps onto more lines, and a box grows to hold a word too long for
its width."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from api.i18n import N_
from api.schemas import CaseDetail
from pathway.definition import PathwayDefinition

BOX_W = 190
GAP = 36
PAD = 10  # text inset in a box
TITLE_Y = 22  # baseline of a box's first title line
LINE_H = 18  # title lines
NOW_H = 16  # the "current phase" line under the title
ROW_H = 22
ARROW_Y = 24  # at the height of the first title line
# An upper bound on the width of a character of the title (14px, bold) and of a checkpoint label (12.5px): text is
# measured by count, so a generous width keeps the widest letters inside the box.
TITLE_CHAR_W = 9.0
LABEL_CHAR_W = 7.6

# state -> (css class, symbol); the word comes from the page's language
PATHWAY, CURRENT = N_("The pathway"), N_("Current phase")  # the diagram's title, in the page's language
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
    lines: tuple[str, ...] = ()  # the title, wrapped to the box
    width: float = BOX_W


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    phases: tuple[PhaseBox, ...]
    arrows: tuple[tuple[float, float, float], ...]  # (x1, x2, y)
    summary: dict[str, int]
    now_y: float = TITLE_Y + LINE_H - 2  # baseline of the "current phase" line

    def svg(self, t: Callable[[str], str], phase_title: str) -> Markup:
        """The diagram as inline SVG, its words in the page's language (``t``); ``phase_title`` names the case's
        current phase for a screen reader."""
        desc = " ".join(f"{t(state)}: {n}." for state, n in self.summary.items())
        out = [f'<svg class="diagram" role="img" aria-labelledby="dia-title dia-desc" '
               f'viewBox="0 0 {self.width:g} {self.height:g}" width="{self.width:g}" height="{self.height:g}" '
               f'focusable="false">',
               f'<title id="dia-title">{escape(t(PATHWAY))}: {escape(t(CURRENT))} '
               f'{escape(phase_title)}</title>',
               f'<desc id="dia-desc">{escape(desc)}</desc>']
        for x1, x2, y in self.arrows:
            out.append(f'<line class="arrow" x1="{x1:g}" y1="{y:g}" x2="{x2:g}" y2="{y:g}"></line>'
                       f'<polygon class="arrowhead" points="{x2:g},{y:g} {x2 - 7:g},{y - 5:g} {x2 - 7:g},{y + 5:g}">'
                       f'</polygon>')
        for b in self.phases:
            out.append(f'<rect class="phase{" phase-current" if b.current else ""}" x="{b.x:g}" y="2" '
                       f'width="{b.width:g}" height="{b.height:g}" rx="6"></rect>')
            # a space between the lines, so the name reads whole as text (copied, or found on the page)
            lines = " ".join(f'<tspan x="{b.x + PAD:g}" dy="{0 if i == 0 else LINE_H}">{escape(line)}</tspan>'
                            for i, line in enumerate(b.lines or (b.title,)))
            out.append(f'<text class="phase-title" x="{b.x + PAD:g}" y="{TITLE_Y}">{lines}</text>')
            if b.current:
                out.append(f'<text class="phase-now" x="{b.x + PAD:g}" y="{self.now_y:g}">◆ '
                           f'{escape(t(CURRENT))}</text>')
            for m in b.marks:
                out.append(f'<circle class="{m.css}" cx="{m.x + 8:g}" cy="{m.y - 4:g}" r="8"></circle>'
                           f'<text class="cp-symbol" x="{m.x + 8:g}" y="{m.y:g}" text-anchor="middle">{m.symbol}</text>'
                           f'<text class="cp-label" x="{m.x + 22:g}" y="{m.y:g}">{escape(m.code)} '
                           f'{escape(t(m.state))}</text>')
        out.append("</svg>")
        return Markup("\n".join(out))


def wrap(title: str, width: float = BOX_W) -> tuple[str, ...]:
    """``title`` in lines that fit a box ``width`` wide, broken between words; a word longer than a line is kept
    whole on its own line (the box grows to hold it, see ``box_width``)."""
    per_line = max(1, int((width - 2 * PAD) // TITLE_CHAR_W))
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= per_line:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return tuple(lines) or ("",)


def box_width(lines: tuple[str, ...], labels: list[str]) -> float:
    """Wide enough for the longest title line and checkpoint label, and never narrower than ``BOX_W``."""
    title = max(len(line) for line in lines) * TITLE_CHAR_W + 2 * PAD
    label = max((len(label) * LABEL_CHAR_W + 22 + PAD for label in labels), default=0)
    return max(BOX_W, title, label)


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


def build(definition: PathwayDefinition, detail: CaseDetail, lang: str,
          t: Callable[[str], str] = lambda word: word) -> Diagram:
    """The diagram of ``detail``'s case; ``t`` gives the state words as the page shows them, to size the boxes."""
    states = checkpoint_states(detail)
    placed: set[str] = set()
    columns: list[tuple[str, str, tuple[str, ...], list[tuple[str, str]]]] = []
    for phase in definition.phases:
        codes: list[tuple[str, str]] = []
        for c in definition.checkpoints:
            if c.code in placed or c.phases[0] != phase.id:
                continue
            placed.add(c.code)
            codes.append((c.code, states.get(c.code, "not started")))
        title = phase.title.en if lang == "en" else phase.title.nb
        columns.append((phase.id, title, wrap(title), codes))
    # Every box's head has room for the most title lines of any, so the checkpoints line up across the boxes.
    title_lines = max(len(lines) for _, _, lines, _ in columns)
    now_y = TITLE_Y + (title_lines - 1) * LINE_H + NOW_H
    first_row = now_y + 6 + 16
    boxes = []
    x = 2.0
    for phase_id, title, lines, codes in columns:
        width = box_width(lines, [f"{code} {t(state)}" for code, state in codes])
        marks = []
        for row, (code, state) in enumerate(codes):
            css, symbol = MARKS.get(state, MARKS["active"])
            marks.append(Mark(code, state, css, symbol, x + PAD, first_row + row * ROW_H))
        boxes.append(PhaseBox(phase_id, title, phase_id == detail.phase, x,
                              first_row - 4 + len(marks) * ROW_H, tuple(marks), lines, width))
        x += width + GAP
    height = max(b.height for b in boxes) + 8
    arrows = tuple((b.x + b.width, b.x + b.width + GAP - 4, ARROW_Y) for b in boxes[:-1])
    summary: dict[str, int] = {}
    for state in states.values():
        summary[state] = summary.get(state, 0) + 1
    return Diagram(x - GAP + 2, height, tuple(boxes), arrows, summary, now_y)
