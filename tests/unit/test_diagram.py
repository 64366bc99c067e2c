"""The pathway diagram of the case page (api/web/diagram.py): every phase's name shown whole, in boxes that hold it."""

from __future__ import annotations

import re
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest

from api.web import diagram
from pathway.definition import PathwayDefinition

LONG = "Oppfølging, overleveringer og samordningsmøter med alle etatene"
LONG_WORD = "Samordningsmøteoppfølgingsfasen"


def _renamed(definition: PathwayDefinition, phase_id: str, name: str) -> PathwayDefinition:
    phases = tuple(p.model_copy(update={"title": p.title.model_copy(update={"nb": name, "en": name})})
                   if p.id == phase_id else p for p in definition.phases)
    return definition.model_copy(update={"phases": phases})


def _case(phase: str = "support", *steps: tuple[str, str]) -> SimpleNamespace:
    """A fake of the case detail: what the diagram reads (its phase and its steps)."""
    return SimpleNamespace(phase=phase, steps=[SimpleNamespace(code=code, state=state, adhoc=False,
                                                               overdue=state == "overdue") for code, state in steps])


def _svg(definition: PathwayDefinition, case: SimpleNamespace, lang: str = "nb") -> str:
    return str(diagram.build(definition, case, lang).svg(lambda word: word, "x"))  # type: ignore[arg-type]


def _title_texts(svg: str) -> list[str]:
    """Each phase box's name, its lines joined again."""
    return [" ".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", text))
            for text in re.findall(r'<text class="phase-title"[^>]*>(.*?)</text>', svg)]


def test_a_long_phase_name_appears_whole_in_the_diagram(definition: PathwayDefinition) -> None:
    svg = _svg(_renamed(definition, "support", LONG), _case())
    assert LONG in _title_texts(svg)
    assert "…" not in svg


def test_a_long_phase_name_wraps_onto_lines_that_fit_its_box(definition: PathwayDefinition) -> None:
    drawn = diagram.build(_renamed(definition, "support", LONG), _case(), "nb")  # type: ignore[arg-type]
    box = next(b for b in drawn.phases if b.id == "support")
    assert len(box.lines) > 1 and " ".join(box.lines) == LONG
    for line in box.lines:
        assert len(line) * diagram.TITLE_CHAR_W + 2 * diagram.PAD <= box.width


def test_a_word_too_long_for_a_box_widens_the_box_rather_than_being_cut(definition: PathwayDefinition) -> None:
    drawn = diagram.build(_renamed(definition, "intake", LONG_WORD), _case(), "nb")  # type: ignore[arg-type]
    box = next(b for b in drawn.phases if b.id == "intake")
    assert box.lines == (LONG_WORD,)
    assert box.width >= len(LONG_WORD) * diagram.TITLE_CHAR_W + 2 * diagram.PAD > diagram.BOX_W
    following = drawn.phases[1]
    assert following.x >= box.x + box.width + diagram.GAP  # the next box moves over, nothing overlaps
    assert drawn.width >= drawn.phases[-1].x + drawn.phases[-1].width


def test_the_checkpoints_start_below_the_longest_name_in_every_box(definition: PathwayDefinition) -> None:
    drawn = diagram.build(_renamed(definition, "support", LONG), _case(), "nb")  # type: ignore[arg-type]
    lines = max(len(b.lines) for b in drawn.phases)
    below = diagram.TITLE_Y + (lines - 1) * diagram.LINE_H + diagram.NOW_H  # the "current phase" line
    first_rows = {b.marks[0].y for b in drawn.phases if b.marks}
    assert len(first_rows) == 1 and first_rows.pop() > below
    for b in drawn.phases:
        assert all(m.y < 2 + b.height for m in b.marks)


@pytest.mark.parametrize("lang", ["nb", "en"])
def test_the_shipped_phase_names_are_shown_whole(definition: PathwayDefinition, lang: str) -> None:
    svg = _svg(definition, _case("support", ("K1", "done"), ("K7", "overdue")), lang)
    assert _title_texts(svg) == [p.title.get(lang) for p in definition.phases]


def test_the_names_are_escaped(definition: PathwayDefinition) -> None:
    svg = _svg(_renamed(definition, "intake", "Mottak <b>& kartlegging</b>"), _case())
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg and "kartlegging&lt;/b&gt;" in svg


def test_the_diagram_marks_the_current_phase_and_each_checkpoint_by_word_and_symbol(
        definition: PathwayDefinition) -> None:
    svg = _svg(definition, _case("support", ("K1", "done"), ("K7", "overdue")))
    assert svg.count('class="phase phase-current"') == 1 and "◆ Current phase" in svg
    for label in ("✓</text>", "K1 done", "!</text>", "K7 overdue", "K13 not started"):
        assert label in svg


def test_the_diagram_is_well_formed_svg_with_a_title_and_a_description(definition: PathwayDefinition) -> None:
    drawn = diagram.build(_renamed(definition, "support", LONG), _case("support", ("K1", "done")), "nb")  # type: ignore[arg-type]
    svg = ElementTree.fromstring(str(drawn.svg(lambda word: word, LONG)))
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag in ("svg", f"{ns}svg") and svg.get("role") == "img"
    assert svg.get("viewBox") == f"0 0 {drawn.width:g} {drawn.height:g}"
    title = svg.find("title") if svg.find("title") is not None else svg.find(f"{ns}title")
    assert title is not None and title.text == f"The pathway: Current phase {LONG}"
