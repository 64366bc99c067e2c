"""Where a problem is: a location path (``checkpoints[3].deadline``) turned into file:line:column, on one line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from pathway.errors import Problem


def one_line(text: str, limit: int = 300) -> str:
    """Text as one printable line: a problem is one line of `forlop validate` output, and a hostile key or value
    (a line break, a terminal escape, a bidi override) must not forge another line or rewrite the terminal."""
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def problem_at(filename: str, doc: Any, loc: Iterable[int | str], message: str) -> Problem:
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
    return Problem(filename, line, col, _field_name(loc), one_line(message))


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
        key = one_line(str(part), limit=80)
        name += f"[{part}]" if isinstance(part, int) else (f".{key}" if name else key)
    return name or "(document)"
