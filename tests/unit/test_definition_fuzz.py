"""Fuzzing the definition loader: whatever it is given, it returns a definition or raises its own DefinitionError
whose problems each say file:line:column — never another exception, never a tag that runs, never unbounded memory.

Four sources of input: arbitrary text and bytes, a soup of YAML tokens, the shipped definition mutated as data
(keys dropped, values of the wrong type, unknown references, huge numbers, unicode) and the shipped text mutated
line by line (duplicated keys, anchors and aliases, explicit and Python tags). Then two classic bombs.
"""

from __future__ import annotations

import copy
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from pathway.definition import MAX_DEPTH, PathwayDefinition, load_definition, parse_definition
from pathway.errors import DefinitionError
from tests.unit.conftest import VERSION_LINE

# Asserts nothing that depends on the date: not run again at the Makefile's TEST_DATES.
pytestmark = pytest.mark.any_date

SHIPPED = Path(__file__).resolve().parents[2] / "definitions" / "krisesenter.yaml"
SHIPPED_TEXT = SHIPPED.read_text(encoding="utf-8")
FILENAME = "fuzz.yaml"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Each mutation of the whole shipped definition costs a full parse (50-100 ms with ruamel): fewer of them keep
# this file at seconds.
FUZZ_SHIPPED = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A file that exists only if a YAML tag ever ran code (the tags below all try to create it)."""
    return tmp_path_factory.mktemp("fuzz") / "a-tag-ran"


def loads(source: str | bytes) -> PathwayDefinition | DefinitionError:
    """The loader's answer to ``source``; fails the test on any exception but a well-formed DefinitionError."""
    try:
        return parse_definition(source, filename=FILENAME)
    except DefinitionError as exc:
        assert exc.problems, "a DefinitionError must list at least one problem"
        for problem in exc.problems:
            assert problem.file == FILENAME, problem
            assert problem.line >= 1 and problem.column >= 1, problem
            assert problem.field and problem.message, problem
            # One problem, one printable line of `forlop validate` output: a hostile key or value can neither forge
            # another line nor send a terminal escape.
            assert str(problem).isprintable(), repr(str(problem))
            assert len(problem.field) <= 400, f"{len(problem.field)} characters of field name"
        return exc


def python_tags(marker: Path) -> list[str]:
    """Tags that would run code under an unsafe loader: each would create ``marker``."""
    return [
        f'!!python/object/apply:os.system ["touch {marker}"]',
        f'!!python/object/apply:builtins.open ["{marker}", "w"]',
        f'!!python/object/new:builtins.open ["{marker}", "w"]',
        f"!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]",
        "!!python/name:os.system",
        "!!python/module:os",
        f'!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    ]


# -- arbitrary input -------------------------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=2000))
def test_arbitrary_text_is_a_definition_or_a_definition_error(text: str) -> None:
    loads(text)


@FUZZ
@given(data=st.binary(max_size=2000))
def test_arbitrary_bytes_are_a_definition_or_a_definition_error(data: bytes) -> None:
    loads(data)


TOKENS = [
    "\n", "  ", "    ", "\t", "- ", "-", ": ", ":", "? ", ",", "[", "]", "{", "}", "#", "&a ", "*a", "&b ", "*b", "*nope",
    "<<: ", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!timestamp ", "!!binary ", "!!set ", "!!omap ",
    "!!map ", "!!seq ", "!local ", "!<tag:x.org,2000:y> ", "%YAML 1.1\n", "%YAML 1.2\n", "%TAG ! tag:x.org,2000:\n",
    "---\n", "...\n", "|\n", ">-\n", '"', "'", "\\", "\\u0000", "\\x", "~", "null", "true", "yes", "NO", ".inf",
    ".nan", "-0", "0x1F", "0o17", "0b101", "1_000", "1e400", "-1e-400", "9" * 60, "1:20:30", "2026-02-30",
    "2001-12-14t21:59:43.10-05:00", "id", "version", "title", "nb", "en", "roles", "phases", "checkpoints",
    "transitions", "code", "K1", "after", "first_contact", "hours", "working_days", "reminders", "æøå", "🙂",
    "\u202e", "\ufeff", "\u2028", "\x00", "\x85", "\ud7ff",
]


@FUZZ
@given(parts=st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=80))
def test_a_soup_of_yaml_tokens_is_a_definition_or_a_definition_error(parts: list[str]) -> None:
    loads("".join(parts))


# -- the shipped definition, mutated as data ---------------------------------------------------------------------


def _shipped_data() -> dict[str, Any]:
    return YAML(typ="safe").load(SHIPPED_TEXT)  # type: ignore[no-any-return]


SHIPPED_DATA = _shipped_data()


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into the document (keys of mappings, indexes of lists), the root excluded."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((*at, key))
        found.extend(_paths(child, (*at, key)))
    return found


PATHS = _paths(SHIPPED_DATA)

HOSTILE_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**18, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.text(min_size=300, max_size=600),
    st.sampled_from(["K99", "nowhere", "consent.nobody", "first_contact", "K0", "closed", "intake", "", " ",
                     "../../etc/passwd", "{{7*7}}", "'; DROP TABLE pathway_case;--", "æøå", "🙂" * 50]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just([]), st.just({}),
)


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _drop(doc: Any, path: tuple[Any, ...], _: Any) -> None:
    parent = _parent(doc, path)
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    _parent(doc, path)[path[-1]] = value


def _duplicate(doc: Any, path: tuple[Any, ...], _: Any) -> None:
    parent = _parent(doc, path)
    if isinstance(parent, list):
        parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))  # a second K1, a second phase 'intake'
    else:
        parent[f"{path[-1]}_copy"] = copy.deepcopy(parent[path[-1]])  # an unknown key


def _rename(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    parent = _parent(doc, path)
    if isinstance(parent, dict) and isinstance(value, str) and value not in parent:
        parent[value] = parent.pop(path[-1])  # an unknown key, or a key another definition item refers to


MUTATIONS: list[Callable[[Any, tuple[Any, ...], Any], None]] = [_drop, _replace, _duplicate, _rename]


def _dump(doc: Any) -> str:
    out = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = None
    yaml.dump(doc, out)
    return out.getvalue()


@FUZZ_SHIPPED
@given(data=st.data())
def test_the_shipped_definition_mutated_as_data_is_a_definition_or_a_definition_error(data: st.DataObject) -> None:
    doc = copy.deepcopy(SHIPPED_DATA)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        paths = _paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        mutate = data.draw(st.sampled_from(MUTATIONS), label="mutation")
        mutate(doc, path, data.draw(HOSTILE_VALUES, label="value"))
    loads(_dump(doc))


# -- the shipped text, mutated line by line ----------------------------------------------------------------------

SHIPPED_LINES = SHIPPED_TEXT.splitlines()


def _snippets(marker: Path) -> st.SearchStrategy[str]:
    values = [*python_tags(marker), "&x {nb: A, en: B}", "*x", "*undefined", "&k [K1, K2]", "*k", "<<: *x",
              "!!int abc", "!!int " + "9" * 5000, "!!float x", "!!bool maybe", "!!timestamp 2026-13-45", "!!binary ???",
              "!!set {a, b}", "!!omap [a: 1]", "!local thing", "9" * 5000, "1e400", "-0x1", ".nan", "~", "[" * 200,
              "{" * 200, "'unterminated", '"\\ud800"', '"\\x00"', "æøå 🙂 \u202e", "|", ">"]
    return st.sampled_from(values)


@FUZZ_SHIPPED
@given(data=st.data())
def test_the_shipped_text_mutated_line_by_line_is_a_definition_or_a_definition_error(data: st.DataObject,
                                                                                     marker: Path) -> None:
    lines = list(SHIPPED_LINES)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="edits")):
        i = data.draw(st.integers(min_value=0, max_value=len(lines) - 1), label="line")
        line = lines[i]
        indent = line[: len(line) - len(line.lstrip())]
        kind = data.draw(st.sampled_from(["drop", "duplicate", "value", "insert", "indent"]), label="edit")
        snippet = data.draw(_snippets(marker), label="snippet")
        if kind == "drop":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, line)  # a duplicated key, or a duplicated list item
        elif kind == "value" and ": " in line:
            lines[i] = line[: line.index(": ") + 2] + snippet
        elif kind == "insert":
            key = data.draw(st.sampled_from(["id", "version", "roles", "extra", "x", "<<", "- code", "? k"]))
            lines.insert(i, f"{indent}{key}: {snippet}")
        else:
            lines[i] = " " + line
        if not lines:
            lines = [""]
    loads("\n".join(lines) + "\n")
    assert not marker.exists(), "a YAML tag ran code"


def test_every_python_tag_in_every_place_is_data_not_code(marker: Path) -> None:
    for tag in python_tags(marker):
        for text in (f"id: {tag}\n", f"{tag}\n", f"? {tag}\n: 1\n", SHIPPED_TEXT.replace(VERSION_LINE, f"version: {tag}\n")):
            assert isinstance(loads(text), DefinitionError), text
    assert not marker.exists(), "a YAML tag ran code"


# -- bombs -------------------------------------------------------------------------------------------------------


def _peak_mb(run: Callable[[], object]) -> tuple[object, float]:
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 "lol"']
    for n in range(1, levels + 1):
        lines.append(f"lol{n}: &lol{n} [" + ", ".join([f"*lol{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name, text", [
    ("billion laughs", billion_laughs()),
    ("billion laughs through merge keys", "a: &a {x: 1}\n" + "".join(
        f"{n}: &{n} {{<<: [" + ", ".join([f"*{p}"] * 9) + "]}\n" for p, n in zip("abcdefgh", "bcdefghi"))),
    ("50,000 levels of [", "[" * 50_000),
    ("50,000 levels of [ closed", "id: " + "[" * 50_000 + "]" * 50_000 + "\n"),
    ("50,000 levels of {a: ", "a: " + "{a: " * 50_000 + "1" + "}" * 50_000),
    ("block sequences 100,000 deep on one line", "- " * 100_000 + "x\n"),
    ("nested block mappings 1,000 deep", "".join(" " * i + "a:\n" for i in range(1000))),
])
def test_a_yaml_bomb_is_a_definition_error_in_bounded_memory(name: str, text: str) -> None:
    result, peak = _peak_mb(lambda: loads(text))
    print(f"{name}: {len(text):,} bytes of input, peak {peak:.1f} MB traced")
    assert isinstance(result, DefinitionError)
    assert peak < 100, f"{name}: {peak:.0f} MB"


def test_nesting_up_to_the_limit_is_still_read() -> None:
    deep = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    problems = loads(f"id: {deep}\n")
    assert isinstance(problems, DefinitionError)
    assert not any("nested deeper" in p.message for p in problems.problems), problems


def test_a_deep_document_is_refused_where_it_gets_too_deep() -> None:
    problems = loads("id: " + "[" * 1000)
    assert isinstance(problems, DefinitionError)
    (problem,) = problems.problems
    assert (problem.line, problem.field) == (1, "(yaml)") and "nested deeper than" in problem.message
    assert problem.column <= MAX_DEPTH + 5


def test_a_file_that_never_ends_is_read_no_further_than_the_limit() -> None:
    result, peak = _peak_mb(lambda: _load("/dev/zero"))
    print(f"/dev/zero: peak {peak:.1f} MB traced")
    assert isinstance(result, DefinitionError) and "larger than" in str(result)
    assert peak < 20


def _load(path: str) -> PathwayDefinition | DefinitionError:
    try:
        return load_definition(path)
    except DefinitionError as exc:
        return exc


def test_the_shipped_definition_survives_the_loader_s_guards() -> None:
    assert isinstance(loads(SHIPPED_TEXT), PathwayDefinition)


# -- what the fuzzing found, kept as plain examples ------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "id: !!int abc\n", "id: !!float abc\n", "id: !!bool maybe\n", "id: !!timestamp 2001-99-99\n",
    "id: !!set ''\n", "id: !!int '" + "9" * 5000 + "'\n", "id: " + "9" * 5000 + "\n",
])
def test_a_value_its_tag_cannot_hold_is_a_problem_at_its_place(text: str) -> None:
    result = loads(text)
    assert isinstance(result, DefinitionError)
    (problem,) = result.problems
    assert (problem.line, problem.column, problem.field) == (1, 5, "(yaml)") and "cannot read" in problem.message


def test_a_problem_inside_a_collection_with_its_own_tag_is_placed_at_the_collection(marker: Path) -> None:
    text = SHIPPED_TEXT.replace("    phases: [intake, support]  # high risk",
                                f'    phases: {python_tags(marker)[0]}  # high risk')
    result = loads(text)
    assert isinstance(result, DefinitionError) and not marker.exists()
    assert any(p.field.startswith("checkpoints[6].phases") for p in result.problems), result


def test_a_key_with_a_line_break_or_a_terminal_escape_is_printed_escaped() -> None:
    result = loads('"a\\nfuzz.yaml:1:1: id: forged\\u001bc": 1\nid: x\n')
    assert isinstance(result, DefinitionError)
    shown = [p for p in result.problems if "forged" in p.field]
    assert shown and "\\u000a" not in shown[0].field and "\\u001b" in shown[0].field, result


def test_a_lone_surrogate_in_text_is_a_definition_error() -> None:
    result = loads("id: '\ud800'\n")
    assert isinstance(result, DefinitionError) and result.problems[0].field == "(file)"


def test_a_file_that_is_no_definition_is_refused_without_echoing_it() -> None:
    result = loads("root:x:0:0:secret-gecos:/root:/bin/bash:\nuser:$6$hash$:19000:0:99999:7:::\n")
    assert isinstance(result, DefinitionError)
    (problem,) = result.problems
    assert problem.field == "(document)" and "not a pathway definition" in problem.message
    assert "secret-gecos" not in str(problem) and "$6$" not in str(problem)


def test_an_alias_inside_its_own_anchor_is_null_not_a_cycle() -> None:
    result = loads(SHIPPED_TEXT.replace("adaptations: [skip,", "adaptations: &self [*self, skip,"))
    assert isinstance(result, DefinitionError)
    assert [p.field for p in result.problems] == ["adaptations[0]"], result
