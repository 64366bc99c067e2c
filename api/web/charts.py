"""Server-rendered SVG charts: the geometry is computed here, the template draws it (no script, no network).

Each chart says what it shows in its title and description, and the page puts a data table beside it, so that the
figures are there for a screen reader and for anyone who cannot tell the bars apart.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

LABEL_W = 300  # room for the labels left of horizontal bars ("K7 Overlevering til NAV: nødhjelp og økonomi")
ROW_H = 26
PLOT_W = 360
LABEL_CHARS = 46  # what fits in LABEL_W at 12px; a longer label is cut (the table beside has it in full)


def _fit(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str  # "bar", "bar-low", "bar-partial", "bar-p90", "bar-missing", "bar-late", "bar-overdue"
    label: str  # the category, drawn beside the bar
    value: str  # the value, drawn at the end of the bar
    lx: float
    ly: float
    vx: float
    vy: float


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str
    label: str = ""
    lx: float = 0
    ly: float = 0


@dataclass
class Chart:
    id: str
    title: str
    description: str
    width: float
    height: float
    bars: list[Bar] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def _share_css(share: float | None, target: float | None, partial: bool) -> str:
    if share is None:
        return "bar-missing"
    if partial:
        return "bar-partial"  # a period not over yet: lighter, whatever its share so far
    return "bar" if target is None or share >= target else "bar-low"


def share_bars(chart_id: str, title: str, description: str, rows: list[tuple[str, float | None, str]],
               target: float | None, target_label: str, *, horizontal: bool = True,
               partial: Collection[str] = ()) -> Chart:
    """Shares (0–1) as bars against a target line (none when ``target`` is None); ``rows`` are (label, share or
    None, the text to show); a row whose label is in ``partial`` is a period not over yet, drawn lighter."""
    if horizontal:
        chart = Chart(chart_id, title, description, LABEL_W + PLOT_W + 60, ROW_H * len(rows) + 40)
        for i, (label, share, text) in enumerate(rows):
            y = 10 + i * ROW_H
            w = PLOT_W * (share or 0)
            chart.bars.append(Bar(LABEL_W, y, max(w, 1), ROW_H - 8, _share_css(share, target, label in partial),
                                  _fit(label), text, LABEL_W - 6, y + 13, LABEL_W + max(w, 1) + 4, y + 13))
        if target is not None:
            x = LABEL_W + PLOT_W * target
            chart.lines.append(Line(x, 4, x, chart.height - 24, "target", target_label, x, chart.height - 8))
        return chart
    height = 220
    col = max(44.0, min(60.0, 720 / max(len(rows), 1)))
    chart = Chart(chart_id, title, description, 50 + col * len(rows) + 20, height + 60)
    for i, (label, share, text) in enumerate(rows):
        h = height * (share or 0)
        x = 50 + i * col
        chart.bars.append(Bar(x + 4, 10 + height - h, col - 8, max(h, 1), _share_css(share, target, label in partial),
                              label, text, x + col / 2, height + 28, x + col / 2, 6 + height - h))
    chart.lines.append(Line(46, 10, chart.width - 10, 10, "gridline", "100 %", 4, 14))
    if target is not None:
        target_y = 10 + height * (1 - target)
        chart.lines.append(Line(46, target_y, chart.width - 10, target_y, "target", target_label, 4, target_y + 4))
    chart.lines.append(Line(46, height + 10, chart.width - 10, height + 10, "axis"))
    return chart


def stacked_bars(chart_id: str, title: str, description: str, rows: list[tuple[str, list[int | None], str]],
                 parts: list[str]) -> Chart:
    """Counts side by side in one horizontal bar per row, one part per css class of ``parts`` (e.g. done on time,
    done late, open past the deadline); ``None`` is a hidden count, drawn as nothing and told by the row's text."""
    top = max([sum(n or 0 for n in ns) for _, ns, _ in rows] or [1]) or 1
    chart = Chart(chart_id, title, description, LABEL_W + PLOT_W + 90, ROW_H * len(rows) + 20)
    for i, (label, ns, text) in enumerate(rows):
        label = _fit(label)
        y = 10 + i * ROW_H
        x = float(LABEL_W)
        if not any(ns):
            chart.bars.append(Bar(x, y, 1, ROW_H - 8, "bar-missing", label, text, LABEL_W - 6, y + 13, x + 5, y + 13))
            continue
        drawn = [(css, PLOT_W * n / top) for css, n in zip(parts, ns, strict=True) if n]
        for j, (css, w) in enumerate(drawn):
            last = j == len(drawn) - 1
            chart.bars.append(Bar(x, y, w, ROW_H - 8, css, label if j == 0 else "", text if last else "",
                                  LABEL_W - 6, y + 13, x + w + 4, y + 13))
            x += w
    return chart


def range_bars(chart_id: str, title: str, description: str,
               rows: list[tuple[str, float | None, float | None]], unit: str) -> Chart:
    """A distribution by two figures per row: the median as a solid bar and the 90th percentile beyond it."""
    top = max([v for _, m, p in rows for v in (m, p) if v is not None] or [1.0])
    chart = Chart(chart_id, title, description, LABEL_W + PLOT_W + 110, ROW_H * len(rows) + 20)
    for i, (label, median, p90) in enumerate(rows):
        label = _fit(label)
        y = 10 + i * ROW_H
        if p90 is not None:
            chart.bars.append(Bar(LABEL_W, y, max(PLOT_W * p90 / top, 1), ROW_H - 8, "bar-p90", label, "",
                                  LABEL_W - 6, y + 13, 0, 0))
        wm = PLOT_W * max(median or 0, 0) / top  # a step done before its anchor (K10, before moving out): no bar
        value = "–" if median is None else f"{median:g} / {p90:g} {unit}" if p90 is not None else f"{median:g} {unit}"
        chart.bars.append(Bar(LABEL_W, y + 4, max(wm, 1), ROW_H - 16, "bar" if median is not None else "bar-missing",
                              label if p90 is None else "", value, LABEL_W - 6, y + 13,
                              LABEL_W + PLOT_W * max(p90 or 0, median or 0, 0) / top + 4, y + 13))
    return chart


def count_bars(chart_id: str, title: str, description: str, rows: list[tuple[str, int | None, str]], *,
               css: str = "bar-low") -> Chart:
    """Counts as horizontal bars (``css``: "bar-low" for what is bad, as overdue steps; "bar-count" for a plain
    count); ``None`` is a hidden count (shown as text, drawn as nothing)."""
    top = max([n for _, n, _ in rows if n is not None] or [1]) or 1
    chart = Chart(chart_id, title, description, LABEL_W + PLOT_W + 60, ROW_H * len(rows) + 20)
    for i, (label, n, text) in enumerate(rows):
        label = _fit(label)
        y = 10 + i * ROW_H
        w = PLOT_W * (n or 0) / top
        chart.bars.append(Bar(LABEL_W, y, max(w, 1), ROW_H - 8, css if n else "bar-missing", label, text,
                              LABEL_W - 6, y + 13, LABEL_W + max(w, 1) + 4, y + 13))
    return chart
