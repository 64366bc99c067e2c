"""Parse and validate a pathway definition (YAML) into frozen objects.

Validation collects every problem, each with file, line, column and field, and raises one
``DefinitionError``. No I/O beyond reading the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scanner import RoundTripScanner, ScannerError

from pathway.calendar import Unit
from pathway.errors import DefinitionError, Problem

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")]
Label = Annotated[str, StringConstraints(min_length=1, max_length=200)]

FIRST_CONTACT = "first_contact"
CONSENT_PREFIX = "consent."
MAX_DEFINITION_BYTES = 512 * 1024

Adaptation = Literal["skip", "add_step", "pause", "resume", "return", "transfer", "close_early"]
CompletedBy = Literal["manual", "open", "close", "handover", "assign_coordinator", "consent"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Frozen):
    """A text in bokmål and English; both are required."""

    nb: Label
    en: Label

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.nb


class Offset(_Frozen):
    """An amount of time in exactly one unit: hours, calendar days or working days."""

    hours: int | None = Field(default=None, ge=-10_000, le=10_000)
    days: int | None = Field(default=None, ge=-3_650, le=3_650)
    working_days: int | None = Field(default=None, ge=-2_500, le=2_500)

    @model_validator(mode="after")
    def _exactly_one_unit(self) -> Offset:
        given = [u for u in ("hours", "days", "working_days") if getattr(self, u) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of hours, days, working_days")
        return self

    @property
    def unit(self) -> Unit:
        return next(Unit(u) for u in ("hours", "days", "working_days") if getattr(self, u) is not None)

    @property
    def amount(self) -> int:
        return int(getattr(self, self.unit.value))


class Deadline(Offset):
    """Due a given offset after an anchor: ``first_contact``, a checkpoint code, a milestone or ``consent.<agency>``."""

    after: Label


RungKind = Literal["due_soon", "due_now", "overdue", "escalation", "manager_escalation"]


class Rung(_Frozen):
    """One rung of a reminder ladder: ``at`` is relative to the deadline (negative: before it)."""

    kind: RungKind
    at: Offset
    to: Literal["owner", "coordinator", "manager"]


class RepeatRule(_Frozen):
    """After an occurrence is done, the next is due ``every`` after it; ``times`` limits how often (None: until closure)."""

    every: Offset
    times: int | None = Field(default=None, ge=1, le=1000)


class Handover(_Frozen):
    agency: Ident
    scope: tuple[Ident, ...] = Field(min_length=1)


class Checkpoint(_Frozen):
    code: Code
    name: Text
    phases: tuple[Ident, ...] = Field(min_length=1)
    owner: Ident | tuple[Ident, ...]
    needs: tuple[Code, ...] = ()
    when: tuple[Ident, ...] = ()
    deadline: Deadline | None = None
    repeat: tuple[RepeatRule, ...] = ()
    handover: Handover | None = None
    completed_by: CompletedBy = "manual"
    skippable: bool = True
    reminders: tuple[Rung, ...] | None = None  # None: the pathway's default ladder

    @property
    def owners(self) -> tuple[str, ...]:
        return (self.owner,) if isinstance(self.owner, str) else self.owner

    def repeat_interval(self, occurrence: int) -> Offset | None:
        """The interval before ``occurrence`` (2, 3, ...) of a repeating checkpoint, or None when repeats are over."""
        n = occurrence - 1
        for rule in self.repeat:
            if rule.times is None or n <= rule.times:
                return rule.every
            n -= rule.times
        return None


class Phase(_Frozen):
    id: Ident
    title: Text
    final: bool = False


class Transition(_Frozen):
    trigger: Ident
    source: Ident | tuple[Ident, ...]
    dest: Ident
    requires: tuple[Code, ...] = ()
    kind: Literal["forward", "return"] = "forward"
    records: Ident | None = None

    @property
    def sources(self) -> tuple[str, ...]:
        return (self.source,) if isinstance(self.source, str) else self.source


class PathwayDefinition(_Frozen):
    """A whole pathway definition: immutable once parsed. ``sha256`` is the hash of the source text."""

    id: Ident
    version: int = Field(ge=1)
    title: Text
    roles: dict[Ident, Text] = Field(min_length=1)
    agencies: dict[Ident, Text] = {}
    consent_scopes: dict[Ident, Text] = {}
    conditions: dict[Ident, Text] = {}
    milestones: dict[Ident, Text] = {}
    outcomes: dict[Ident, Text] = Field(min_length=1)
    adaptations: tuple[Adaptation, ...] = ()
    reminders: tuple[Rung, ...] = ()
    phases: tuple[Phase, ...] = Field(min_length=2)
    transitions: tuple[Transition, ...] = Field(min_length=1)
    checkpoints: tuple[Checkpoint, ...] = Field(min_length=1)
    sha256: str = Field(default="", exclude=True)
    source: str = Field(default="", exclude=True)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)

    @cached_property
    def checkpoint(self) -> dict[str, Checkpoint]:
        return {c.code: c for c in self.checkpoints}

    @cached_property
    def phase_order(self) -> dict[str, int]:
        return {p.id: i for i, p in enumerate(self.phases)}

    def ladder(self, code: str | None) -> tuple[Rung, ...]:
        """The reminder ladder of a checkpoint (or of an ad-hoc step, ``code=None``)."""
        checkpoint = self.checkpoint.get(code) if code is not None else None
        if checkpoint is not None and checkpoint.reminders is not None:
            return checkpoint.reminders
        return self.reminders

    @property
    def initial_phase(self) -> str:
        return self.phases[0].id

    @cached_property
    def final_phases(self) -> frozenset[str]:
        return frozenset(p.id for p in self.phases if p.final)

    @cached_property
    def transition(self) -> dict[str, Transition]:
        """Transitions by trigger; a trigger may have several sources but one destination."""
        return {t.trigger: t for t in self.transitions}

    def anchor_kind(self, anchor: str) -> str | None:
        """What an anchor names: 'first_contact', 'checkpoint', 'milestone', 'consent', or None (nothing)."""
        if anchor == FIRST_CONTACT:
            return "first_contact"
        if anchor in self.checkpoint:
            return "checkpoint"
        if anchor in self.milestones:
            return "milestone"
        if anchor.startswith(CONSENT_PREFIX) and anchor[len(CONSENT_PREFIX) :] in self.agencies:
            return "consent"
        return None


# -- loading -----------------------------------------------------------------------------------------


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
    doc = _read_yaml(text, filename)
    if not any(key in _REQUIRED for key in doc):
        # Some other file (a path typed wrong, /etc/passwd): one problem, and nothing of its content echoed.
        raise DefinitionError([Problem(filename, 1, 1, "(document)", "not a pathway definition: it has none of "
                                       f"the keys {', '.join(sorted(_REQUIRED))}")])
    try:
        definition = PathwayDefinition.model_validate(doc)
    except ValidationError as exc:
        problems = [_problem_at(filename, doc, err["loc"], err["msg"]) for err in exc.errors()]
        problems += _problems_beside_broken_items(filename, doc, exc)
        raise DefinitionError(problems) from None
    problems = [_problem_at(filename, doc, loc, msg) for loc, msg in _semantic_problems(definition)]
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
    for loc, msg in _semantic_problems(partial):
        if any(f"'{name}'" in msg for name in left_out):
            continue
        if graph_incomplete and any(w in msg for w in ("reached", "closure", "cycle", "unreachable")):
            continue  # the left-out phases or transitions might have connected it
        if len(loc) >= 2 and loc[0] in positions and isinstance(loc[1], int):
            loc = (loc[0], positions[str(loc[0])][loc[1]], *loc[2:])
        problems.append(_problem_at(filename, doc, loc, msg))
    return problems


def _read_yaml(text: str, filename: str) -> Any:
    # Round-trip mode keeps line/column of every key; YAML 1.2 core schema, no Python tags.
    yaml = YAML(typ="rt")
    yaml.Scanner = _ShallowScanner
    yaml.Constructor = _MarkedConstructor
    yaml.allow_duplicate_keys = False
    try:
        _refuse_alias_bombs(yaml, text, filename)
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise DefinitionError([Problem(filename, line, col, "(yaml)", _one_line(exc.problem or str(exc)))]) from None
    except YAMLError as exc:
        raise DefinitionError([Problem(filename, 1, 1, "(yaml)", _one_line(str(exc)))]) from None
    if not isinstance(doc, CommentedMap):
        raise DefinitionError([Problem(filename, 1, 1, "(document)", "expected a mapping at the top level")])
    return doc


MAX_ALIASES = 200
MAX_NODES = 50_000
MAX_DEPTH = 64  # the shipped definition nests 7 deep


class _ShallowScanner(RoundTripScanner):
    """Refuses nesting deeper than MAX_DEPTH as it scans. ruamel's scanner is quadratic in the depth of flow
    collections (50,000 '[' would take hours) and its composer recursive (a RecursionError, not a YAMLError)."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803 (ruamel's name)
        self._check_depth(1)
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        added = super().add_indent(column)
        if added:
            self._check_depth(0)
        return bool(added)

    def _check_depth(self, more: int) -> None:
        if self.flow_level + len(self.indents) + more > MAX_DEPTH:
            raise ScannerError(None, None, f"nested deeper than {MAX_DEPTH} levels", self.reader.get_mark())


class _MarkedConstructor(RoundTripConstructor):
    """A value its explicit tag cannot hold (``!!int abc``, ``!!timestamp 2001-99-99``, an integer of 5,000 digits,
    a scalar tagged ``!!set``) makes ruamel raise a bare ValueError, KeyError or AttributeError; this turns it into
    a YAML error at the value's place."""

    def construct_document(self, node: Any) -> Any:
        # Build every value where it is met, not in a later pass: so an error still knows its node, and an alias
        # inside its own anchor (&a [*a]) comes out as null instead of a structure that contains itself.
        self.deep_construct = True
        return super().construct_document(node)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except YAMLError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
            tag = str(node.tag).replace("tag:yaml.org,2002:", "!!")
            raise ConstructorError(None, None, f"cannot read this {tag} value ({type(exc).__name__})",
                                   node.start_mark) from None


def _refuse_alias_bombs(yaml: YAML, text: str, filename: str) -> None:
    """Anchors and aliases are fine (a shared reminder ladder); a tree they blow up to millions of nodes is not.

    Counts the nodes the document expands to, from the parser's events, before anything is built."""
    sizes: dict[str, int] = {}
    stack: list[tuple[str | None, int]] = []  # (anchor, nodes so far) per open collection
    total = aliases = 0
    for event in yaml.parse(text):
        name = type(event).__name__
        if name in ("MappingStartEvent", "SequenceStartEvent"):
            stack.append((event.anchor, 1))
            continue
        if name in ("MappingEndEvent", "SequenceEndEvent"):
            anchor, size = stack.pop()
        elif name == "ScalarEvent":
            anchor, size = event.anchor, 1
        elif name == "AliasEvent":
            aliases += 1
            anchor, size = None, sizes.get(event.anchor, 1)
        else:
            continue
        if anchor:
            sizes[anchor] = size
        if stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + size)
        else:
            total += size
        if aliases > MAX_ALIASES or size > MAX_NODES or total > MAX_NODES:
            mark = event.start_mark
            raise DefinitionError([Problem(filename, mark.line + 1, mark.column + 1, "(yaml)",
                                           f"the document expands to more than {MAX_NODES} nodes or uses more "
                                           f"than {MAX_ALIASES} aliases (an alias bomb?)")])


def _one_line(text: str, limit: int = 300) -> str:
    """Text as one printable line: a problem is one line of `forlop validate` output, and a hostile key or value
    (a line break, a terminal escape, a bidi override) must not forge another line or rewrite the terminal."""
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _problem_at(filename: str, doc: Any, loc: Iterable[int | str], message: str) -> Problem:
    """Turn a location path into file:line:column, walking the YAML nodes as far as they go."""
    # Drop pydantic's validator tags (union members such as 'constrained-str', 'tuple[str, ...]'): not fields.
    loc = [
        part for part in loc
        if not (isinstance(part, str) and ("[" in part or part.startswith(("function-", "constrained-"))))
    ]
    line, col, node = 1, 1, doc
    for part in loc:
        where = _position(node, part)
        if where is None:
            break
        line, col = where[0] + 1, where[1] + 1
        node = node[part]
    return Problem(filename, line, col, _field_name(loc), _one_line(message))


def _position(node: Any, part: int | str) -> tuple[int, int] | None:
    """Where the YAML put ``node[part]`` (0-based), if it kept it: a key from a merge (<<) or an item of a
    collection with a tag of its own has no position."""
    try:
        if isinstance(node, CommentedMap) and part in node:
            found = node.lc.key(part)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            found = node.lc.item(part)
        else:
            return None
    except (KeyError, IndexError, TypeError):
        return None
    return (found[0], found[1]) if found else None


def _field_name(loc: Iterable[int | str]) -> str:
    name = ""
    for part in loc:
        key = _one_line(str(part), limit=80)
        name += f"[{part}]" if isinstance(part, int) else (f".{key}" if name else key)
    return name or "(document)"


# -- semantic checks -----------------------------------------------------------------------------------

Loc = tuple[int | str, ...]


def _semantic_problems(d: PathwayDefinition) -> Iterator[tuple[Loc, str]]:
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
            if c.handover.agency not in d.agencies:
                yield (*at, "handover", "agency"), f"unknown agency '{c.handover.agency}'"
            for j, scope in enumerate(c.handover.scope):
                if scope not in d.consent_scopes:
                    yield (*at, "handover", "scope", j), f"unknown consent scope '{scope}'"
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
        for t in dests:
            reverse[t].add(s)
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


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the definition format, for editors (written to definitions/pathway.schema.json)."""
    schema = PathwayDefinition.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Forløp pathway definition"
    schema.get("properties", {}).pop("sha256", None)
    schema.get("properties", {}).pop("source", None)
    return schema
