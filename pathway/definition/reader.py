"""Reading definition YAML safely: positions kept, and deep nesting, alias bombs and bad tagged values refused."""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scanner import RoundTripScanner, ScannerError

from pathway.definition.problems import one_line
from pathway.errors import DefinitionError, Problem


def read_yaml(text: str, filename: str) -> CommentedMap:
    """The top-level mapping of a YAML text, every key with its line and column; raises ``DefinitionError``."""
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
        raise DefinitionError([Problem(filename, line, col, "(yaml)", one_line(exc.problem or str(exc)))]) from None
    except YAMLError as exc:
        raise DefinitionError([Problem(filename, 1, 1, "(yaml)", one_line(str(exc)))]) from None
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
