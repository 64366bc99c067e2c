"""Loading a definition: read the file, parse the YAML, validate the model, then the semantic checks.

Validation collects every problem, each with file, line, column and field, and raises one
``DefinitionError``. No I/O beyond reading the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pathway.definition.checks import semantic_problems
from pathway.definition.model import PathwayDefinition
from pathway.definition.problems import problem_at
from pathway.definition.reader import read_yaml
from pathway.errors import DefinitionError, Problem

MAX_DEFINITION_BYTES = 512 * 1024


def load_definition(path: str | Path) -> PathwayDefinition:
    """Read, parse and validate one definition file; raises ``DefinitionError`` listing every problem."""
    path = Path(path)
    try:
        # One byte past the limit is enough to refuse it: /dev/zero or a huge file is never read whole.
        with path.open("rb") as file:
            raw = file.read(MAX_DEFINITION_BYTES + 1)
    except OSError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, "(file)", f"cannot read: {exc.strerror}")]) from None
    return parse_definition(raw, filename=str(path))


def parse_definition(source: bytes | str, *, filename: str = "<definition>") -> PathwayDefinition:
    """Parse and validate definition text; raises ``DefinitionError`` listing every problem."""
    if isinstance(source, str):
        try:
            source = source.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ('\ud800') has no UTF-8 form
            raise DefinitionError([Problem(filename, 1, 1, "(file)", f"not UTF-8 (character {exc.start})")]) from None
    if len(source) > MAX_DEFINITION_BYTES:
        raise DefinitionError([Problem(filename, 1, 1, "(file)", f"larger than {MAX_DEFINITION_BYTES} bytes")])
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(filename, 1, 1, "(file)", f"not UTF-8 (byte {exc.start})")]) from None
    doc = read_yaml(text, filename)
    if not any(key in _REQUIRED for key in doc):
        # Some other file (a path typed wrong, /etc/passwd): one problem, and nothing of its content echoed.
        raise DefinitionError([Problem(filename, 1, 1, "(document)", "not a pathway definition: it has none of "
                                       f"the keys {', '.join(sorted(_REQUIRED))}")])
    try:
        definition = PathwayDefinition.model_validate(doc)
    except ValidationError as exc:
        problems = [problem_at(filename, doc, err["loc"], err["msg"]) for err in exc.errors()]
        problems += _problems_beside_broken_items(filename, doc, exc)
        raise DefinitionError(problems) from None
    problems = [problem_at(filename, doc, loc, msg) for loc, msg in semantic_problems(definition)]
    if problems:
        raise DefinitionError(problems)
    return definition.model_copy(update={"sha256": hashlib.sha256(source).hexdigest(), "source": text})


_LISTS = {"checkpoints": "code", "phases": "id", "transitions": "trigger"}
_REQUIRED = frozenset(name for name, f in PathwayDefinition.model_fields.items() if f.is_required())


def _problems_beside_broken_items(filename: str, doc: Any, exc: ValidationError) -> list[Problem]:
    """When some list items are malformed, check the rest too, so one run still reports every problem.

    The malformed items are left out and the remainder validated; problems that merely mention a left-out item
    (a reference to it) are dropped, and locations are mapped back to the original list positions.
    """
    broken: dict[str, set[int]] = {name: set() for name in _LISTS}
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) >= 2 and loc[0] in _LISTS and isinstance(loc[1], int):
            broken[str(loc[0])].add(loc[1])
        else:
            return []  # a top-level problem: nothing sensible to check beside it
    reduced = dict(doc)
    positions: dict[str, list[int]] = {}
    left_out: set[str] = set()
    for name, bad in broken.items():
        items = doc.get(name)
        if not isinstance(items, list):
            continue
        positions[name] = [i for i in range(len(items)) if i not in bad]
        reduced[name] = [items[i] for i in positions[name]]
        left_out |= {str(items[i].get(_LISTS[name])) for i in bad if isinstance(items[i], dict)}
    try:
        partial = PathwayDefinition.model_validate(reduced)
    except ValidationError:
        return []
    graph_incomplete = bool(broken["phases"] or broken["transitions"])
    problems = []
    for loc, msg in semantic_problems(partial):
        if any(f"'{name}'" in msg for name in left_out):
            continue
        if graph_incomplete and any(w in msg for w in ("reached", "closure", "cycle", "unreachable")):
            continue  # the left-out phases or transitions might have connected it
        if len(loc) >= 2 and loc[0] in positions and isinstance(loc[1], int):
            loc = (loc[0], positions[str(loc[0])][loc[1]], *loc[2:])
        problems.append(problem_at(filename, doc, loc, msg))
    return problems
